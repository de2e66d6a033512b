"""Connecting repositories as projects."""

import ipaddress
import logging
import os
import re
import socket
import subprocess
from pathlib import Path
from urllib.parse import unquote, urlparse

from sqlalchemy import delete, func, select

from app.extensions import db
from app.forges.fields import ref_name_problem
from app.models import Project, User

log = logging.getLogger(__name__)

VALID_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class ProjectError(ValueError):
    """A project could not be added; the message names the value and the rule."""


class ProjectExistsError(ProjectError):
    """A project of that name exists already."""


class ProjectAccessError(ProjectError):
    """The user may not connect this repository."""


def add_project(name: str, clone_url: str, default_branch: str = "main", pipeline_path: str = "deno-pipeline.ts",
                forge: str = "git", forge_repo: str | None = None) -> Project:
    """Record a new project; raise ProjectError for an invalid or taken name."""
    if not VALID_NAME.match(name):
        raise ProjectError(f"Project name {name!r} is invalid: use up to 100 ASCII letters, digits, '.', '_' and '-'.")
    if db.session.scalar(select(Project.id).where(Project.name == name)) is not None:
        raise ProjectExistsError(f"Project {name!r} exists already. Choose another name.")
    if pipeline_path.startswith("/") or ".." in pipeline_path.split("/"):
        raise ProjectError(f"Pipeline path {pipeline_path!r} must be relative to the repository root.")
    check_settings(clone_url, default_branch, pipeline_path)
    project = Project(name=name, clone_url=clone_url, default_branch=default_branch, pipeline_path=pipeline_path,
                      forge=forge, forge_repo=forge_repo)
    db.session.add(project)
    db.session.commit()
    return project


# A pipeline path: plain characters, no parent folder, no empty part.
VALID_PIPELINE_PATH = re.compile(r"^(?!/)(?!.*\.\.)(?!.*//)[A-Za-z0-9._/+-]{1,255}(?<!/)$")
# A clone URL is a URL of a transport git speaks, scp-like "user@host:path", or an absolute path.
VALID_CLONE_URL = re.compile(
    r"^((https?|ssh|git|file)://[^\s<>\"']+|([A-Za-z0-9._-]+@)?([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):[^\s<>\"']+|/[^\s<>\"']*)$",
    re.IGNORECASE)


# The host of an scp-like address, "[user@]host:path", where host may be an IPv6 address in brackets.
SCP_LIKE_HOST = re.compile(r"^(?:[^@/:\[]+@)?(?P<host>\[[^\]/]+\]|[^:/\[]+):")
# IPv6 ranges whose last 32 bits are an IPv4 address that the connection reaches (IPv4-compatible,
# IPv4-mapped, NAT64).
IPV4_CARRYING_NETWORKS = tuple(ipaddress.ip_network(network) for network in ("::/96", "::ffff:0:0/96", "64:ff9b::/96"))
# A user or host part that starts with "-", after a scheme or at the start of an scp-like address.
OPTION_LIKE_HOST = re.compile(r"^([a-z+]+://([^/@]*@)?-|-|[^/@:]*@-)", re.IGNORECASE)
# git reads "<helper>::<address>" as a remote helper (git-remote-<helper>), not as an scp-like
# address. With "fd::3", git waits on a file descriptor until the worker's git timeout ends it.
REMOTE_HELPER = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*::")


def local_clone_path(clone_url: str) -> Path | None:
    """Return the path of a repository on this server's file system (a path or a `file:` URL), or None for a remote one."""
    if clone_url.startswith("/"):
        return Path(clone_url)
    if clone_url.lower().startswith("file:"):
        return Path(urlparse(clone_url).path)
    return None


