"""mitmdump with etagwatch's addon (and the lab's routing addon) on a free loopback port.

One instance per browser profile, each with ``etagwatch_client`` set to the profile's name,
because every profile reaches the proxy from 127.0.0.1 and 'address' mode would merge them.

For HTTPS, mitmdump verifies the lab's servers against ``upstream_ca`` (the lab CA) and
forges leaf certificates signed by its own CA, ``ca_cert`` once started, which the browser
must trust (:func:`analysis.lab.trust.chromium_trust_args`).
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from analysis.lab.daemon import ManagedServer
from analysis.lab.net import LabError, free_port

#: mitmproxy's CA certificate (PEM, no key) in its confdir, written when it starts.
CA_CERT_NAME = "mitmproxy-ca-cert.pem"

ROOT = Path(__file__).resolve().parents[2]
ADDON = ROOT / "addons" / "etagwatch.py"
ROUTE = Path(__file__).resolve().with_name("mitm_route.py")


def mitmdump_path(name: str = "mitmdump") -> str:
    """mitmdump (or mitmweb) from the running interpreter's environment first (the project's
    venv)."""
    local = Path(sys.executable).with_name(name)
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if not found:
        raise LabError(f"{name} not found (pip install mitmproxy into the project's venv)")
    return found


class MitmDump(ManagedServer):
    """``mitmdump -s addons/etagwatch.py -s analysis/lab/mitm_route.py --set ...``."""

    kind = "mitmdump"

    def __init__(
        self,
        *,
        db: str | os.PathLike[str] | None = None,
        client: str | None = None,
        flows: str | os.PathLike[str] | None = None,
        scripts: Sequence[str | os.PathLike[str]] = (ADDON, ROUTE),
        options: Mapping[str, str] | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
        name: str = "",
        program: str | None = None,
        upstream_ca: str | os.PathLike[str] | None = None,
        confdir: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__(host=host, port=port, name=name or (client or "mitmdump"))
        self.upstream_ca = Path(upstream_ca).resolve() if upstream_ca is not None else None
        #: mitmproxy's confdir (its CA); None: a fresh one per start, in the private workdir.
        #: Pass a kept folder for the same CA across runs (profiles resumed later trust it).
        self.confdir = Path(confdir).resolve() if confdir is not None else None
        self.db = Path(db).resolve() if db is not None else None
        self.client = client
        self.flows = Path(flows).resolve() if flows is not None else None
        self.scripts = [Path(s) for s in scripts]
        self.options = dict(options or {})
        self.program = program or mitmdump_path()

    def write_config(self, workdir: Path) -> None:
        for script in self.scripts:
            if not script.exists():
                raise LabError(f"mitmdump script {script} does not exist")

    def command(self, workdir: Path) -> list[str]:
        cmd = [
            self.program,
            "--listen-host",
            self.host,
            "--listen-port",
            str(self.port),
            "--set",
            f"confdir={self._confdir(workdir)}",
        ]
        options = {**self.default_options(), **self.options}
        for script in self.scripts:
            cmd += ["-s", str(script)]
        if self.db is not None:
            cmd += ["--set", f"etagwatch_db={self.db}"]
        if self.client:
            cmd += ["--set", f"etagwatch_client={self.client}"]
        if self.flows is not None:
            cmd += ["-w", str(self.flows)]
            if ROUTE in self.scripts:  # keep only lab traffic in the saved flows
                options.setdefault("save_stream_filter", r"~d \.test$")
        if self.upstream_ca is not None:
            options.setdefault("ssl_verify_upstream_trusted_ca", str(self.upstream_ca))
        for key, value in options.items():
            cmd += ["--set", f"{key}={value}"]
        return cmd

    @property
    def ca_cert(self) -> Path:
        """The CA mitmdump signs its forged server certificates with (exists once started)."""
        if self.workdir is None:
            raise LabError(f"{self.describe()} is not running: its CA does not exist yet")
        path = self._confdir(self.workdir) / CA_CERT_NAME
        if not path.exists():
            raise LabError(f"{self.describe()}: no CA certificate at {path}")
        return path

    def _confdir(self, workdir: Path) -> Path:
        return self.confdir if self.confdir is not None else workdir / "conf"

    def default_options(self) -> dict[str, str]:
        return {"termlog_verbosity": "warn", "flow_detail": "0"}

    def env(self) -> dict[str, str]:
        # The addon imports the project; make it importable even when not pip-installed.
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        return env


class MitmWeb(MitmDump):
    """mitmweb instead of mitmdump: the same proxy and addons, plus the web UI, whose flow list
    (``GET {web_url}/flows``) is what a mitmweb user sees."""

    kind = "mitmweb"

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("program", mitmdump_path("mitmweb"))
        super().__init__(**kwargs)
        self.web_port = free_port(self.host)

    @property
    def web_url(self) -> str:
        return f"http://{self.host}:{self.web_port}"

    def default_options(self) -> dict[str, str]:
        return {
            "termlog_verbosity": "warn",
            "web_open_browser": "false",
            "web_host": self.host,
            "web_port": str(self.web_port),
        }
