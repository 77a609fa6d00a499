"""etagwatch's library: RFC 9110 core, exchange records, readers, store, detectors, reports."""

__version__ = "0.1.0"


def child_env(**extra: str) -> dict[str, str]:
    """This process's environment for a Python child that must import this very ``analysis``
    package (a checkout run without an install too): its folder first on PYTHONPATH."""
    import os
    from pathlib import Path

    env = dict(os.environ)
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return {**env, **extra}
