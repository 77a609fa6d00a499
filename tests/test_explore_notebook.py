"""notebooks/explore.ipynb runs top to bottom, headless (nbclient), on a store ingested from the
shipped sample captures and on an empty store; it is committed without outputs and names the
project's kernel, which is registered in this venv for this interpreter."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import pytest
from support import SAMPLE_CAPTURES

from analysis import notebook_server
from analysis.ingest import ingest_paths
from analysis.reporting import runner, story, third_parties
from analysis.reporting.data import load_report_data
from analysis.store import Store

EXPLORE = runner.NOTEBOOKS_DIR / "explore.ipynb"


@pytest.fixture(scope="module")
def sample_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("sample") / "sample.sqlite"
    with Store(db) as store:
        ingest_paths([SAMPLE_CAPTURES / "har", SAMPLE_CAPTURES / "flows"], store)
    return db


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("empty") / "empty.sqlite"
    Store(db).close()
    return db


def run_explore(db: Path, monkeypatch: pytest.MonkeyPatch) -> nbformat.NotebookNode:
    """Execute the committed notebook with ETAGWATCH_DB pointing at ``db``."""
    monkeypatch.setenv("ETAGWATCH_DB", str(db))
    nb = nbformat.read(EXPLORE, as_version=4)
    runner.execute_notebook(nb, progress=False)
    return nb


def outputs(nb: nbformat.NotebookNode) -> list[dict]:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]


def shown_text(nb: nbformat.NotebookNode) -> str:
    parts = []
    for o in outputs(nb):
        parts.append(o.get("text", ""))
        parts.extend(str(v) for k, v in o.get("data", {}).items() if k.startswith("text/"))
    return "\n".join(parts)


def test_committed_notebook_has_no_outputs_and_names_the_project_kernel() -> None:
    nb = nbformat.read(EXPLORE, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.outputs == [] and c.execution_count is None for c in code)
    assert nb.metadata.kernelspec.name == notebook_server.KERNEL_NAME
    assert nb.metadata.kernelspec.display_name == notebook_server.KERNEL_DISPLAY_NAME
    params = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1 and "ETAGWATCH_DB" in params[0].source


def test_the_project_kernel_is_registered_for_this_interpreter_in_its_prefix() -> None:
    """make registers it (--sys-prefix); Jupyter resolves the notebook's kernel name to it."""
    from jupyter_client.kernelspec import KernelSpecManager

    spec_dir = notebook_server.kernel_spec_dir()
    if not (spec_dir / "kernel.json").exists():
        pytest.fail(f"no kernelspec at {spec_dir}: `make .venv/.installed` registers it")
    spec = json.loads((spec_dir / "kernel.json").read_text())
    assert notebook_server.is_this_interpreter(spec["argv"][0])
    assert spec["display_name"] == notebook_server.KERNEL_DISPLAY_NAME
    assert spec_dir.is_relative_to(sys.prefix)
    found = KernelSpecManager().find_kernel_specs()[notebook_server.KERNEL_NAME]
    assert Path(found).resolve() == spec_dir.resolve()


@pytest.mark.slow
def test_explore_runs_on_the_sample_captures(sample_store: Path, monkeypatch) -> None:
    nb = run_explore(sample_store, monkeypatch)
    assert [o for o in outputs(nb) if o["output_type"] == "error"] == []
    text = shown_text(nb)
    assert str(sample_store) in text
    # the third-party question is answered with the sample's trackers and the lab's site
    assert "Third parties that identify clients, by first-party site" in text
    for party in ("tracker.test", "evercookie.test", "lab.test", "per-site"):
        assert party in text
    assert "Values each client held" in text
    assert sum("image/png" in o.get("data", {}) for o in outputs(nb)) >= 4


@pytest.mark.slow
def test_explore_runs_on_an_empty_store(empty_store: Path, monkeypatch) -> None:
    nb = run_explore(empty_store, monkeypatch)
    assert [o for o in outputs(nb) if o["output_type"] == "error"] == []
    text = shown_text(nb)
    assert "This store holds no exchanges" in text
    assert "no resource to follow" in text
    assert not any("image/png" in o.get("data", {}) for o in outputs(nb))


@pytest.mark.slow
def test_a_missing_store_stops_with_a_clear_message(tmp_path: Path, monkeypatch) -> None:
    with pytest.raises(runner.ReportError) as err:
        run_explore(tmp_path / "nope.sqlite", monkeypatch)
    assert "nope.sqlite: no such store" in str(err.value) and "make demo" in str(err.value)


def test_third_parties_name_the_sites_they_identify_clients_on(sample_store: Path) -> None:
    data = load_report_data([sample_store])
    table = third_parties.identifying_third_parties(data)
    assert set(table["verdict"]) <= {"identifier", "likely-identifier"}
    assert {"tracker.test", "evercookie.test"} <= set(table["third_party"])
    assert set(table["first_party_sites"]) == {"lab.test"}
    assert table["scope_basis"].notna().all()
    short = third_parties.sites_by_third_party(table)
    assert list(short["third_party"]) == sorted(set(table["third_party"]))
    # first-party resources are left out unless asked for: none of them is an identifier here
    everything = third_parties.identifying_third_parties(data, third_party_only=False)
    assert len(everything) >= len(table)


def test_a_resource_story_shows_each_client_holding_its_own_value(sample_store: Path) -> None:
    data = load_report_data([sample_store])
    url = story.pick_resource(data)
    verdict = data.resources.loc[data.resources["url"] == url, "verdict"].iloc[0]
    assert verdict == "identifier"  # the worst verdict comes first
    tale = story.resource_story(data, url)
    assert tale["when"].is_monotonic_increasing
    per_client = story.values_by_client(tale)
    assert len(per_client) == tale["client"].nunique() >= 2
    held = per_client["values_held"]
    assert held.str.len().gt(0).all() and held.is_unique  # one value each, nobody shares
    # a 304 confirms the value the client sent
    confirmed = tale[tale["status"] == 304]
    assert (confirmed["held"] == confirmed["sent_if_none_match"]).all() and len(confirmed)
