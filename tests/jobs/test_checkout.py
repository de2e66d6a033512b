"""A stage's checkout: a working git repository of one commit, with as few files as git allows."""

from jobs import workspace as git_workspace


def test_checkout_without_hooks_or_reflogs(make_repo, tmp_path):
    repo = make_repo({"deno-pipeline.ts": "export default 1;\n", "src/mod.ts": "export const a = 1;\n"})
    mirror = git_workspace.update_mirror(tmp_path / "data", 1, str(repo))
    sha = git_workspace.resolve_commit(mirror, "main")

    checkout = git_workspace.checkout(mirror, sha, tmp_path / "stage" / "workspace", "https://forge.test/team/app.git")

    assert (checkout / "src" / "mod.ts").read_text() == "export const a = 1;\n"
    assert git_workspace.git("rev-parse", "HEAD", cwd=checkout).strip() == sha
    assert git_workspace.git("status", "--porcelain", cwd=checkout) == ""
    assert git_workspace.git("remote", "get-url", "origin", cwd=checkout).strip() == "https://forge.test/team/app.git"
    git_dir = checkout / ".git"
    assert not (git_dir / "hooks").exists()
    assert not (git_dir / "description").exists()
    assert not (git_dir / "logs").exists()

    # The platform's own commands leave no reflogs, but a stage's git still writes them.
    git_workspace.git("-c", "user.name=Stage", "-c", "user.email=stage@example.test", "commit", "--quiet",
                      "--allow-empty", "-m", "made in a stage", cwd=checkout)
    assert (git_dir / "logs" / "HEAD").is_file()


def test_clone_failure_message_reads_once(tmp_path):
    # Through a transport, git ends its message with "and the repository exists."
    missing = f"file://{tmp_path}/no-such-repository"
    try:
        git_workspace.update_mirror(tmp_path / "data", 1, missing)
    except git_workspace.GitError as error:
        message = str(error)
    else:
        raise AssertionError("cloning a missing repository succeeded")
    assert message.startswith(f"Cannot clone repository {missing!r}: ")
    assert "the repository exists. Check the URL" in message
    assert message.endswith(". Check the URL and the access rights.")
    assert ".." not in message
