"""Re-run the detectors (engineer C's ``analysis.detectors.run_all``) on a few resources' recent
exchanges and turn their per-resource verdicts into sentences for the flow list.

No detector logic lives here: this module only builds the small DataFrame and words the
verdicts, so the live view and ``etagwatch analyze`` always agree.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from addons.live_checks import IDENTIFIER, OPEN, WASTE, Verdict
from analysis.exchange import COLUMNS, Exchange

if TYPE_CHECKING:  # pandas loads in the writer or detector process only
    import pandas as pd

#: Detector verdict -> (severity, sentence start). Verdicts not listed are benign.
WORDING: dict[str, tuple[str, str]] = {
    "identifier": (IDENTIFIER, "ETag identifies clients"),
    "likely-identifier": (IDENTIFIER, "ETag may identify this client"),
    "churn": (WASTE, "ETag churn: the same bytes under several ETags, so revalidations fail"),
    "unstable": (WASTE, "ETag changes on every response and never yields a 304"),
    "undetermined": (OPEN, "Validator undetermined: a tracker and a benign value look alike so "
                           "far (browse with a second profile to settle it)"),
}


def frame(exchanges: list[Exchange]) -> pd.DataFrame:
    import pandas as pd

    rows = [msgspec.structs.astuple(ex) for ex in exchanges]
    return pd.DataFrame.from_records(rows, columns=list(COLUMNS))


def _explanation(row: pd.Series) -> str:
    """C's plain-words explanation, without the verdict name it starts with."""
    text = row.get("explanation")
    if not isinstance(text, str):
        return ""
    verdict = str(row.get("verdict"))
    if text.startswith(verdict + ":"):
        text = text[len(verdict) + 1 :]
    return text.strip().rstrip(".")


def resource_detector(exchanges: list[Exchange]) -> dict[str, list[Verdict]]:
    """``{resource url: [Verdict]}`` for resources whose verdict is worth a person's look."""
    from analysis.detectors import run_all  # in the writer or detector process, not the proxy's

    result = run_all(frame(exchanges))
    resources = getattr(result, "resources", None)
    if resources is None or len(resources) == 0 or "verdict" not in resources.columns:
        return {}
    out: dict[str, list[Verdict]] = {}
    for _, row in resources.iterrows():
        wording = WORDING.get(str(row.get("verdict")))
        url = row.get("url")
        if wording is None or not isinstance(url, str):
            continue
        if row.get("verdict") == "undetermined" and not (row.get("n304") or 0):
            continue  # a value never kept with a 304 cannot track: not worth a comment
        severity, start = wording
        why = _explanation(row)
        out.setdefault(url, []).append(Verdict(severity, f"{start}{': ' + why if why else ''}."))
    return out


def warm_up() -> None:
    """Import the detectors ahead of the first verdict (run in the detector process)."""
    import analysis.detectors  # noqa: F401
