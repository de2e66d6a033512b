"""Release folders on a server: `<root>/releases/<name>/` and an atomic `<root>/current` symlink.

The switch makes a new symlink beside `current` and renames it over `current`.
rename(2) replaces the link in one step, so a process that resolves `current`
sees either the old release or the new one, never a missing link.
"""

import base64
import binascii
import io
import logging
import os
import re
import shlex
import shutil
import tarfile
import uuid
from abc import ABC, abstractmethod
from pathlib import Path

import paramiko

from app.deployments.adapters.base import AdapterError, InvalidTargetError

log = logging.getLogger(__name__)

RELEASE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
# Seconds an SSH connection or command may take.
SSH_TIMEOUT = 15


def check_release_name(name: str) -> None:
    """Raise InvalidTargetError unless `name` is safe as a folder and server name."""
    if not isinstance(name, str) or not RELEASE_NAME.match(name):
        raise InvalidTargetError([f"Release name {name!r} is invalid: use letters, digits, '.', '_' and '-'"])


class ReleaseFolders(ABC):
    """Installs releases into folders and switches `current` between them."""

    @abstractmethod
    def install(self, root: str, name: str, artifact: str) -> None:
        """Unpack the archive `artifact` (.tar.gz) into `<root>/releases/<name>` unless it is there."""

    @abstractmethod
    def activate(self, root: str, name: str) -> None:
        """Point `<root>/current` at release `name` in one atomic rename."""

    @abstractmethod
    def current(self, root: str) -> str | None:
        """Return the release `<root>/current` points at, or None."""

    @abstractmethod
    def installed(self, root: str) -> list[str]:
        """Return the names of the releases installed under `root`."""

    @abstractmethod
    def remove(self, root: str, name: str) -> None:
        """Delete an installed release that `current` does not point at."""

    @abstractmethod
    def deactivate(self, root: str) -> None:
        """Delete the `current` symlink, so the slot holds no release."""


class LocalReleaseFolders(ReleaseFolders):
    """Release folders on this machine."""

    def install(self, root: str, name: str, artifact: str) -> None:
        target = Path(root) / "releases" / name
        if target.is_dir():
            return
        partial = target.with_name(f".{name}.partial-{uuid.uuid4().hex[:8]}")
        try:
            partial.mkdir(parents=True)
            with tarfile.open(artifact) as archive:
                archive.extractall(partial, filter="data")
            partial.rename(target)
        except (OSError, tarfile.TarError) as error:
            shutil.rmtree(partial, ignore_errors=True)
            raise AdapterError(f"Cannot install release {name!r} into {root}: {error}") from error

    def activate(self, root: str, name: str) -> None:
        link = Path(root) / "current"
        temporary = Path(root) / f".current-{uuid.uuid4().hex[:8]}"
        try:
            temporary.symlink_to(Path("releases") / name)
            os.replace(temporary, link)
        except OSError as error:
            temporary.unlink(missing_ok=True)
            raise AdapterError(f"Cannot switch {link} to release {name!r}: {error}") from error

    def current(self, root: str) -> str | None:
        link = Path(root) / "current"
        return Path(os.readlink(link)).name if link.is_symlink() else None

    def installed(self, root: str) -> list[str]:
        folder = Path(root) / "releases"
        return sorted(path.name for path in folder.iterdir() if path.is_dir() and RELEASE_NAME.match(path.name)) \
            if folder.is_dir() else []

    def remove(self, root: str, name: str) -> None:
        if self.current(root) != name:
            shutil.rmtree(Path(root) / "releases" / name, ignore_errors=True)

    def deactivate(self, root: str) -> None:
        (Path(root) / "current").unlink(missing_ok=True)


