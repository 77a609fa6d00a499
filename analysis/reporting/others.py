"""Section "Other verdicts": every resource judged changed, unstable or undetermined, named with
its evidence. They accuse no one (or only a server's configuration), but a report that counts
them without naming them leaves a reader unable to check them or to settle the undetermined.
"""

from __future__ import annotations

import pandas as pd

from analysis.reporting import style
from analysis.reporting.data import ReportData

#: The non-stable verdicts neither the Identifiers nor the Churn section lists, worst first.
OTHER_VERDICTS = ("changed", "unstable", "undetermined")
COLUMNS = ("url", "host", "verdict", "confidence", "validator", "clients", "values",
           "full_responses", "wasted")


def other_resources(data: ReportData) -> pd.DataFrame:
    """The changed, unstable and undetermined resource rows: worst verdict first, then the
    most confident, then the most fetched."""
    res = data.resources
    if res.empty or "verdict" not in res.columns:
        return res.iloc[0:0]
    hits = res[res["verdict"].isin(OTHER_VERDICTS)]
    rank = hits["verdict"].map({v: i for i, v in enumerate(OTHER_VERDICTS)})
    keys = ["_rank", "confidence", "exchanges"] if "exchanges" in hits.columns else ["_rank"]
    ascending = [True, False, False][: len(keys)]
    return hits.assign(_rank=rank).sort_values(keys, ascending=ascending).drop(columns="_rank")


def show(data: ReportData, *, max_rows: int = 30) -> None:
    """The section as the notebook shows it."""
    from analysis.reporting.evidence_rows import show_resources

    if data.empty:
        style.nothing_to_report("the inputs hold no exchanges.")
        return
    hits = other_resources(data)
    counts = hits["verdict"].value_counts()
    caption = ", ".join(f"{int(counts[v])} {v}" for v in OTHER_VERDICTS if v in counts)
    show_resources(hits, COLUMNS, max_rows=max_rows,
                   empty="no resource was judged changed, unstable or undetermined.",
                   caption=f"Changed, unstable and undetermined resources ({caption}), "
                           "with their evidence")
