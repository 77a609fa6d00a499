"""Notebook reports: the tables and figures of ``notebooks/report.ipynb``, one module per
section, and the runner that executes the notebook and exports it as one HTML file.

Nothing here decides anything about validators: verdicts, findings and per-host figures come
from ``analysis.detectors.run_all``; these modules only arrange them for a reader.
"""
