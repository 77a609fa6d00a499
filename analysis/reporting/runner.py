"""Execute the report notebook with parameters and export it as one self-contained HTML file.

Why our own runner rather than papermill: papermill is not a dependency, and the part we need
(inject a parameters cell after the cell tagged ``parameters``, execute cell by cell with a
progress bar, export with code hidden) is a few lines over nbclient and nbconvert.

The kernel is always this very interpreter (``sys.executable``), never whatever ``python3``
kernelspec a user's Jupyter setup happens to resolve, so a fresh ``pip install -e .`` is all a
report needs.
"""

from __future__ import annotations

import re
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from nbconvert import HTMLExporter
from nbconvert.preprocessors import TagRemovePreprocessor
from tqdm import tqdm

#: The notebook shipped with the package checkout.
NOTEBOOKS_DIR = Path(__file__).resolve().parents[2] / "notebooks"
REPORT_NOTEBOOK = NOTEBOOKS_DIR / "report.ipynb"

KERNEL_NAME = "etagwatch-python"
INJECTED_TAG = "injected-parameters"
CELL_TIMEOUT_S = 600


class ReportError(Exception):
    """A report could not be produced; the message is one line for the user."""


class _ThisInterpreterKernels(KernelSpecManager):
    """Resolves our kernel name to ipykernel on ``sys.executable``; others as Jupyter does."""

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        if kernel_name == KERNEL_NAME:
            return KernelSpec(
                argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                display_name=f"Python {sys.version_info.major}.{sys.version_info.minor} (etagwatch)",
                language="python",
                resource_dir=str(Path(__file__).parent),
            )
        return super().get_kernel_spec(kernel_name)


def inject_parameters(nb: nbformat.NotebookNode, params: Mapping[str, Any]) -> None:
    """Insert, papermill-style, a cell assigning ``params`` right after the ``parameters`` cell
    (replacing an earlier injected cell), so the notebook's defaults stay visible above it."""
    nb.cells = [c for c in nb.cells if INJECTED_TAG not in c.get("metadata", {}).get("tags", [])]
    lines = ["# Parameters injected by etagwatch report"]
    lines += [f"{name} = {value!r}" for name, value in params.items()]
    cell = nbformat.v4.new_code_cell("\n".join(lines))
    cell.metadata["tags"] = [INJECTED_TAG]
    index = next(
        (i + 1 for i, c in enumerate(nb.cells) if "parameters" in c.get("metadata", {}).get("tags", [])),
        0,
    )
    nb.cells.insert(index, cell)


def _section_titles(nb: nbformat.NotebookNode) -> list[str]:
    """For each cell, the title of the markdown heading it falls under (for the progress bar)."""
    titles, current = [], "setup"
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            heading = next((ln for ln in cell.source.splitlines() if ln.startswith("#")), None)
            if heading:
                current = heading.lstrip("#").strip()
        titles.append(current)
    return titles


def _kernel_env() -> dict[str, str]:
    """The kernel's environment: ours, plus this checkout on the path (works without an
    install too) and a non-interactive matplotlib backend (figures are embedded as PNG)."""
    from analysis import child_env

    return child_env(MPLBACKEND="Agg")


@dataclass(frozen=True)
class RunResult:
    """The executed notebook and where its HTML (and optionally the notebook) went."""

    notebook: nbformat.NotebookNode
    html_path: Path | None
    notebook_path: Path | None


