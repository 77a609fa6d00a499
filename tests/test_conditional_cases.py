"""The case table (tests/cases/conditional_cases.py): every row must get its RFC 9110 answer."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

from analysis.conditional import evaluate


def _load_cases() -> list[dict[str, Any]]:
    path = Path(__file__).parent / "cases" / "conditional_cases.py"
    spec = importlib.util.spec_from_file_location("conditional_cases", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.CASES


CASES = _load_cases()
PEERS = ("Django ", "Go ", "httpwg cache-tests ")


def test_table_is_large_unique_and_sourced() -> None:
    ids = [c["id"] for c in CASES]
    assert len(ids) >= 100
    assert len(set(ids)) == len(ids)
    assert all(c["source"].startswith((*PEERS, "RFC 9110")) for c in CASES)
    for peer in PEERS:  # every peer suite contributes rows
        assert sum(c["source"].startswith(peer) for c in CASES) >= 10, peer
    assert {c["expected_status"] for c in CASES} == {200, 206, 304, 412}


@pytest.mark.parametrize("row", CASES, ids=[c["id"] for c in CASES])
def test_case(row: dict[str, Any]) -> None:
    decision = evaluate(
        row["method"],
        row["headers"],
        etag=row["etag"],
        last_modified=row["last_modified"],
        exists=row["exists"],
        unconditional_status=row["unconditional_status"],
    )
    assert (decision.status, decision.rfc) == (row["expected_status"], row["rfc"]), (
        f"{row['source']}: {decision.reason} | ignored: {decision.ignored}"
    )
    assert decision.reason
    if decision.step is not None:
        assert decision.rfc.startswith(f"RFC 9110 13.2.2 step {decision.step}")
