"""Commands start without warnings from the packages the platform is built on."""

import os
import subprocess
import sys

from tests.conftest import ROOT


def test_embedded_services_import_without_warnings():
    # Root shells and containers often have no XDG_RUNTIME_DIR; platformdirs warned about it on every command.
    env = {key: value for key, value in os.environ.items() if key != "XDG_RUNTIME_DIR"}
    result = subprocess.run([sys.executable, "-c", "import app.embedded"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stderr