def check_clone_url_access(clone_url: str, user: User, data_dir: Path) -> None:
    """Raise ProjectAccessError unless `user` may connect the repository at `clone_url`.

    A local path reads and, through the editor, writes any repository the server can
    reach, other projects' included, so only administrators may connect one. No project
    may point into the platform's data folder (its mirrors and caches). Remote addresses
    are checked by `check_remote_host`.
    """
    location = local_clone_path(clone_url)
    if location is None:
        check_remote_host(clone_url, user)
        return
    if not user.is_admin:
        raise ProjectAccessError(f"Only administrators may connect a repository on the server's file system "
                                 f"({clone_url[:200]!r}). Use the repository's http(s) or ssh address.")
    check_outside_data_folder(clone_url, data_dir)
    check_local_repository(clone_url)


def clone_url_host(clone_url: str) -> str | None:
    """Return the host that a remote `clone_url` (a URL or "user@host:path") names, or None."""
    if local_clone_path(clone_url) is not None:
        return None
    if "://" in clone_url:
        try:
            host = urlparse(clone_url).hostname
        except ValueError:
            return None
        # git (curl) decodes percent escapes in the host: %31%32%37.0.0.1 reaches 127.0.0.1.
        return unquote(host) if host else None
    scp_like = SCP_LIKE_HOST.match(clone_url)
    return scp_like.group("host").strip("[]").lower() if scp_like else None


def check_remote_host(clone_url: str, user: User) -> None:
    """Raise ProjectAccessError when `clone_url` names this server or a link-local address and `user` is no administrator.

    The workers fetch the repository and quote git's error in the run. With such an
    address, anyone who may create a project would make the platform connect to services
    that listen only on this machine, or to the cloud's metadata service, and read what
    they reply. Private networks (10.0.0.0/8 and the like) stay open to everyone: a team's
    own forge often lives there. A host name counts by the addresses it resolves to now.
    TODO: git resolves the name again when it fetches, so a name whose address changes
    after this check (DNS rebinding) is not caught.
    """
    host = clone_url_host(clone_url)
    if user.is_admin or not host:
        return
    for address in _resolved_addresses(host):
        if _on_this_server_or_link(address):
            raise ProjectAccessError(
                f"Only administrators may connect a repository at an address of this server or a link-local "
                f"address ({host!r} is {address}). Give the address of the forge that the workers reach over "
                "the network, or ask an administrator to connect it.")


