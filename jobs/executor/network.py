"""User-mode networking for a sandbox: slirp4netns attached to its network namespace.

slirp4netns gives the namespace a `tap0` device with the address 10.0.2.100, a
gateway at 10.0.2.2 and a DNS forwarder at 10.0.2.3, and relays connections
through ordinary sockets of the host. `--disable-host-loopback` makes it reject
connections to 10.0.2.2 and to the host's 127.0.0.0/8, so a stage cannot reach
services that listen on the host's loopback.

Before the stage starts, its namespace also gets "unreachable" routes to the host's
own addresses and to the cloud metadata services (`reject_routes`), so a stage can
reach neither a service that listens on 0.0.0.0 of the host nor the credentials
of the machine's cloud role. Other hosts of the network stay reachable, as for any
client on it.
"""

from __future__ import annotations

import ctypes
import functools
import ipaddress
import json
import logging
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time

from .base import ExecutorError, ExecutorUnavailableError

log = logging.getLogger(__name__)

SANDBOX_DNS = "10.0.2.3"
"""Address of slirp4netns's DNS forwarder inside the sandbox, written to its resolv.conf."""

READY_TIMEOUT = 10.0
"""Seconds to wait for slirp4netns to configure the tap device before the stage fails."""

SLIRP_OPTIONS = (
    "--configure",
    "--mtu=65520",
    "--disable-host-loopback",
    # Runs slirp4netns itself in a new mount namespace with every capability dropped.
    "--enable-sandbox",
)


def find_slirp4netns() -> str:
    """Return the path of slirp4netns or raise `ExecutorUnavailableError` saying how to install it."""
    path = shutil.which("slirp4netns")
    if path is None:
        raise ExecutorUnavailableError(
            "Cannot give stages a network: slirp4netns is not installed. "
            "Install it (Debian: apt-get install slirp4netns) or run stages with network=False"
        )
    return path


EXIT_GRACE_SECONDS = 2.0
"""Seconds slirp4netns gets to exit after its exit pipe closed, before it is killed."""


def _reap(process: subprocess.Popen, pidfd: int) -> None:
    try:
        process.wait(EXIT_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        process.wait()
    finally:
        os.close(pidfd)


class UserModeNetwork:
    """A running slirp4netns process serving one sandbox's network namespace.

    `stop()` kills it. It also exits by itself when the worker dies, because the
    worker's end of its exit pipe then closes.
    """

    def __init__(self, slirp4netns: str, sandbox_pid: int) -> None:
        self._ready_read, ready_write = os.pipe()
        exit_read, self._exit_write = os.pipe()
        self._errors = tempfile.TemporaryFile()
        argv = [
            slirp4netns,
            *SLIRP_OPTIONS,
            f"--ready-fd={ready_write}",
            f"--exit-fd={exit_read}",
            "--netns-type=path",
            f"/proc/{sandbox_pid}/ns/net",
            "tap0",
        ]
        try:
            self._process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=self._errors,
                pass_fds=(ready_write, exit_read),
                start_new_session=True,
            )
        except OSError:
            self.stop()
            raise
        finally:
            os.close(ready_write)
            os.close(exit_read)
        # Signals go through a pidfd: a kill by pid could reach another process that
        # reused the pid after a reaper thread collected slirp4netns, such as the next
        # stage's sandbox.
        self._pidfd = os.pidfd_open(self._process.pid)
        self._lock = threading.Lock()

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Block until the tap device is configured; raise `ExecutorError` if slirp4netns fails or hangs."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            readable, _, _ = select.select([self._ready_read], [], [], max(remaining, 0))
            if not readable:
                raise ExecutorError(f"Cannot start the stage network: slirp4netns was not ready after {timeout:g} s")
            # slirp4netns writes "1" once the device is up; an empty read means it exited.
            if os.read(self._ready_read, 16):
                return
            raise ExecutorError(f"Cannot start the stage network: slirp4netns failed: {self._error_text()}")

    def stop(self) -> None:
        """Kill slirp4netns and reap it, once the sandbox it served has ended."""
        for descriptor in ("_ready_read", "_exit_write"):
            value = getattr(self, descriptor, None)
            if value is not None:
                os.close(value)
                setattr(self, descriptor, None)
        lock = getattr(self, "_lock", None)
        if lock is None:
            return
        with lock:
            process, self._process = self._process, None
            pidfd, self._pidfd = self._pidfd, None
        if process is not None:
            # Closing the exit pipe (above) makes slirp4netns exit by itself within 10 to
            # 40 ms (slirp4netns 1.2.0, Linux 6.18). A SIGKILL right away was faster, but
            # new sandboxes starting during that abrupt teardown failed to set up their
            # loopback device, so the kill is only the fallback for one that hangs. A
            # thread waits, so that the stage's end is not delayed.
            threading.Thread(target=_reap, args=(process, pidfd), name=f"reap slirp4netns {process.pid}", daemon=True).start()
        self._errors.close()

    def _error_text(self) -> str:
        code = self._process.poll()
        self._errors.seek(0)
        text = self._errors.read(4096).decode("utf-8", "replace").strip().replace("\n", "; ")
        return f"exit status {code}, {text or 'no error output'}"


# Link-local addresses, where AWS, Azure and GCP serve instance metadata and role credentials
# (169.254.169.254), and Azure's WireServer.
METADATA_NETWORKS = ("169.254.0.0/16", "168.63.129.16/32")
# The host's routes tools: the worker's PATH may lack the sbin folders.
_TOOL_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


