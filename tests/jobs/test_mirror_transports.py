"""The workers' git fetches use only the transports that a clone URL may name."""

import time

import pytest

from jobs.workspace import GitError, update_mirror


@pytest.mark.parametrize("clone_url", ["fd::3", "ext::true"])
def test_mirror_rejects_remote_helper(tmp_path, clone_url):
    # A stored URL from before the clone URL check, or a fork's URL from a webhook, reaches git unchecked.
    started = time.monotonic()
    with pytest.raises(GitError) as raised:
        update_mirror(tmp_path / "data", 1, clone_url)
    assert "not allowed" in str(raised.value)
    assert time.monotonic() - started < 30


def test_mirror_clones_local_path(tmp_path, make_repo):
    repo = make_repo({"deno-pipeline.ts": "export default 1;\n"})
    mirror = update_mirror(tmp_path / "data", 1, str(repo))
    assert (mirror / "HEAD").exists()
