"""The mirror fetch of a pull request whose head commit exists only in a fork or under a pull request ref."""

import pytest

from jobs import workspace
from tests.conftest import commit_all, git, write_files


def test_fork_commit_fetched_into_mirror(make_repo, tmp_path):
    upstream = make_repo({"README.md": "upstream\n"})
    fork = tmp_path / "fork"
    git(tmp_path, "clone", "--quiet", str(upstream), str(fork))
    git(fork, "checkout", "--quiet", "-b", "feature/lexer")
    write_files(fork, {"lexer.ts": "export {};\n"})
    head = commit_all(fork, "Speed up the lexer")
    mirror = workspace.update_mirror(tmp_path / "data", 1, str(upstream))
    with pytest.raises(workspace.GitError):
        workspace.resolve_commit(mirror, head)

    workspace.update_mirror(tmp_path / "data", 1, str(upstream),
                            extra_ref={"ref": "refs/heads/feature/lexer", "url": str(fork)})

    assert workspace.resolve_commit(mirror, head) == head
    checkout = workspace.checkout(mirror, head, tmp_path / "work", str(upstream))
    assert (checkout / "lexer.ts").exists()


def test_option_like_ref_rejected(make_repo, tmp_path):
    upstream = make_repo({"README.md": "x\n"})
    with pytest.raises(workspace.GitError, match="must start with 'refs/'"):
        workspace.update_mirror(tmp_path / "data", 1, str(upstream), extra_ref={"ref": "--upload-pack=touch /tmp/x"})


def test_fetch_url_not_stored_in_mirror(make_repo, tmp_path):
    upstream = make_repo({"README.md": "x\n"})
    mirror = workspace.update_mirror(tmp_path / "data", 1, "/plain/address", fetch_url=str(upstream))
    assert git(mirror, "remote", "get-url", "origin") == "/plain/address"
    workspace.update_mirror(tmp_path / "data", 1, "/plain/address", fetch_url=str(upstream))
    assert str(upstream) not in (mirror / "config").read_text()
