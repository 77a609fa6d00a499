"""Probe outcomes in a Parquet dataset, so `analyze DATASET` settles what `analyze STORE` does.

`etagwatch probe --candidates STORE` records its outcomes in the store (``probe_outcomes``,
docs/schema.md); `etagwatch export` carries the ones the dataset lacks beside the exchanges:
one Parquet file per export that found some, under ``probe_outcomes/`` (``evidence`` as JSON
text), named in the manifest's ``probe_outcomes`` list as exchange files are in ``files``. The
file is written under a temporary name, synced and renamed before the manifest names it, so a
crash leaves nothing a reader sees (the next writer removes it). The highest outcome id
exported is kept with the store's exchange watermark; outcomes exported twice (a copy of the
store that went its own way is exported whole again) are dropped on reading, as exact
duplicates, so they never count twice.
"""

from __future__ import annotations

import json
import os
import sqlite3
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from analysis.engine.paths import is_url, join

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

#: The dataset's folder of outcome files.
FOLDER = "probe_outcomes"

def schema() -> pa.Schema:
    import pyarrow as pa

    from analysis.store import PROBE_OUTCOME_COLUMNS

    return pa.schema([(c, pa.float64() if c == "probed_at" else pa.string())
                      for c in PROBE_OUTCOME_COLUMNS])


def export_outcomes(conn: sqlite3.Connection, folder: Path, after: int
                    ) -> tuple[str | None, int, int]:
    """The store's outcomes with ids above ``after`` written as one committed file of the
    dataset at ``folder``: (its path relative to the folder, or None when there were none;
    outcomes written; the highest id written, else ``after``). The caller names the file in
    the manifest."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from analysis.dataset import _fsync_dir
    from analysis.store import PROBE_OUTCOME_COLUMNS

    present = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                           "name = 'probe_outcomes'").fetchone()
    rows = conn.execute(f"SELECT id, {', '.join(PROBE_OUTCOME_COLUMNS)} FROM probe_outcomes "
                        "WHERE id > ? ORDER BY id", (after,)).fetchall() if present else []
    if not rows:
        return None, 0, after
    names = list(PROBE_OUTCOME_COLUMNS)
    table = pa.Table.from_pydict({name: [r[i + 1] for r in rows] for i, name in enumerate(names)},
                                 schema=schema())
    (folder / FOLDER).mkdir(exist_ok=True)
    final = folder / FOLDER / f"{uuid.uuid4().hex[:12]}.parquet"
    tmp = final.with_name(f".{final.name}.tmp")
    pq.write_table(table, tmp, compression="zstd")
    with tmp.open("rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, final)
    _fsync_dir(final.parent)
    return final.relative_to(folder).as_posix(), len(rows), int(rows[-1][0])


def clean(folder: Path, kept: list[str] | None) -> None:
    """Remove outcome files no manifest names (a writer that died before committing)."""
    keep = set(kept or [])
    for path in folder.glob(f"{FOLDER}/*"):
        if path.relative_to(folder).as_posix() not in keep:
            path.unlink(missing_ok=True)


def read_outcomes(dataset: str | os.PathLike[str]) -> pd.DataFrame | None:
    """The dataset's probe outcomes as ``store.load_probe_outcomes`` returns a store's (oldest
    export first, ``evidence`` decoded, exact duplicates dropped); None when it has none.
    ``dataset``: a folder or a URL."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from analysis.dataset import DatasetError, Manifest, _remote, local_folder, remote_copy_manifest

    tables: list[pa.Table] = []
    if is_url(dataset):
        fs, root = _remote(dataset)
        with remote_copy_manifest(fs, root) as local:
            manifest = Manifest.read(local)
        for rel in (manifest.probe_outcomes or []) if manifest else []:
            with fs.open(join(root, rel), "rb") as fh:
                tables.append(pq.read_table(fh, schema=schema()))
    else:
        folder = local_folder(dataset)
        manifest = Manifest.read(folder)
        for rel in (manifest.probe_outcomes or []) if manifest else []:
            try:
                tables.append(pq.read_table(folder / rel, schema=schema()))
            except (OSError, pa.ArrowInvalid) as exc:
                raise DatasetError(f"{folder / rel}: the dataset's probe outcomes cannot be "
                                   f"read ({exc})") from None
    if not tables:
        return None
    from analysis.store import PROBE_OUTCOME_COLUMNS

    # rows as the store's come (a few per probed resource), so the frame is built alike
    rows = list(dict.fromkeys(tuple(r.values()) for r in pa.concat_tables(tables).to_pylist()))
    frame = pd.DataFrame.from_records(rows, columns=list(PROBE_OUTCOME_COLUMNS))
    frame["evidence"] = [json.loads(e) for e in frame["evidence"]]
    return frame
