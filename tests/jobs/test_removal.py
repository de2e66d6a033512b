"""Folders of ended stages and runs, deleted in the background."""

from jobs.removal import REMOVING_MARK, remove_later, remove_leftovers, wait_for_removals


def _folder_with_files(path):
    (path / "workspace" / ".git").mkdir(parents=True)
    for index in range(50):
        (path / "workspace" / f"file-{index}.ts").write_text("export {};\n")
    return path


def test_folder_name_is_free_at_once(tmp_path):
    folder = _folder_with_files(tmp_path / "stage-1-1")

    remove_later(folder)

    assert not folder.exists()
    # A new attempt of the stage may make its folder again right away.
    folder.mkdir()
    assert wait_for_removals(timeout=10)
    assert [path.name for path in tmp_path.iterdir()] == ["stage-1-1"]


def test_every_folder_is_deleted(tmp_path):
    for index in range(5):
        remove_later(_folder_with_files(tmp_path / f"stage-{index}-1"))

    assert wait_for_removals(timeout=10)
    assert list(tmp_path.iterdir()) == []


def test_missing_folder_is_ignored(tmp_path):
    remove_later(tmp_path / "never-made")

    assert wait_for_removals(timeout=10)
    assert list(tmp_path.iterdir()) == []


def test_sweep_deletes_folder_left_renamed(db_app, tmp_path):
    from app.scheduler import remove_ended_run_folders

    # What a worker leaves when it stops between renaming a run's folder and deleting it.
    left = tmp_path / "workspaces" / f"run-7{REMOVING_MARK}0123456789ab"
    (left / "spare").mkdir(parents=True)

    remove_ended_run_folders(tmp_path / "workspaces")

    assert not left.exists()


def test_starting_worker_deletes_leftovers(tmp_path):
    workspaces = tmp_path / "workspaces"
    left = [workspaces / f"run-3{REMOVING_MARK}0123456789ab", workspaces / "run-4" / f"stage-9-1{REMOVING_MARK}ba9876543210"]
    for folder in left:
        _folder_with_files(folder)
    live = _folder_with_files(workspaces / "run-4" / "stage-10-1")

    assert remove_leftovers(workspaces) == 2

    assert wait_for_removals(timeout=10)
    assert not any(folder.exists() for folder in left)
    assert (live / "workspace").is_dir()
