"""`etagwatch probe --candidates STORE`: settle a capture's open verdicts by re-probing.

targets.py (which resources of the store to probe) -> pacing.py (per-host rate limit) ->
experiment.py (fresh clients and a forged tag, one resource) -> outcome.py (the settling rule:
confirms, clears or leaves it open) -> run.py (bounded concurrency, outcomes into the store) ->
render.py (the run's text and JSON). ``analysis.detectors.settled`` applies the stored outcomes
to ``analyze``'s verdicts; docs/verdicts.md states the rule.
"""
