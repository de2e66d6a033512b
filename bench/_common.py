"""Helpers shared by the benchmarks: git repositories, percentiles, the deno binary."""

import os
import statistics
import subprocess
from pathlib import Path

import deno

ROOT = Path(__file__).resolve().parent.parent
DENO = deno.find_deno_bin()


GIT_ENV = {"GIT_AUTHOR_NAME": "Bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
           "GIT_COMMITTER_NAME": "Bench", "GIT_COMMITTER_EMAIL": "bench@example.com"}


def make_repo(folder: Path, files: dict[str, str]) -> Path:
    """Create a git repository on branch main with `files` committed."""
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "--quiet", "--initial-branch=main"], cwd=folder, check=True)
    commit_files(folder, files)
    return folder


def commit_files(folder: Path, files: dict[str, str]) -> None:
    """Write `files` into the repository at `folder` and commit them."""
    for name, content in files.items():
        (folder / name).write_text(content)
    subprocess.run(["git", "add", "--all"], cwd=folder, check=True)
    subprocess.run(["git", "commit", "--quiet", "-m", "bench"], cwd=folder, check=True, env={**os.environ, **GIT_ENV})


def file_system_of(path: Path) -> str:
    """Return the type of the file system that `path` is on (ext4, tmpfs, ...), from /proc/self/mounts."""
    path = path.resolve()
    best, kind = "", "unknown"
    with open("/proc/self/mounts") as mounts:
        for line in mounts:
            point, file_system = line.split()[1:3]
            if (path == Path(point) or Path(point) in path.parents) and len(point) > len(best):
                best, kind = point, file_system
    return kind


def percentile(values: list[float], fraction: float) -> float:
    """Return the value below which `fraction` of `values` fall (nearest rank)."""
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[index]


def summary_ms(values: list[float]) -> str:
    milliseconds = [value * 1000 for value in values]
    return (f"median {statistics.median(milliseconds):.1f} ms, p99 {percentile(milliseconds, 0.99):.1f} ms, "
            f"min {min(milliseconds):.1f} ms over {len(milliseconds)} runs")
