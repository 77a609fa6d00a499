"""nginx, Apache httpd and haproxy from the system, each on a free loopback port with its own
temporary config, pid and log files (see :class:`analysis.lab.daemon.ManagedServer`).

    with NginxOrigin(docroot) as origin:
        httpx.get(origin.url + "/index.html")

Every origin adds ``Cache-Control: no-cache`` by default so browsers revalidate on each visit
(If-None-Match, If-Modified-Since) instead of reusing heuristic freshness, and an
``X-Backend`` header naming itself, so churn can be tied to the backend that sent each value.

Given ``tls=`` (:class:`analysis.lab.tls.TLSFiles`), each also serves the same content over
HTTPS on a second port (``tls_port``, ``https_url``): nginx with HTTP/2 (``listen ... ssl
http2``, the form of Debian's nginx 1.22), Apache httpd with mod_ssl and mod_http2
(``Protocols h2 http/1.1``), haproxy terminating TLS (``bind ... ssl crt PEM alpn
h2,http/1.1``). :class:`NginxTLSFront` puts HTTPS and HTTP/2 in front of a plain-HTTP origin
(the lab's Python origins).
"""

from __future__ import annotations

import grp
import os
import pwd
from collections.abc import Mapping, Sequence
from pathlib import Path

from analysis.lab.daemon import ManagedServer, find_program
from analysis.lab.net import LabError, free_port
from analysis.lab.tls import TLSFiles

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
#: Added when Apache also serves HTTPS: TLS, HTTP/2, and the session cache mod_ssl wants.
APACHE_TLS_MODULES = ("socache_shmcb", "ssl", "http2")
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


class TLSListener(ManagedServer):
    """A server that, given ``tls``, also listens for HTTPS on ``tls_port``."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        name: str = "",
        tls: TLSFiles | None = None,
        tls_port: int | None = None,
    ) -> None:
        super().__init__(host=host, port=port, name=name)
        self.tls = tls
        self.tls_port = (tls_port or free_port(host)) if tls is not None else None

    def ports(self) -> list[int]:
        return [self.port] + ([self.tls_port] if self.tls_port is not None else [])

    @property
    def https_url(self) -> str:
        if self.tls_port is None:
            raise LabError(f"{self.describe()} serves no HTTPS (start it with tls=)")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.tls_port}"


def _nginx_tls(tls: TLSFiles) -> str:
    return f"""    ssl_certificate {tls.fullchain};
    ssl_certificate_key {tls.key};
    ssl_protocols TLSv1.2 TLSv1.3;"""


def _nginx_conf(workdir: Path, servers: str, *, access_log: bool = False) -> str:
    """nginx.conf around ``servers`` (server blocks): foreground, private temp paths, no system
    file read."""
    types = "\n".join(f"    {t} {ext};" for ext, t in MIME_TYPES.items())
    # Root runs workers as root here: the served tree may be a private temp dir.
    user = "user root;" if os.geteuid() == 0 else ""
    temp = "\n".join(
        f"  {kind}_temp_path {workdir / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    log = f"access_log {workdir / 'access.log'};" if access_log else "access_log off;"
    return f"""daemon off;
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
{servers}
}}
"""


def _nginx_command(program: str, workdir: Path) -> list[str]:
    return [program, "-p", str(workdir), "-c", str(workdir / "nginx.conf"), "-e", "stderr"]


class NginxOrigin(TLSListener):
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
        tls: TLSFiles | None = None,
        tls_port: int | None = None,
    ) -> None:
        super().__init__(host=host, port=port, name=name, tls=tls, tls_port=tls_port)
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
        tls = ""
        if self.tls is not None:
            tls = f"    listen {_listen(self.host, self.tls_port)} ssl http2;\n{_nginx_tls(self.tls)}"
        server = f"""  server {{
    listen {_listen(self.host, self.port)};
{tls}
    server_name _;
    root {self.root};
    location / {{
{add_lines}
    }}
  }}"""
        (workdir / "nginx.conf").write_text(
            _nginx_conf(workdir, server, access_log=self.access_log)
        )

    def command(self, workdir: Path) -> list[str]:
        return _nginx_command(self.program, workdir)


class NginxTLSFront(TLSListener):
    """nginx terminating HTTPS and HTTP/2 on ``port`` and passing every request unchanged (Host,
    validators, Origin) to the plain-HTTP origin ``upstream`` ("host:port"). Responses come back
    as the origin sent them: nginx answers no conditional request itself for a proxied, uncached
    response, so a 200, 304 or fresh ETag is the origin's own."""

    kind = "nginx-tls"

    def __init__(
        self,
        upstream: str,
        *,
        tls: TLSFiles,
        host: str = "127.0.0.1",
        port: int | None = None,
        name: str = "",
        program: str | None = None,
    ) -> None:
        port = port or free_port(host)
        super().__init__(host=host, port=port, name=name, tls=tls, tls_port=port)
        self.upstream = upstream
        self.program = program or find_program("nginx")

    def ports(self) -> list[int]:
        return [self.port]

    def write_config(self, workdir: Path) -> None:
        assert self.tls is not None
        server = f"""  upstream origin {{
    server {self.upstream};
    keepalive 8;
  }}
  server {{
    listen {_listen(self.host, self.port)} ssl http2;
{_nginx_tls(self.tls)}
    server_name _;
    location / {{
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host:$server_port;
      proxy_pass_header Server;
      proxy_pass_header Date;
      proxy_buffering off;
    }}
  }}"""
        (workdir / "nginx.conf").write_text(_nginx_conf(workdir, server))

    def command(self, workdir: Path) -> list[str]:
        return _nginx_command(self.program, workdir)


