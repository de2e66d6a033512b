"""Real servers for the deployment tests, all on 127.0.0.1: release backends, nginx, HAProxy and sshd."""

import http.client
import io
import os
import shutil
import socket
import subprocess
import tarfile
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import requests

from tests.conftest import serve_in_thread


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def release_archive(folder: Path, name: str, status: int = 200) -> str:
    """Write a release archive whose backend answers `name` with HTTP `status`; return its path."""
    path = folder / f"{name}.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        for file_name, text in (("RELEASE", name), ("STATUS", str(status))):
            data = text.encode()
            info = tarfile.TarInfo(file_name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return str(path)


class ReleaseBackend:
    """An HTTP server for one slot: it answers the release its `<root>/current` folder holds, per request."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        backend = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802  (the name http.server calls)
                current = backend.root / "current"
                try:
                    body = (current / "RELEASE").read_bytes()
                    status = int((current / "STATUS").read_text())
                except OSError:
                    body, status = b"no release", 503
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.address = f"127.0.0.1:{self.server.server_port}"
        self.thread = serve_in_thread(self.server)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Nginx:
    """nginx from Debian's package, with its own prefix, config and port."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.upstream_file = folder / "upstream.conf"
        self.config = folder / "nginx.conf"
        self.pid_file = folder / "nginx.pid"
        self.upstream_file.write_text("upstream app {\n    server 127.0.0.1:9 down;  # placeholder\n}\n")
        temp = folder / "temp"
        temp.mkdir()
        self.config.write_text(f"""
pid {self.pid_file};
error_log {folder}/error.log warn;
worker_processes 1;
events {{ worker_connections 512; }}
http {{
    access_log off;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    include {self.upstream_file};
    server {{
        listen 127.0.0.1:{self.port};
        location / {{ proxy_pass http://app; proxy_next_upstream off; }}
    }}
}}
""")
        self.process = subprocess.Popen(
            ["nginx", "-p", str(folder), "-e", str(folder / "error.log"), "-c", str(self.config), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_for_port(self.port)

    def settings(self) -> dict:
        # No "binary": the adapter's default, nginx, is the one started here, and a deploy stage's
        # target may not name a program.
        return {"prefix": str(self.folder), "config": str(self.config),
                "upstream_file": str(self.upstream_file), "upstream": "app", "pid_file": str(self.pid_file)}

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


class Haproxy:
    """HAProxy from Debian's package, with its own config, runtime socket and port."""

    def __init__(self, folder: Path, slots: dict) -> None:
        self.folder = folder
        self.port = free_port()
        self.socket = folder / "admin.sock"
        self.backend_file = folder / "backend.cfg"
        self.config = folder / "haproxy.cfg"
        self.config.write_text(f"""
global
    stats socket {self.socket} mode 600 level admin
defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s
frontend web
    bind 127.0.0.1:{self.port}
    default_backend app
""")
        servers = "".join(f"    server {name} {slot['address']} weight 0\n" for name, slot in slots.items())
        self.backend_file.write_text(f"backend app\n    balance roundrobin\n{servers}")
        self.process = subprocess.Popen(["haproxy", "-db", "-f", str(self.config), "-f", str(self.backend_file)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_for_port(self.port)
        # The frontend can accept connections a moment before the runtime API socket exists.
        deadline = time.monotonic() + 10
        while not self.socket.exists() and time.monotonic() < deadline:
            time.sleep(0.02)

    def settings(self) -> dict:
        return {"socket": str(self.socket), "backend": "app", "backend_file": str(self.backend_file)}

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def measure_split(url: str, count: int = 1000) -> dict[str, int]:
    """Send `count` requests, each on a new connection; return how many each answer body got."""
    # http.client rather than requests: a thousand requests take a quarter of the time.
    parts = urlsplit(url)
    path = parts.path or "/"
    counts: dict[str, int] = {}
    for _ in range(count):
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            status, text = response.status, response.read().decode()
        finally:
            connection.close()
        key = text if status < 500 or text in ("", "no release") else f"{text} ({status})"
        counts[key] = counts.get(key, 0) + 1
    return counts


class JsonServer:
    """A small HTTP server on 127.0.0.1 whose answers come from `answer(method, path, body) -> (status, json)`.

    It stands in for a Prometheus HTTP API or an analysis webhook, and keeps every request it got.
    """

    def __init__(self, answer) -> None:
        import json

        self.requests: list[tuple[str, str, bytes]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                server.requests.append((method, self.path, body))
                status, document = answer(method, self.path, body)
                data = json.dumps(document).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):  # noqa: N802
                self._handle("GET")

            def do_POST(self):  # noqa: N802
                self._handle("POST")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        serve_in_thread(self.server)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Sshd:
    """OpenSSH's sshd from Debian's package on a port of its own, with a generated host key and one user key.

    It lets the test's own user (root on the test machines) in with `user_key` only.
    """

    def __init__(self, folder: Path) -> None:
        import getpass

        self.folder = folder
        self.port = free_port()
        self.user = getpass.getuser()
        host_key, user_key = folder / "host_key", folder / "user_key"
        for key in (host_key, user_key):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        authorized = folder / "authorized_keys"
        shutil.copy(folder / "user_key.pub", authorized)
        authorized.chmod(0o600)
        config = folder / "sshd_config"
        config.write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {host_key}\nPidFile {folder / 'sshd.pid'}\n"
            f"AuthorizedKeysFile {authorized}\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
            "PermitRootLogin prohibit-password\nUsePAM no\nStrictModes no\nSubsystem sftp internal-sftp\n")
        # sshd refuses to start without its privilege separation folder, which the service would create.
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        self.process = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(config)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_for_port(self.port)
        self.host_key = " ".join((folder / "host_key.pub").read_text().split()[:2])
        self.private_key = user_key.read_text()

    def settings(self) -> dict:
        return {"type": "ssh", "host": "127.0.0.1", "port": self.port, "user": self.user, "host_key": self.host_key}

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


class MotoServer:
    """moto in server mode on 127.0.0.1: AWS's APIs (ELBv2, EC2, Lambda, IAM...) in a process of its own.

    With `auth=True` moto checks every request's keys and signature against its IAM users,
    as AWS does, so wrong keys are refused; without it any keys are taken.
    """

    def __init__(self, folder: Path, *, auth: bool = False) -> None:
        import sys

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        environment = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
        if auth:
            environment["INITIAL_NO_AUTH_ACTION_COUNT"] = "0"
        self.log = open(folder / f"moto-{self.port}.log", "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self.log, stderr=subprocess.STDOUT, env=environment)
        wait_for_port(self.port, 60)

    def reset(self) -> None:
        """Forget every resource, so a test starts from an empty account."""
        requests.post(f"{self.url}/moto-api/reset", timeout=10).raise_for_status()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


def serve_fake(fake) -> ThreadingHTTPServer:
    """Return a threading HTTP server on 127.0.0.1 that passes every request to `fake.handle(handler)`.

    It speaks HTTP/1.1 with kept-alive connections, as the cloud SDKs do; the caller
    wraps its socket for TLS if needed and starts `serve_forever`.
    """

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self):
            super().setup()
            # Headers and body go out in two writes; without this, delayed ACKs add 40 ms a request.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def do_GET(self):  # noqa: N802  (the names http.server calls)
            fake.handle(self)

        do_PUT = do_PATCH = do_POST = do_DELETE = do_GET

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    return server