class SshReleaseFolders(ReleaseFolders):
    """Release folders on a server reached over SSH with a key; the server's host key must be given.

    settings: host, port (22), user, host_key ("ssh-ed25519 AAAA..."); credentials: private_key (OpenSSH PEM).
    """

    def __init__(self, settings: dict, credentials: dict) -> None:
        self.host, self.port = settings.get("host"), int(settings.get("port") or 22)
        self.user, self.host_key = settings.get("user"), settings.get("host_key")
        self._private_key = credentials.get("private_key")
        self._client: paramiko.SSHClient | None = None

    def problems(self) -> list[str]:
        """List what is missing or invalid in the settings."""
        found = [f"SSH setting {key!r} is missing" for key in ("host", "user", "host_key")
                 if not getattr(self, key)]
        if not self._private_key:
            found.append("The SSH private key is missing from the environment's credentials ('private_key')")
        return found

    def _connect(self) -> paramiko.SSHClient:
        if self._client is not None and self._client.get_transport() and self._client.get_transport().is_active():
            return self._client
        where = f"{self.user}@{self.host}:{self.port}"
        try:
            key_type, key_data = self.host_key.split()[:2]
            client = paramiko.SSHClient()
            client.get_host_keys().add(f"[{self.host}]:{self.port}" if self.port != 22 else self.host, key_type,
                                       paramiko.PKey.from_type_string(key_type, base64.b64decode(key_data)))
            client.set_missing_host_key_policy(paramiko.RejectPolicy())
            key = _load_private_key(self._private_key)
            client.connect(self.host, self.port, self.user, pkey=key, timeout=SSH_TIMEOUT, banner_timeout=SSH_TIMEOUT,
                           auth_timeout=SSH_TIMEOUT, look_for_keys=False, allow_agent=False)
        except paramiko.AuthenticationException as error:
            raise AdapterError(f"Cannot sign in to {where}: the server rejected the key ({error})") from error
        except paramiko.BadHostKeyException as error:
            raise AdapterError(f"Cannot connect to {where}: its host key does not match the configured one") from error
        except (paramiko.SSHException, OSError, ValueError, binascii.Error) as error:
            raise AdapterError(f"Cannot connect to {where}: {error}") from error
        self._client = client
        return client

    def _run(self, command: str) -> str:
        client = self._connect()
        try:
            _, stdout, stderr = client.exec_command(command, timeout=SSH_TIMEOUT)
            output, errors = stdout.read().decode(), stderr.read().decode()
            status = stdout.channel.recv_exit_status()
        except (paramiko.SSHException, OSError) as error:
            raise AdapterError(f"SSH command on {self.host}:{self.port} failed: {error}") from error
        if status != 0:
            raise AdapterError(f"SSH command on {self.host}:{self.port} exited with {status}: {errors.strip()[:500]}")
        return output

    def install(self, root: str, name: str, artifact: str) -> None:
        target = shlex.quote(f"{root}/releases/{name}")
        if self._run(f"test -d {target} && echo yes || echo no").strip() == "yes":
            return
        upload = f"{root}/.upload-{uuid.uuid4().hex[:8]}.tar.gz"
        partial = f"{root}/releases/.{name}.partial-{uuid.uuid4().hex[:8]}"
        self._run(f"mkdir -p {shlex.quote(root + '/releases')}")
        try:
            with self._connect().open_sftp() as sftp:
                sftp.put(artifact, upload)
        except (paramiko.SSHException, OSError) as error:
            raise AdapterError(f"Cannot upload release {name!r} to {self.host}:{self.port}: {error}") from error
        self._run(f"mkdir {shlex.quote(partial)} && tar -xzf {shlex.quote(upload)} -C {shlex.quote(partial)} "
                  f"&& mv -T {shlex.quote(partial)} {target}; status=$?; rm -rf {shlex.quote(upload)} "
                  f"{shlex.quote(partial)}; exit $status")

    def activate(self, root: str, name: str) -> None:
        temporary = shlex.quote(f"{root}/.current-{uuid.uuid4().hex[:8]}")
        self._run(f"ln -s {shlex.quote('releases/' + name)} {temporary} && mv -T {temporary} "
                  f"{shlex.quote(root + '/current')}")

    def current(self, root: str) -> str | None:
        target = self._run(f"readlink {shlex.quote(root + '/current')} || true").strip()
        return target.rsplit("/", 1)[-1] or None

    def installed(self, root: str) -> list[str]:
        names = self._run(f"ls -1 {shlex.quote(root + '/releases')} 2>/dev/null || true").split()
        return sorted(name for name in names if RELEASE_NAME.match(name))

    def remove(self, root: str, name: str) -> None:
        check_release_name(name)
        if self.current(root) != name:
            self._run(f"rm -rf {shlex.quote(root + '/releases/' + name)}")

    def deactivate(self, root: str) -> None:
        self._run(f"rm -f {shlex.quote(root + '/current')}")

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def _load_private_key(text: str) -> paramiko.PKey:
    for key_class in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return key_class.from_private_key(io.StringIO(text))
        except paramiko.SSHException:
            continue
    raise paramiko.SSHException("the private key is not an OpenSSH Ed25519, ECDSA or RSA key")


def release_folders(settings: dict | None, credentials: dict) -> ReleaseFolders:
    """Return the release folder access that `settings` ({"type": "local"} or {"type": "ssh", ...}) names."""
    settings = settings or {"type": "local"}
    if settings.get("type", "local") == "local":
        return LocalReleaseFolders()
    if settings.get("type") == "ssh":
        return SshReleaseFolders(settings, credentials)
    raise InvalidTargetError([f"Release folders type {settings.get('type')!r} is unknown: use 'local' or 'ssh'"])
