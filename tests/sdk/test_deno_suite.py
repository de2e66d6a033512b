"""The SDK's own Deno tests (`deno test -P` in sdk/), run as part of the suite."""

import os
import subprocess

from app.pipelines.runner import DENO, SDK_DIR


def test_sdk_deno_tests_pass():
    env = {**os.environ, "PATH": f"{DENO.parent}:{os.environ.get('PATH', '')}", "NO_COLOR": "1",
           "DENO_NO_UPDATE_CHECK": "1"}
    result = subprocess.run([str(DENO), "test", "-P", "--quiet"], cwd=SDK_DIR, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-5000:]
    assert " 0 failed" in result.stdout
