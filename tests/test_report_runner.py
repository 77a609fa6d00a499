"""The notebook runner and `etagwatch report`'s command line: parameters injected
papermill-style, this interpreter as the kernel, failing cells and bad inputs reported in one
line, HTML without external scripts."""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest

from analysis.cli import main
from analysis.reporting import runner


def _notebook(*cells: nbformat.NotebookNode) -> nbformat.NotebookNode:
    return nbformat.v4.new_notebook(cells=list(cells))


def _params_cell(source: str = "x = 1") -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["tags"] = ["parameters"]
    return cell


def test_parameters_are_injected_after_the_parameters_cell_once() -> None:
    nb = _notebook(nbformat.v4.new_markdown_cell("# t"), _params_cell(),
                   nbformat.v4.new_code_cell("print(x)"))
    runner.inject_parameters(nb, {"x": 2, "inputs": ["a b.har"]})
    runner.inject_parameters(nb, {"x": 3})
    tags = [c.metadata.get("tags", []) for c in nb.cells]
    assert tags.count([runner.INJECTED_TAG]) == 1
    assert tags.index([runner.INJECTED_TAG]) == 2
    assert nb.cells[2].source.splitlines()[1:] == ["x = 3"]


def test_the_shipped_notebook_has_a_parameters_cell_and_no_outputs() -> None:
    nb = nbformat.read(runner.REPORT_NOTEBOOK, as_version=4)
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1 and "inputs = []" in params[0].source
    for path in (runner.REPORT_NOTEBOOK, runner.NOTEBOOKS_DIR / "explore.ipynb"):
        committed = nbformat.read(path, as_version=4)
        nbformat.validate(committed)
        for cell in committed.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, path


def test_html_export_drops_cdn_scripts_and_notes() -> None:
    note = nbformat.v4.new_markdown_cell("for notebook users only")
    note.metadata["tags"] = [runner.REMOVE_TAG]
    nb = _notebook(note, nbformat.v4.new_markdown_cell("## Kept"))
    html = runner.export_html(nb, title="My report")
    assert "<title>My report</title>" in html
    assert "Kept" in html and "for notebook users only" not in html
    assert "cdnjs" not in html and 'src=""' not in html and "<script src=" not in html


@pytest.mark.slow
def test_kernel_is_this_interpreter_and_a_failing_cell_names_its_section(tmp_path: Path) -> None:
    template = tmp_path / "t.ipynb"
    nbformat.write(_notebook(
        _params_cell("marker = None"),
        nbformat.v4.new_code_cell("import sys; print(sys.executable, marker)"),
        nbformat.v4.new_markdown_cell("## Broken section"),
        nbformat.v4.new_code_cell("raise ValueError('deliberate')"),
        nbformat.v4.new_code_cell("print('never runs')"),
    ), template)
    kept = tmp_path / "out.ipynb"
    with pytest.raises(runner.ReportError) as err:
        runner.run_report({"marker": "m-42"}, tmp_path / "out.html", notebook_path=kept,
                          template=template, progress=False)
    assert "Broken section" in str(err.value) and "ValueError: deliberate" in str(err.value)
    assert "\n" not in str(err.value)
    executed = nbformat.read(kept, as_version=4)
    printed = executed.cells[2].outputs[0]["text"].split()
    assert printed == [sys.executable, "m-42"]
    assert executed.cells[4].outputs[0]["output_type"] == "error"
    assert not (tmp_path / "out.html").exists()


def test_missing_input_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    missing = tmp_path / "nope.har"
    assert main(["report", str(missing), "-o", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"etagwatch: error: {missing}: no such file or directory"


def test_output_folder_must_exist(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    har = tmp_path / "a.har"
    har.write_text('{"log": {"entries": []}}')
    out = tmp_path / "no" / "r.html"
    assert main(["report", str(har), "-o", str(out)]) == 2
    assert "its folder does not exist" in capsys.readouterr().err