def _on_this_server_or_link(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Return whether a connection to `address` stays on this server or its link (or goes everywhere)."""
    if isinstance(address, ipaddress.IPv6Address) and any(address in network for network in IPV4_CARRYING_NETWORKS):
        if _on_this_server_or_link(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)):
            return True
    return (address.is_loopback or address.is_link_local or address.is_unspecified or address.is_multicast
            or address in _own_addresses())


def _resolved_addresses(host: str) -> set[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """Return the addresses `host` (a name or an address in any form the C library reads) stands for now.

    A zone ("fe80::1%eth0") and a final dot ("localhost.") are left out first, as a resolver
    that git uses may leave them out.
    """
    name = host.strip("[]").split("%")[0].rstrip(".")
    try:
        entries = socket.getaddrinfo(name, None)
    except (OSError, UnicodeError) as error:
        # The workers report a host they cannot resolve when they fetch.
        log.info("clone URL host %r does not resolve here: %s", host, error)
        return set()
    return {ipaddress.ip_address(entry[4][0].split("%")[0]) for entry in entries}


def _own_addresses() -> frozenset[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """Return this server's own addresses, or none when they cannot be read."""
    from jobs.executor import ExecutorError
    from jobs.executor.network import own_addresses

    try:
        return own_addresses()
    except (OSError, ValueError, KeyError, ExecutorError, subprocess.SubprocessError) as error:
        log.warning("failed to read this server's addresses, so only loopback and link-local hosts are rejected: %s",
                    error)
        return frozenset()


def check_local_repository(clone_url: str) -> None:
    """Raise ProjectError when `clone_url` is a local path with no git repository there; remote URLs pass.

    A remote repository is checked when a run first fetches it: its host may need keys
    or a network the platform reaches only from its workers.
    """
    location = local_clone_path(clone_url)
    if location is None:
        return
    if not location.exists():
        raise ProjectError(f"Repository path {clone_url[:200]!r} not found; give the path of an existing git repository.")
    from jobs.workspace import GitError, git

    try:
        git("ls-remote", "--heads", "--", str(location), timeout=30)
    except GitError as error:
        if location.is_dir():
            try:
                top = git("rev-parse", "--show-toplevel", cwd=location, timeout=30).strip()
            except GitError:
                top = None
            if top:
                raise ProjectError(f"{clone_url[:200]!r} is a folder inside the repository at {top!r}; "
                                   "give the repository's top folder.") from None
        reason = (str(error).splitlines() or ["git ls-remote failed"])[0]
        raise ProjectError(f"{clone_url[:200]!r} is not a git repository ({reason}). Give the folder of an "
                           "existing repository.") from None


def check_outside_data_folder(clone_url: str, data_dir: Path) -> None:
    """Raise ProjectError when `clone_url` is a local path into the platform's data folder (its mirrors and caches)."""
    location = local_clone_path(clone_url)
    if location is not None and Path(os.path.realpath(location)).is_relative_to(os.path.realpath(data_dir)):
        raise ProjectError(f"Clone URL {clone_url[:200]!r} is inside the platform's data folder; "
                           "use the repository's own location.")


def check_settings(clone_url: str | None = None, default_branch: str | None = None, pipeline_path: str | None = None) -> None:
    """Raise ProjectError for a clone URL, branch or pipeline path git or the runner could not use."""
    if clone_url is not None and (len(clone_url) > 2000 or not VALID_CLONE_URL.match(clone_url)):
        raise ProjectError(f"Clone URL {clone_url[:200]!r} is invalid: expected an http(s), ssh, git or file URL, "
                           "'user@host:path' or an absolute path.")
    if clone_url is not None and REMOTE_HELPER.match(clone_url):
        raise ProjectError(f"Clone URL {clone_url[:200]!r} is invalid: git reads '<name>::' as a remote helper, "
                           "not a repository address. Give the repository's http(s), ssh or git URL.")
    if clone_url is not None and OPTION_LIKE_HOST.match(clone_url):
        # ssh would read such a host as an option (-oProxyCommand=... runs a command).
        raise ProjectError(f"Clone URL {clone_url[:200]!r} is invalid: its user or host starts with '-', which ssh "
                           "would take for an option. Give the repository's real address.")
    if default_branch is not None and (problem := ref_name_problem(default_branch)):
        raise ProjectError(f"Branch name {default_branch[:200]!r} is not a valid Git branch name: {problem}. "
                           "Give a name that `git check-ref-format --branch` accepts.")
    if pipeline_path is not None and (
        not pipeline_path or len(pipeline_path) > 500 or pipeline_path.startswith("/") or ".." in pipeline_path.split("/")
        or not VALID_PIPELINE_PATH.match(pipeline_path)
    ):
        raise ProjectError(f"Pipeline path {pipeline_path[:200]!r} is invalid: expected a relative path inside the repository.")


def update_project(project: Project, **settings: str) -> Project:
    """Change a project's clone URL, default branch or pipeline path; raise ProjectError for invalid values."""
    check_settings(**settings)
    for name, value in settings.items():
        if value is not None:
            setattr(project, name, value)
    db.session.commit()
    return project


class ProjectBusyError(ProjectError):
    """The project has runs that are still going on."""


def delete_project(project: Project) -> None:
    """Delete a project with its runs, logs, secrets and memberships; raise ProjectBusyError while runs go on."""
    from app.models import Run
    from app.status import TERMINAL_RUN

    active = db.session.scalar(select(func.count()).select_from(Run).where(Run.project_id == project.id,
                                                                        Run.status.not_in(list(TERMINAL_RUN))))
    if active:
        # Workers would go on running stages whose rows were gone, and fail on every write.
        raise ProjectBusyError(f"Project {project.name!r} has {active} run(s) queued or running. "
                               "Cancel them, or wait until they end, then delete the project.")
    # A bulk DELETE lets PostgreSQL's ON DELETE CASCADE remove the rows; the ORM would try to unlink runs one by one.
    db.session.execute(delete(Project).where(Project.id == project.id))
    db.session.commit()
