"""A throw-away platform for benchmarks: embedded servers, migrated schema, real workers."""

import os
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from bench._common import ROOT


@contextmanager
def platform(workers: int = 2):
    """Yield a pushed app context on a fresh platform with `workers` RQ workers running."""
    from flask_migrate import upgrade

    from app.embedded import Services

    with tempfile.TemporaryDirectory(prefix="bench-platform-") as scratch:
        data = Path(scratch) / "data"
        os.environ["DENO_CI_DATA"] = str(data)
        for name in ("DATABASE_URL", "REDIS_URL"):
            os.environ.pop(name, None)
        services = Services(data)
        services.start()
        services.export()
        processes = []
        try:
            from app.factory import create_app

            app = create_app()
            with app.app_context():
                upgrade(directory=str(ROOT / "migrations"))
                processes = [subprocess.Popen([sys.executable, "-m", "app.cli", "worker"], cwd=ROOT, env=os.environ.copy(),
                                              stderr=subprocess.DEVNULL) for _ in range(workers)]
                time.sleep(1.0)
                yield app, Path(scratch)
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            services.stop_started()