def execute_notebook(
    nb: nbformat.NotebookNode,
    *,
    cwd: Path | None = None,
    progress: bool = True,
) -> nbformat.NotebookNode:
    """Run every code cell in order on a fresh kernel of this interpreter.

    A failing cell stops the run with a ReportError naming the section and the exception.
    The notebook keeps the outputs produced so far (including the traceback).
    """
    titles = _section_titles(nb)
    code_cells = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    bar = tqdm(total=len(code_cells), desc="starting kernel", unit="cell", file=sys.stderr,
               disable=not progress, leave=False)
    # Local sockets in a private directory: nothing listens on TCP, nothing is left behind.
    with tempfile.TemporaryDirectory(prefix="etagwatch-kernel-") as sockets:
        km = KernelManager(
            kernel_name=KERNEL_NAME,
            kernel_spec_manager=_ThisInterpreterKernels(),
            transport="ipc",
            ip=str(Path(sockets) / "kernel"),
        )
        client = NotebookClient(
            nb,
            km=km,
            timeout=CELL_TIMEOUT_S,
            kernel_name=KERNEL_NAME,
            shutdown_kernel="immediate",
            resources={"metadata": {"path": str(cwd or Path.cwd())}},
        )
        try:
            # cleanup_kc: shut the kernel down even though we made its manager (nbclient would not)
            with client.setup_kernel(env=_kernel_env(), cleanup_kc=True):
                for index in code_cells:
                    bar.set_description(titles[index][:40])
                    try:
                        client.execute_cell(nb.cells[index], index)
                    except CellExecutionError as exc:
                        raise ReportError(
                            f"report cell {index} ({titles[index]}) failed: "
                            f"{exc.ename}: {exc.evalue}"
                        ) from exc
                    bar.update(1)
        finally:
            bar.close()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


REMOVE_TAG = "remove-from-report"


def export_html(
    nb: nbformat.NotebookNode, *, show_code: bool = False, title: str = "etagwatch report"
) -> str:
    """One self-contained HTML page: CSS inline, figures as base64 PNG, no external scripts
    (no MathJax / require.js from a CDN), code cells hidden unless ``show_code``; cells tagged
    ``remove-from-report`` (notes for notebook users) left out."""
    exporter = HTMLExporter(template_name="lab")
    exporter.register_preprocessor(
        TagRemovePreprocessor(remove_cell_tags={REMOVE_TAG}, enabled=True), enabled=True
    )
    exporter.exclude_input = not show_code
    exporter.exclude_input_prompt = not show_code
    exporter.exclude_output_prompt = True
    exporter.mathjax_url = ""
    exporter.require_js_url = ""
    exporter.widget_renderer_url = ""
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title}})
    return _strip_external_scripts(body)


_EXTERNAL_SCRIPT = re.compile(
    r'<script[^>]*\bsrc="(?:https?://[^"]*)?"[^>]*>\s*</script>'  # MathJax, require.js, widgets
    r"|<script\b[^>]*>(?:(?!</script>).)*?https?://cdnjs(?:(?!</script>).)*?</script>",  # mermaid
    re.S,
)


def _strip_external_scripts(html: str) -> str:
    """Remove the script tags the template points at CDNs: a report must open offline and must
    not make a reader's browser contact a third party."""
    return _EXTERNAL_SCRIPT.sub("", html)


def run_report(
    params: Mapping[str, Any],
    html_path: Path | None,
    *,
    notebook_path: Path | None = None,
    template: Path = REPORT_NOTEBOOK,
    show_code: bool = False,
    progress: bool = True,
) -> RunResult:
    """Execute ``template`` with ``params`` and write the HTML (and the executed notebook).

    The executed notebook is written even when a cell fails, so the traceback can be read.
    """
    try:
        nb = nbformat.read(template, as_version=4)
    except (OSError, nbformat.reader.NotJSONError) as exc:
        raise ReportError(f"{template}: cannot read the report notebook: {exc}") from exc
    inject_parameters(nb, params)
    try:
        execute_notebook(nb, progress=progress)
    finally:
        if notebook_path is not None:
            nbformat.write(nb, notebook_path)
    if html_path is not None:
        html = export_html(nb, show_code=show_code, title=str(params.get("title", "etagwatch report")))
        html_path.write_text(html, encoding="utf-8")
    return RunResult(nb, html_path, notebook_path)
