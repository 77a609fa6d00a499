"""Dataset and result paths: local folders or fsspec URLs (s3://, gs://, file://), one way.

A URL needs fsspec and the filesystem's package (s3fs for s3://, gcsfs for gs://); without
them the error says what to install. Credentials and endpoints come from the filesystem's own
configuration (for S3: the AWS environment variables and files, AWS_ENDPOINT_URL included),
on the client and on every Dask worker alike.
"""

from __future__ import annotations

import os
from typing import Any

#: What to install for each scheme (the extra of etagwatch, or the package).
PACKAGES = {"s3": "etagwatch[s3] (s3fs)", "s3a": "etagwatch[s3] (s3fs)", "gs": "gcsfs",
            "gcs": "gcsfs", "az": "adlfs", "abfs": "adlfs"}


class RemotePathError(Exception):
    """A URL whose filesystem is not installed: one line naming what to install."""


def is_url(target: str | os.PathLike[str]) -> bool:
    text = os.fspath(target)
    return "://" in text and not text.startswith("file://")


def filesystem(target: str | os.PathLike[str]) -> tuple[Any, str]:
    """(fsspec filesystem, path within it) for a local folder or a URL."""
    text = os.fspath(target)
    try:
        import fsspec
        from fsspec.core import url_to_fs
    except ImportError:
        raise RemotePathError(f"{text}: a remote path needs fsspec (pip install fsspec)") from None
    if not is_url(text):
        return fsspec.filesystem("file"), os.path.abspath(text.removeprefix("file://"))
    scheme = text.split("://", 1)[0]
    try:
        return url_to_fs(text)
    except (ImportError, ValueError) as exc:
        what = PACKAGES.get(scheme, f"the fsspec filesystem for {scheme}://")
        raise RemotePathError(f"{text}: {scheme}:// needs {what}: pip install it ({exc})") from None


def join(root: str, *parts: str) -> str:
    return "/".join([root.rstrip("/"), *parts])


def url_of(fs: Any, path: str) -> str:
    """The path as a URL other processes (Dask workers) can open."""
    return fs.unstrip_protocol(path) if fs.protocol not in ("file", ("file", "local")) else path
