"""etagwatch for mitmproxy, mitmweb and mitmdump:

    mitmdump -s addons/etagwatch.py --set etagwatch_db=capture.sqlite
    mitmdump -s addons/etagwatch.py --set etagwatch_replay=site.har   # hermetic: nothing leaves

Records every exchange into the etagwatch store, annotates flows with live verdicts, offers
``etagwatch.report`` / ``etagwatch.export PATH``, and makes server replay honour preconditions.
Options: ``mitmdump -s addons/etagwatch.py --options | grep etagwatch``.
"""

from __future__ import annotations

import sys
from pathlib import Path

try:
    import addons.recorder  # installed with `pip install -e .`
except ImportError:  # run from a checkout without installing: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mitmproxy import hooks

from addons.annotator import Annotator
from addons.findings import Findings
from addons.live_detectors import resource_detector
from addons.recorder import Recorder
from addons.replay import PreconditionReplay

recorder = Recorder()
annotator = Annotator(detector=resource_detector, own_process=True)
recorder.subscribe(annotator.observe, verdicts=annotator.annotate_flows)

# Order matters only in the response hook: replay first rewrites the replayed response
# (304/412/206), then the recorder stores what the client really receives.
addons = [
    PreconditionReplay(),
    recorder,
    annotator,
    Findings(recorder, annotator),
]

# mitmproxy looks up every event's hook on this module too, for every flow (its addons list
# makes it an addon). On Python 3.11 a module attribute that is missing costs two formatted and
# discarded AttributeErrors: about 16 lookups and 88,000 instructions per proxied request,
# a fifth of what etagwatch cost mitmdump (bench/proxy.py --instructions). Bound to None, the
# names are found, and mitmproxy skips hooks that are None. Not ``add_log``: mitmproxy warns
# about any addon that has that deprecated hook, and it fires only per log line.
globals().update({name: None for name in hooks.all_hooks if name not in globals() and name != "add_log"})
