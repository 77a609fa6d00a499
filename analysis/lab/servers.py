"""nginx, Apache httpd and haproxy from the system, each on a free loopback port with its own
temporary config, pid and log files (see :class:`analysis.lab.daemon.ManagedServer`).

    with NginxOrigin(docroot) as origin:
        httpx.get(origin.url + "/index.html")

Every origin adds ``Cache-Control: no-cache`` by default so browsers revalidate on each visit
(If-None-Match, If-Modified-Since) instead of reusing heuristic freshness, and an
``X-Backend`` header naming itself, so churn can be tied to the backend that sent each value.
"""

from __future__ import annotations

import grp
import os
import pwd
from collections.abc import Mapping, Sequence
from pathlib import Path

from analysis.lab.daemon import ManagedServer, find_program
from analysis.lab.net import LabError

#: Content types the lab serves; written into each config so no system file is needed.
MIME_TYPES: dict[str, str] = {
    "html": "text/html",
    "css": "text/css",
    "js": "application/javascript",
    "json": "application/json",
    "txt": "text/plain",
    "gif": "image/gif",
    "png": "image/png",
    "svg": "image/svg+xml",
}

APACHE_MODULES = ("mpm_event", "authz_core", "mime", "headers", "dir")
APACHE_MODULE_DIR = Path("/usr/lib/apache2/modules")


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _listen(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _unprivileged_user() -> tuple[str, str]:
    """User and group for workers of a server started as root (Apache refuses root)."""
    for user in ("www-data", "nobody"):
        try:
            entry = pwd.getpwnam(user)
        except KeyError:
            continue
        return user, grp.getgrgid(entry.pw_gid).gr_name
    return "nobody", "nogroup"


def _make_readable(root: Path) -> None:
    """Let an unprivileged worker read a served tree (only needed when we run as root)."""
    if os.geteuid() != 0:
        return
    for parent in root.parents:
        if not parent.stat().st_mode & 0o001:
            raise LabError(
                f"{root} is inside {parent}, which unprivileged workers cannot enter "
                "(serve a directory under a world-searchable path)"
            )
    for path in (root, *root.rglob("*")):
        mode = path.stat().st_mode
        path.chmod(mode | (0o555 if path.is_dir() else 0o444))


class NginxOrigin(ManagedServer):
    """nginx serving ``root`` statically: ETag ``"<mtime hex>-<size hex>"`` and Last-Modified."""

    kind = "nginx"

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        name: str = "",
        cache_control: str | None = "no-cache",
        headers: Mapping[str, str] | None = None,
        backend_header: str | None = "X-Backend",
        access_log: bool = False,
        program: str | None = None,
    ) -> None:
        super().__init__(host=host, port=port, name=name)
        self.root = Path(root).resolve()
        self.cache_control = cache_control
        self.headers = dict(headers or {})
        self.backend_header = backend_header
        self.access_log = access_log
        self.program = program or find_program("nginx")

    def write_config(self, workdir: Path) -> None:
        if not self.root.is_dir():
            raise FileNotFoundError(f"nginx root {self.root} is not a directory")
        add = dict(self.headers)
        if self.cache_control:
            add.setdefault("Cache-Control", self.cache_control)
        if self.backend_header:
            add.setdefault(self.backend_header, self.name)
        add_lines = "\n".join(f"      add_header {k} {_quote(v)} always;" for k, v in add.items())
        types = "\n".join(f"    {t} {ext};" for ext, t in MIME_TYPES.items())
        # Root runs workers as root here: the served tree may be a private temp dir.
        user = "user root;" if os.geteuid() == 0 else ""
        temp = "\n".join(
            f"  {kind}_temp_path {workdir / kind};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        log = f"access_log {workdir / 'access.log'};" if self.access_log else "access_log off;"
        (workdir / "nginx.conf").write_text(
            f"""daemon off;
worker_processes 1;
pid {workdir / "nginx.pid"};
error_log stderr warn;
{user}
events {{ worker_connections 512; }}
http {{
  types {{
{types}
  }}
  default_type application/octet-stream;
  {log}
{temp}
  server {{
    listen {_listen(self.host, self.port)};
    server_name _;
    root {self.root};
    location / {{
{add_lines}
    }}
  }}
}}
"""
        )

    def command(self, workdir: Path) -> list[str]:
        return [self.program, "-p", str(workdir), "-c", str(workdir / "nginx.conf"), "-e", "stderr"]


class ApacheOrigin(ManagedServer):
    """Apache httpd serving ``root`` with ``FileETag`` as given (default: INode MTime Size,
    the setting that makes identical copies on two machines carry different ETags)."""

    kind = "apache2"

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        name: str = "",
        file_etag: str = "INode MTime Size",
        cache_control: str | None = "no-cache",
        headers: Mapping[str, str] | None = None,
        backend_header: str | None = "X-Backend",
        program: str | None = None,
        module_dir: Path = APACHE_MODULE_DIR,
    ) -> None:
        super().__init__(host=host, port=port, name=name)
        self.root = Path(root).resolve()
        self.file_etag = file_etag
        self.cache_control = cache_control
        self.headers = dict(headers or {})
        self.backend_header = backend_header
        self.program = program or find_program("apache2")
        self.module_dir = module_dir

    def write_config(self, workdir: Path) -> None:
        if not self.root.is_dir():
            raise FileNotFoundError(f"apache2 root {self.root} is not a directory")
        _make_readable(self.root)
        add = dict(self.headers)
        if self.cache_control:
            add.setdefault("Cache-Control", self.cache_control)
        if self.backend_header:
            add.setdefault(self.backend_header, self.name)
        modules = "\n".join(
            f"LoadModule {m}_module {self.module_dir / f'mod_{m}.so'}" for m in APACHE_MODULES
        )
        user = ""
        if os.geteuid() == 0:
            u, g = _unprivileged_user()
            user = f"User {u}\nGroup {g}"
        types = "\n".join(f"AddType {t} .{ext}" for ext, t in MIME_TYPES.items())
        headers = "\n".join(f"Header always set {k} {_quote(v)}" for k, v in add.items())
        (workdir / "mime.types").write_text("")
        (workdir / "httpd.conf").write_text(
            f"""ServerRoot {_quote(str(workdir))}
ServerName {self.name or "lab"}
Listen {_listen(self.host, self.port)}
PidFile {_quote(str(workdir / "httpd.pid"))}
DefaultRuntimeDir {_quote(str(workdir))}
ErrorLog /dev/stderr
LogLevel warn
{modules}
{user}
StartServers 1
ServerLimit 1
ThreadsPerChild 25
MaxRequestWorkers 25
KeepAlive On
TypesConfig {_quote(str(workdir / "mime.types"))}
{types}
DocumentRoot {_quote(str(self.root))}
<Directory {_quote(str(self.root))}>
  Require all granted
  FileETag {self.file_etag}
</Directory>
{headers}
"""
        )

    def command(self, workdir: Path) -> list[str]:
        return [self.program, "-f", str(workdir / "httpd.conf"), "-DFOREGROUND"]

    def env(self) -> dict[str, str]:
        # Debian's apache2 reads APACHE_* variables only through apache2ctl; keep the rest.
        return {k: v for k, v in os.environ.items() if not k.startswith("APACHE_")}


