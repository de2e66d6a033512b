"""`deno-ci trigger` checks its input before it looks for the platform, and leaves nothing behind when there is none."""

import os
import subprocess
import sys

from tests.conftest import ROOT


def _trigger(data, *arguments: str) -> subprocess.CompletedProcess:
    # Without the suite's own servers: the command must find that no platform serves the folder.
    env = {name: value for name, value in os.environ.items() if name not in ("DATABASE_URL", "REDIS_URL")}
    return subprocess.run([sys.executable, "-m", "app.cli", "--data", str(data), "trigger", *arguments],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_commit_that_is_no_id_is_refused(tmp_path):
    result = _trigger(tmp_path / "var", "web", "--commit", "zzz")
    assert result.returncode == 2
    assert "--commit 'zzz' is not a commit id: expected 4 to 64 hexadecimal digits." in result.stderr


def test_no_platform_leaves_no_data_folder(tmp_path):
    data = tmp_path / "var"
    result = _trigger(data, "web")
    assert result.returncode == 1
    assert "The platform is not running on the data folder" in result.stderr
    assert not data.exists()
