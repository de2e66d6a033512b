"""Isolation of the bubblewrap sandbox, proven from inside real stages."""

import logging
import os
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from jobs.executor import ExecutorError, Exit, Mount, StageSpec
from jobs.executor.bubblewrap import ARGS_FD, SANDBOX_UID, build_bwrap_options, launcher_argv
from jobs.executor.network import wait_for_loopback

CONNECT_CODE = """
import socket, sys
for host in sys.argv[1:-1]:
    try:
        socket.create_connection((host, int(sys.argv[-1])), timeout=3).close()
        print(host, "connected")
    except OSError as error:
        print(host, "refused", type(error).__name__)
"""


@pytest.fixture
def host_server():
    """A TCP server on the host's 127.0.0.1 that counts the connections it accepts."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    accepted = []
    stop = threading.Event()

    def accept_loop():
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except TimeoutError:
                continue
            accepted.append(connection)
            connection.close()

    thread = threading.Thread(target=accept_loop, daemon=True)
    thread.start()
    yield server.getsockname()[1], accepted
    stop.set()
    thread.join()
    server.close()


def test_file_outside_workspace_is_invisible(bubblewrap, run, tmp_path):
    secret = tmp_path / "host-secret.txt"
    secret.write_text("top secret")
    result = run(bubblewrap, ["cat", str(secret)])
    assert result.exit.code != 0
    assert "top secret" not in result.stdout


def test_root_holds_only_system_paths(bubblewrap, run, workspace):
    result = run(bubblewrap, ["sh", "-c", "ls -A /; echo --; ls -A /var; ls -A /var/tmp"])
    separator = result.stdout.index("--")
    allowed = {"bin", "sbin", "lib", "lib32", "lib64", "libx32", "usr", "etc", "proc", "dev", "tmp", "var"}
    assert set(result.stdout[:separator]) <= allowed
    assert result.stdout[separator + 1 :] == ["tmp", workspace.name]


def test_only_own_processes_are_visible(bubblewrap, run):
    result = run(bubblewrap, ["sh", "-c", "ls /proc | grep -E '^[0-9]+$' | wc -l; echo $$"])
    process_count, own_pid = (int(line) for line in result.stdout)
    assert process_count <= 6  # bwrap's init, the shell that starts the command, sh, ls, grep and wc
    assert own_pid == 3


def test_host_process_is_not_visible(bubblewrap, run):
    result = run(bubblewrap, ["sh", "-c", f"test -e /proc/{os.getpid()}/cmdline && cat /proc/{os.getpid()}/cmdline; echo checked"])
    assert result.stdout == ["checked"]


def test_writes_outside_workspace_and_tmp_fail(bubblewrap, run, workspace):
    targets = ["/new-file", "/usr/new-file", "/etc/new-file", "/var/new-file", str(workspace.parent / "beside-workspace")]
    script = "; ".join(f"(echo x > {path}) 2>/dev/null && echo wrote {path}" for path in targets)
    result = run(bubblewrap, ["sh", "-c", script + "; echo done"])
    assert result.stdout == ["done"]
    assert not (workspace.parent / "beside-workspace").exists()


def test_tmp_is_private_and_empty(bubblewrap, run):
    marker = Path(tempfile.gettempdir()) / "deno-ci-host-tmp-marker"
    marker.write_text("host")
    try:
        result = run(bubblewrap, ["sh", "-c", "ls -A /tmp | wc -l; echo x > /tmp/inside && cat /tmp/inside"])
    finally:
        marker.unlink()
    assert result.stdout == ["0", "x"]
    assert not (Path(tempfile.gettempdir()) / "inside").exists()


def test_stage_runs_unprivileged(bubblewrap, run):
    result = run(bubblewrap, ["sh", "-c", "id -u; grep CapEff /proc/self/status"])
    assert result.stdout[0] == str(SANDBOX_UID)
    assert result.stdout[1].split() == ["CapEff:", "0000000000000000"]


def test_no_network_has_only_loopback(bubblewrap, run):
    result = run(bubblewrap, ["sh", "-c", "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '"], network=False)
    assert result.stdout == ["lo"]


def test_network_has_tap_device_and_dns(bubblewrap, run):
    result = run(bubblewrap, ["sh", "-c", "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort; cat /etc/resolv.conf"], network=True)
    assert result.stdout == ["lo", "tap0", "nameserver 10.0.2.3"]


@pytest.mark.parametrize("network", [True, False])
def test_host_loopback_is_unreachable(bubblewrap, run, python_argv, host_server, network):
    port, accepted = host_server
    hosts = ["127.0.0.1", "10.0.2.2"] if network else ["127.0.0.1"]
    result = run(bubblewrap, python_argv(CONNECT_CODE, *hosts, str(port)), network=network)
    assert result.exit == Exit(0, "exited")
    assert [line.split()[:2] for line in result.stdout] == [[host, "refused"] for host in hosts]
    assert accepted == []


def test_readonly_and_writable_mounts(bubblewrap, run, tmp_path):
    readonly = tmp_path / "tools"
    readonly.mkdir()
    (readonly / "tool.txt").write_text("tool\n")
    cache = tmp_path / "cache"
    cache.mkdir()
    script = f"cat {readonly}/tool.txt; (echo x > {readonly}/new) 2>/dev/null || echo readonly; echo cached > {cache}/entry"
    result = run(bubblewrap, ["sh", "-c", script], mounts=(Mount(readonly), Mount(cache, writable=True)))
    assert result.stdout == ["tool", "readonly"]
    assert (cache / "entry").read_text() == "cached\n"
    assert not (readonly / "new").exists()


def test_generated_passwd_names_the_stage_user(bubblewrap, run):
    result = run(bubblewrap, ["sh", "-c", "whoami; hostname; grep -c . /etc/passwd"])
    assert result.stdout == ["deno-ci", "deno-ci-stage", "3"]


def test_deno_runs_inside(bubblewrap, run, deno_binary):
    result = run(
        bubblewrap,
        [str(deno_binary), "eval", "console.log(Deno.cwd()); console.log(1 + 1)"],
        env={"DENO_DIR": "/tmp/deno", "DENO_NO_UPDATE_CHECK": "1", "NO_COLOR": "1"},
        mounts=(Mount(deno_binary),),
    )
    assert result.exit == Exit(0, "exited"), result.lines("stderr")
    assert result.stdout[-1] == "2"


def test_sdk_run_returns_despite_background_process(bubblewrap, run, workspace, deno_binary, processes_with_marker):
    # The SDK's run() pipes the command's output, and the background sleep holds that
    # pipe open: run() must return soon after `sh` exits instead of waiting for the sleep.
    from app.pipelines.runner import SDK_DIR

    script = workspace / "stage.ts"
    script.write_text(
        f'import {{ run }} from "{SDK_DIR}/run.ts";\n'
        'await run("(sleep 601.5 &) ; echo spawned-daemon");\n'
        'console.log("after run");\n'
        "Deno.exit(0);\n"
    )
    started = time.monotonic()
    result = run(
        bubblewrap,
        [str(deno_binary), "run", "--no-prompt", "--allow-run", "--allow-read", str(script)],
        env={"DENO_DIR": "/tmp/deno", "DENO_NO_UPDATE_CHECK": "1", "NO_COLOR": "1"},
        mounts=(Mount(deno_binary), Mount(SDK_DIR)),
        timeout=30,
    )

    assert result.exit == Exit(0, "exited"), result.lines("stderr")
    assert result.stdout == ["spawned-daemon", "after run"]
    assert time.monotonic() - started < 15
    assert any("1 background process left by the stage was stopped" in line for line in result.lines("system"))
    assert processes_with_marker("sleep\0" + "601.5") == []


@pytest.mark.network
def test_network_reaches_npm_registry(bubblewrap, run, deno_binary):
    code = "const r = await fetch('https://registry.npmjs.org/'); console.log(r.status); await r.body?.cancel()"
    result = run(
        bubblewrap,
        [str(deno_binary), "eval", code],
                # The system store as well, because a proxy between this machine and the
        # registry may present a certificate that only the system store trusts.
        env={"DENO_DIR": "/tmp/deno", "DENO_NO_UPDATE_CHECK": "1", "NO_COLOR": "1", "DENO_TLS_CA_STORE": "mozilla,system"},
        mounts=(Mount(deno_binary),),
        network=True,
    )
    assert result.exit == Exit(0, "exited"), result.lines("stderr")
    assert result.stdout == ["200"]


def test_options_stay_off_command_line(workspace):
    spec = StageSpec(argv=["deno", "task", "test"], workspace=workspace, env={"TOKEN": "s3cret"}, network=False)
    assert launcher_argv("/usr/bin/bwrap")[:4] == ["/usr/bin/bwrap", "--args", str(ARGS_FD), "--"]
    assert "s3cret" not in " ".join(launcher_argv("/usr/bin/bwrap"))
    options = build_bwrap_options(spec, Path("/etc-folder"))
    assert "--" not in options
    assert ["--setenv", "TOKEN", "s3cret"] == options[options.index("TOKEN") - 1 : options.index("TOKEN") + 2]
    assert ["--bind", str(workspace), str(workspace)] == options[options.index("--bind") : options.index("--bind") + 3]
    assert "/etc/resolv.conf" not in options


def test_command_arrives_whole(bubblewrap, run):
    # The shell inside rebuilds the command from variables: spaces, quotes and empty words survive.
    odd = ["a b", "", "$(echo no)", "'q\"", "*"]
    result = run(bubblewrap, ["/usr/bin/printf", "[%s]\\n", *odd])
    assert result.exit.code == 0, result.lines("stderr")
    assert result.stdout == [f"[{word}]" for word in odd]


def test_shell_variables_stay_out(bubblewrap, run):
    result = run(bubblewrap, ["/usr/bin/env"], env={"n": "kept", "i": "kept", "DENO_CI_SANDBOX_ARG5": "dropped"})
    assert result.exit.code == 0, result.lines("stderr")
    assert not [line for line in result.stdout if line.startswith("DENO_CI_SANDBOX_")]
    # The names a shell script would pick for its loop stay the stage's own.
    assert "n=kept" in result.stdout
    assert "i=kept" in result.stdout


def test_argument_not_utf8_arrives_as_bytes(bubblewrap, run, workspace):
    # Text decoded from bytes that are not UTF-8 (surrogate escapes) goes back to those bytes.
    result = run(bubblewrap, ["/bin/sh", "-c", 'printf %s "$1" > out', "sh", "bad-\udcff"])
    assert result.exit.code == 0, result.lines("stderr")
    assert (workspace / "out").read_bytes() == b"bad-\xff"


def test_too_many_variables_rejected(bubblewrap, workspace):
    spec = StageSpec(argv=["/bin/true"], workspace=workspace, env={f"V{index}": "x" for index in range(3100)},
                     network=False)
    with pytest.raises(ExecutorError, match="more than bwrap's 9000"):
        bubblewrap.start(spec)


def test_too_long_argument_rejected(bubblewrap, workspace):
    spec = StageSpec(argv=["/bin/echo", "x" * 131_060], workspace=workspace, env={}, network=False)
    with pytest.raises(ExecutorError, match="argument is longer than Linux's limit"):
        bubblewrap.start(spec)


def test_argv_translation_adds_resolv_conf_with_network(workspace):
    spec = StageSpec(argv=["true"], workspace=workspace, env={}, network=True)
    assert "/etc/resolv.conf" in build_bwrap_options(spec, Path("/etc-folder"))


# bwrap sometimes fails to set up the sandbox's loopback device while another network namespace is
# being torn down ("bwrap: loopback: Failed RTM_NEWADDR: No child processes"). Each stand-in fails in
# one of the ways seen, on its first call only, and then runs the real bwrap.
FIRST_CALL_FAILURES = {
    # It closes the descriptors the executor waits on, prints bwrap's message and lingers before exiting.
    "before reporting the sandbox": (
        "  exec 4>&- 5<&-\n"
        '  echo "bwrap: loopback: Failed RTM_NEWADDR: No child processes" >&2\n'
        "  sleep 1\n"
    ),
    # The sandbox's pid was reported and the go-ahead on --block-fd read, but the command never starts.
    "after the go-ahead": (
        "  printf '{\"child-pid\": %d}' $$ >&4\n"
        "  exec 4>&-\n"
        "  head -c 1 <&5 >/dev/null\n"
        '  echo "bwrap: loopback: Failed RTM_NEWADDR: No child processes" >&2\n'
    ),
    # The reported sandbox is gone when the executor sets its limits (ESRCH).
    "sandbox vanished": (
        "  true & wait\n"
        "  printf '{\"child-pid\": %d}' $! >&4\n"
        "  exec 4>&-\n"
        "  sleep 1\n"
    ),
}


@pytest.mark.parametrize("failure", FIRST_CALL_FAILURES)
def test_bwrap_failing_its_setup_is_tried_again(bubblewrap, run, tmp_path, failure):
    marker = tmp_path / "failed-once"
    stand_in = tmp_path / "bwrap"
    stand_in.write_text(
        "#!/bin/sh\n"
        f'if [ ! -e "{marker}" ]; then\n'
        f'  touch "{marker}"\n'
        f"{FIRST_CALL_FAILURES[failure]}"
        "  exit 1\n"
        "fi\n"
        f'exec "{bubblewrap.bwrap}" "$@"\n'
    )
    stand_in.chmod(0o755)
    bubblewrap.bwrap = str(stand_in)
    result = run(bubblewrap, ["/bin/echo", "started"])
    assert marker.exists()
    assert result.exit.code == 0, result.exit
    assert "started" in result.stdout
    assert not any("RTM_NEWADDR" in line for line in result.lines("stderr"))


def test_sandboxes_started_together_need_no_second_try(bubblewrap, run, caplog):
    caplog.set_level(logging.INFO, logger="jobs.executor.bubblewrap")
    results = []

    def start_one():
        results.append(run(bubblewrap, ["/bin/true"], network=True))

    for _ in range(16):
        threads = [threading.Thread(target=start_one) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert [result.exit.code for result in results] == [0] * 48
    assert not [record for record in caplog.records if "during sandbox setup" in record.getMessage()]


def test_wait_for_loopback_sees_lo_come_up():
    namespace = subprocess.Popen(["unshare", "--net", "sleep", "30"])
    try:
        deadline = time.monotonic() + 10
        while os.readlink(f"/proc/{namespace.pid}/ns/net") == os.readlink("/proc/self/ns/net"):
            assert time.monotonic() < deadline, "unshare did not make a network namespace"
            time.sleep(0.01)
        # Nothing has set `lo` up in the new namespace yet.
        assert not wait_for_loopback(namespace.pid, timeout=0.2)
        subprocess.run(["nsenter", f"--net=/proc/{namespace.pid}/ns/net", "ip", "link", "set", "lo", "up"], check=True)
        assert wait_for_loopback(namespace.pid, timeout=5)
    finally:
        namespace.kill()
        namespace.wait()
    assert not wait_for_loopback(namespace.pid, timeout=5)


def test_host_addresses_and_metadata_are_unreachable(bubblewrap, run):
    from jobs.executor.network import host_addresses

    # Read from inside: the routing table, so that no test packet leaves for another host.
    result = run(bubblewrap, ["/usr/sbin/ip", "route", "show"], network=True)
    assert result.exit.code == 0, result.stderr
    routes = "\n".join(result.stdout)
    assert "unreachable 169.254.0.0/16" in routes
    assert "unreachable 168.63.129.16" in routes
    for address in host_addresses():
        assert f"unreachable {address}" in routes
    assert "default via 10.0.2.2" in routes
    removal = run(bubblewrap, ["/usr/sbin/ip", "route", "del", "unreachable", "169.254.0.0/16"], network=True)
    assert removal.exit.code != 0
    assert any("Operation not permitted" in line for line in removal.lines("stderr")), removal.lines("stderr")
    # The routes went into the sandbox's namespace only, never into the host's.
    host_routes = subprocess.run(["/usr/sbin/ip", "route", "show"], capture_output=True, text=True, check=True).stdout
    assert "unreachable 169.254.0.0/16" not in host_routes


def test_tmp_is_limited_to_its_size(bubblewrap, run):
    script = "head -c 3145728 /dev/zero > /tmp/big; echo exit=$?; df -k /tmp | tail -1"
    result = run(bubblewrap, ["/bin/sh", "-c", script], tmp_bytes=2 * 1024 * 1024)
    assert "exit=1" in result.stdout, result.stdout
    assert any("No space left on device" in line for line in result.lines("stderr")), result.lines("stderr")