class ApacheOrigin(TLSListener):
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
        tls: TLSFiles | None = None,
        tls_port: int | None = None,
    ) -> None:
        super().__init__(host=host, port=port, name=name, tls=tls, tls_port=tls_port)
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
        wanted = APACHE_MODULES + (APACHE_TLS_MODULES if self.tls is not None else ())
        modules = "\n".join(
            f"LoadModule {m}_module {self.module_dir / f'mod_{m}.so'}" for m in wanted
        )
        tls = ""
        if self.tls is not None:
            address = _listen(self.host, self.tls_port)  # type: ignore[arg-type]
            tls = f"""Listen {address}
SSLSessionCache {_quote(f"shmcb:{workdir / 'ssl_scache'}(512000)")}
<VirtualHost {address}>
  SSLEngine on
  SSLCertificateFile {_quote(str(self.tls.fullchain))}
  SSLCertificateKeyFile {_quote(str(self.tls.key))}
  Protocols h2 http/1.1
</VirtualHost>"""
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
{tls}
"""
        )

    def command(self, workdir: Path) -> list[str]:
        return [self.program, "-f", str(workdir / "httpd.conf"), "-DFOREGROUND"]

    def env(self) -> dict[str, str]:
        # Debian's apache2 reads APACHE_* variables only through apache2ctl; keep the rest.
        return {k: v for k, v in os.environ.items() if not k.startswith("APACHE_")}


class HAProxy(TLSListener):
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
        tls: TLSFiles | None = None,
        tls_port: int | None = None,
    ) -> None:
        super().__init__(host=host, port=port, name=name, tls=tls, tls_port=tls_port)
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
        tls = ""
        if self.tls is not None:
            address = _listen(self.host, self.tls_port)  # type: ignore[arg-type]
            tls = f"  bind {address} ssl crt {self.tls.combined} alpn h2,http/1.1"
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
{tls}
  default_backend pool
backend pool
  balance {self.balance}
{header}
{servers}
"""
        )

    def command(self, workdir: Path) -> list[str]:
        return [self.program, "-db", "-f", str(workdir / "haproxy.cfg")]
