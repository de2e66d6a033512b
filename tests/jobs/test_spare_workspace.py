"""The workspace made beside planning, taken by the first stage that starts on the machine."""

from jobs import spare_workspace
from jobs import workspace as git_workspace
from jobs.cache import CacheStore


def _mirror_and_sha(make_repo, data_dir):
    repo = make_repo({"deno-pipeline.ts": "export default 1;\n", "deno.json": "{}\n"})
    mirror = git_workspace.update_mirror(data_dir, 1, str(repo))
    return mirror, git_workspace.resolve_commit(mirror, "main"), str(repo)


def _made_spare(make_repo, tmp_path, run_name: str, *, commit: str | None = None, keep: bool = True):
    """Make a spare of the repository's head (or of `commit`) in a run folder; return (run folder, head sha)."""
    data_dir = tmp_path / "data"
    mirror, sha, clone_url = _mirror_and_sha(make_repo, data_dir)
    run_folder = tmp_path / run_name
    spare_workspace.SpareMaker(run_folder, mirror, commit or sha, clone_url, "deno-pipeline.ts", None,
                               CacheStore(data_dir, "1")).start().finish(keep=keep)
    return run_folder, sha


def _cache_with_archive(tmp_path, data_dir) -> CacheStore:
    caches = CacheStore(data_dir, "1")
    source = tmp_path / "cached-deno-dir"
    (source / "deps").mkdir(parents=True)
    (source / "deps" / "module.js").write_text("cached")
    assert caches.save("deno-abc", source)
    return caches


def test_spare_is_taken_once(make_repo, tmp_path):
    data_dir = tmp_path / "data"
    mirror, sha, clone_url = _mirror_and_sha(make_repo, data_dir)
    run_folder = tmp_path / "run-1"
    maker = spare_workspace.SpareMaker(run_folder, mirror, sha, clone_url, "deno-pipeline.ts", None,
                                       _cache_with_archive(tmp_path, data_dir)).start()
    maker.finish(keep=True)

    first = tmp_path / "run-1" / "stage-1-1"
    taken, key = spare_workspace.take(run_folder, first / "workspace", first / "deno-dir", sha, None)
    assert taken
    assert key == "deno-abc"
    assert (first / "workspace" / "deno-pipeline.ts").read_text() == "export default 1;\n"
    assert git_workspace.git("rev-parse", "HEAD", cwd=first / "workspace").strip() == sha
    assert (first / "deno-dir" / "deps" / "module.js").read_text() == "cached"
    assert not (run_folder / spare_workspace.SPARE).exists()

    second = tmp_path / "run-1" / "stage-2-1"
    assert spare_workspace.take(run_folder, second / "workspace", second / "deno-dir", sha, None) == (False, None)


def test_spare_carries_pipeline_override(make_repo, tmp_path):
    data_dir = tmp_path / "data"
    mirror, sha, clone_url = _mirror_and_sha(make_repo, data_dir)
    run_folder = tmp_path / "run-2"
    spare_workspace.SpareMaker(run_folder, mirror, sha, clone_url, "deno-pipeline.ts", "export default 2;\n",
                               CacheStore(data_dir, "1")).start().finish(keep=True)
    stage = run_folder / "stage-1-1"
    taken, key = spare_workspace.take(run_folder, stage / "workspace", stage / "deno-dir", sha, "export default 2;\n")
    assert taken
    assert key is None
    assert (stage / "workspace" / "deno-pipeline.ts").read_text() == "export default 2;\n"
    assert (stage / "deno-dir").is_dir()


def test_spare_of_failed_plan_is_removed(make_repo, tmp_path):
    run_folder, _ = _made_spare(make_repo, tmp_path, "run-3", keep=False)
    assert not (run_folder / spare_workspace.SPARE).exists()


def test_missing_commit_leaves_no_spare(make_repo, tmp_path):
    run_folder, _ = _made_spare(make_repo, tmp_path, "run-4", commit="0" * 40)
    assert not (run_folder / spare_workspace.SPARE).exists()
    assert not list(run_folder.glob(f"{spare_workspace.SPARE}.building-*"))
    assert not spare_workspace.exists(run_folder)


def test_spare_of_other_source_is_discarded(make_repo, tmp_path):
    run_folder, _ = _made_spare(make_repo, tmp_path, "run-5")
    stage = run_folder / "stage-1-1"
    # The same run id with another commit: what a reused id (a test database) or a re-pointed branch would give.
    assert spare_workspace.take(run_folder, stage / "workspace", stage / "deno-dir", "f" * 40, None) == (False, None)
    assert not spare_workspace.exists(run_folder)
    assert not (stage / "workspace").exists()


def test_scheduler_removes_folders_of_ended_runs(db_app, tmp_path):
    from app.extensions import db
    from app.models import Run
    from app.projects import add_project
    from app.scheduler import remove_ended_run_folders

    project = add_project("folders", "https://git.example.com/folders.git")
    runs = [Run(project_id=project.id, number=number, trigger="cli", event="push", branch="main", status=status)
            for number, status in ((1, "running"), (2, "success"))]
    db.session.add_all(runs)
    db.session.commit()
    workspaces = tmp_path / "workspaces"
    for run_id in (runs[0].id, runs[1].id, 999_999):
        (workspaces / f"run-{run_id}" / "spare").mkdir(parents=True)

    assert remove_ended_run_folders(workspaces) == 2
    assert sorted(folder.name for folder in workspaces.iterdir()) == [f"run-{runs[0].id}"]