@functools.cache
def own_addresses() -> frozenset[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """Return every address of the host's interfaces, IPv4 and IPv6, loopback included, read once per process."""
    ip = shutil.which("ip", path=_TOOL_PATH)
    if ip is None:
        raise ExecutorUnavailableError("Cannot isolate stage networks: ip is not installed (Debian: apt-get install iproute2)")
    output = subprocess.run([ip, "-j", "address", "show"], capture_output=True, text=True, check=True).stdout
    # An IPv6 link-local address carries its interface after "%" in some versions of ip.
    return frozenset(ipaddress.ip_address(entry["local"].split("%")[0]) for device in json.loads(output)
                     for entry in device.get("addr_info", []) if "local" in entry)


def host_addresses() -> tuple[str, ...]:
    """Return the host's own IPv4 addresses other than loopback."""
    return tuple(sorted(str(address) for address in own_addresses()
                        if address.version == 4 and not address.is_loopback))


# How long `wait_for_loopback` waits for bwrap; bwrap took at most 27 ms on a loaded 2-core machine.
LOOPBACK_TIMEOUT = 2.0


def wait_for_loopback(sandbox_pid: int, timeout: float = LOOPBACK_TIMEOUT) -> bool:
    """Wait until bwrap has set up the loopback device of the sandbox's namespace; return whether it did.

    slirp4netns's --configure sets `lo` up as well. When it does that while bwrap is still
    adding 127.0.0.1 to `lo`, bwrap's request fails ("Failed RTM_NEWADDR") and the sandbox
    dies before its command starts. The address shows in the namespace's local routing
    table once `lo` is up with it.
    """
    routes = f"/proc/{sandbox_pid}/net/fib_trie"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(routes) as table:
                if "127.0.0.1" in table.read():
                    return True
        except OSError:
            return False
        time.sleep(0.0005)
    return False


def reject_routes(sandbox_pid: int, networks: tuple[str, ...]) -> None:
    """Make `networks` unreachable from the sandbox's network namespace; raise `ExecutorError` on failure.

    The routes go in over a netlink socket of the namespace, as `ip route add unreachable`
    would add them, without starting nsenter and ip for every stage. The stage cannot
    remove them: it has no capabilities in its namespaces.
    """
    connection = _route_socket(sandbox_pid)
    try:
        for sequence, network in enumerate(networks, start=1):
            address, _, prefix = network.partition("/")
            route = struct.pack("=BBBBBBBBI", socket.AF_INET, int(prefix or 32), 0, 0, _RT_TABLE_MAIN, _RTPROT_BOOT,
                                _RT_SCOPE_UNIVERSE, _RTN_UNREACHABLE, 0)
            destination = struct.pack("=HH", 8, _RTA_DST) + socket.inet_aton(address)
            body = route + destination
            header = struct.pack("=IHHII", 16 + len(body), _RTM_NEWROUTE,
                                 _NLM_F_REQUEST | _NLM_F_ACK | _NLM_F_CREATE | _NLM_F_EXCL, sequence, 0)
            connection.send(header + body)
            reply = connection.recv(4096)
            kind, code = struct.unpack_from("=H", reply, 4)[0], struct.unpack_from("=i", reply, 16)[0]
            if kind != _NLMSG_ERROR or code != 0:
                reason = os.strerror(-code) if kind == _NLMSG_ERROR else f"unexpected netlink reply {kind}"
                raise ExecutorError(f"Cannot isolate the stage network: adding the route to {network} failed: {reason}")
    except OSError as error:
        raise ExecutorError(f"Cannot isolate the stage network: netlink failed: {error}") from error
    finally:
        connection.close()


# Netlink route constants from <linux/netlink.h> and <linux/rtnetlink.h>.
_CLONE_NEWNET = 0x40000000
_RTM_NEWROUTE = 24
_NLMSG_ERROR = 2
_NLM_F_REQUEST, _NLM_F_ACK, _NLM_F_EXCL, _NLM_F_CREATE = 0x1, 0x4, 0x200, 0x400
_RT_TABLE_MAIN, _RTPROT_BOOT, _RT_SCOPE_UNIVERSE, _RTN_UNREACHABLE = 254, 3, 0, 7
_RTA_DST = 1


def _route_socket(sandbox_pid: int) -> socket.socket:
    """Return a netlink route socket that belongs to the sandbox's network namespace.

    A socket belongs to the namespace of the thread that creates it, so a short-lived
    thread joins the sandbox's namespace, creates it and goes back to its own one.
    """
    sockets: list[socket.socket] = []
    failures: list[str] = []

    def create() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        own = target = None
        try:
            own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
            target = os.open(f"/proc/{sandbox_pid}/ns/net", os.O_RDONLY)
            if libc.setns(target, _CLONE_NEWNET) != 0:
                failures.append(f"joining its network namespace failed: {os.strerror(ctypes.get_errno())}")
                return
            try:
                sockets.append(socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE))
            finally:
                # Should the switch back fail, the thread still ends here, so nothing else runs in that namespace.
                libc.setns(own, _CLONE_NEWNET)
        except OSError as error:
            failures.append(str(error))
        finally:
            for descriptor in (own, target):
                if descriptor is not None:
                    os.close(descriptor)

    thread = threading.Thread(target=create, name=f"routes of sandbox {sandbox_pid}", daemon=True)
    thread.start()
    thread.join()
    if not sockets:
        raise ExecutorError(f"Cannot isolate the stage network: {failures[0] if failures else 'no netlink socket'}")
    return sockets[0]