class HAProxy(ManagedServer):
    """haproxy balancing round-robin over ``backends`` (name, host, port); each response names
    the backend that served it in ``backend_header``, as load balancers in the wild often do."""

    kind = "haproxy"

    def __init__(
        self,
        backends: Sequence[tuple[str, str, int]],
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        name: str = "",
        balance: str = "roundrobin",
        backend_header: str | None = "X-Backend",
        program: str | None = None,
    ) -> None:
        super().__init__(host=host, port=port, name=name)
        if not backends:
            raise ValueError("haproxy needs at least one backend")
        self.backends = list(backends)
        self.balance = balance
        self.backend_header = backend_header
        self.program = program or find_program("haproxy")

    def write_config(self, workdir: Path) -> None:
        servers = "\n".join(f"  server {name} {_listen(h, p)}" for name, h, p in self.backends)
        header = (
            f"  http-response set-header {self.backend_header} %s" if self.backend_header else ""
        )
        (workdir / "haproxy.cfg").write_text(
            f"""global
  maxconn 512
defaults
  mode http
  option http-keep-alive
  timeout connect 2s
  timeout client 30s
  timeout server 30s
frontend lab
  bind {_listen(self.host, self.port)}
  default_backend pool
backend pool
  balance {self.balance}
{header}
{servers}
"""
        )

    def command(self, workdir: Path) -> list[str]:
        return [self.program, "-db", "-f", str(workdir / "haproxy.cfg")]
