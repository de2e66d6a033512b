import os
import tarfile
from concurrent.futures import ThreadPoolExecutor

from jobs.cache import CacheStore, cache_key, restore_paths


def test_key_covers_path_and_content(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    (one / "deno.lock").write_text('{"version": "4"}')
    (two / "deno.json").write_text('{"version": "4"}')
    assert cache_key(one) != cache_key(two)
    (two / "deno.json").unlink()
    (two / "deno.lock").write_text('{"version": "4"}')
    assert cache_key(one) == cache_key(two)


def test_stage_key_files_change_the_key(tmp_path):
    (tmp_path / "extra.txt").write_text("a")
    plain = cache_key(tmp_path)
    assert cache_key(tmp_path, ["extra.txt"]) != plain


def test_save_then_restore_round_trip(tmp_path):
    store = CacheStore(tmp_path / "data", "p1")
    source = tmp_path / "deno-dir"
    (source / "npm").mkdir(parents=True)
    (source / "npm" / "package.txt").write_text("cached")
    assert store.save("deno-abc", source)
    assert not store.save("deno-abc", source)
    target = tmp_path / "restored"
    assert store.restore("deno-abc", target) == "deno-abc"
    assert (target / "npm" / "package.txt").read_text() == "cached"


def test_restore_falls_back_to_newest_archive(tmp_path):
    store = CacheStore(tmp_path / "data", "p1")
    source = tmp_path / "deno-dir"
    source.mkdir()
    (source / "file").write_text("old")
    store.save("deno-old", source)
    assert store.restore("deno-new", tmp_path / "restored") == "deno-old"


def test_corrupt_archive_is_discarded(tmp_path, caplog):
    store = CacheStore(tmp_path / "data", "p1")
    store.folder.mkdir(parents=True)
    store.archive_path("deno-bad").write_bytes(b"\x1f\x8b\x08\x00 not really gzip")
    assert store.restore("deno-bad", tmp_path / "restored") is None
    assert not store.archive_path("deno-bad").exists()
    assert "discarding corrupt cache archive" in caplog.text


def test_truncated_archive_is_discarded(tmp_path):
    store = CacheStore(tmp_path / "data", "p1")
    source = tmp_path / "deno-dir"
    source.mkdir()
    (source / "big").write_bytes(bytes(range(256)) * 4000)
    store.save("deno-full", source)
    archive = store.archive_path("deno-full")
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    assert store.restore("deno-full", tmp_path / "restored") is None
    assert not (tmp_path / "restored" / "big").exists()


def test_save_leaves_no_partial_file(tmp_path):
    store = CacheStore(tmp_path / "data", "p1")
    source = tmp_path / "deno-dir"
    source.mkdir()
    (source / "file").write_text("x")
    store.save("deno-k", source)
    names = [path.name for path in store.folder.iterdir()]
    assert names == ["deno-k.tar.gz"]
    with tarfile.open(store.archive_path("deno-k")) as archive:
        assert archive.getnames() == ["file"]


def test_restore_leaves_archive_being_saved_alone(tmp_path):
    store = CacheStore(tmp_path / "data", "p1")
    store.folder.mkdir(parents=True)
    # What `save` of this version and of the previous one has written so far, before its rename.
    being_saved = [store.folder / ".save-1234.partial", store.folder / ".save-5678.tar.gz"]
    for path in being_saved:
        path.write_bytes(b"")
    assert store.restore("deno-abc", tmp_path / "restored") is None
    assert store.restore_newest(tmp_path / "restored") is None
    assert all(path.exists() for path in being_saved)


def test_parallel_saves_of_one_key_all_succeed(tmp_path):
    store = CacheStore(tmp_path / "data", "p1")
    source = tmp_path / "deno-dir"
    source.mkdir()
    (source / "file").write_text("x" * 100_000)
    restored = tmp_path / "restored"

    def save_or_restore(index: int) -> None:
        if index % 2:
            store.restore_newest(restored / str(index))
        else:
            store.save("deno-k", source)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(save_or_restore, range(40)))
    assert store.archive_path("deno-k").is_file()


def _saved_store(tmp_path, content: str = "cached") -> CacheStore:
    store = CacheStore(tmp_path / "data", "p1")
    source = tmp_path / "deno-dir"
    (source / "npm").mkdir(parents=True, exist_ok=True)
    (source / "npm" / "package.txt").write_text(content)
    store.save("deno-abc", source)
    return store


def test_restore_unchanged_by_stage_writes(tmp_path):
    store = _saved_store(tmp_path)
    first = tmp_path / "first"
    store.restore("deno-abc", first)
    (first / "npm" / "package.txt").write_text("changed by a stage")
    (first / "npm" / "new.txt").write_text("added by a stage")
    second = tmp_path / "second"
    assert store.restore("deno-abc", second) == "deno-abc"
    assert (second / "npm" / "package.txt").read_text() == "cached"
    assert not (second / "npm" / "new.txt").exists()


def test_restore_copies_unpacked_folder(tmp_path):
    store = _saved_store(tmp_path)
    store.restore("deno-abc", tmp_path / "first")
    # The archive's bytes are no longer read: a restore copies the folder unpacked the first time.
    store.archive_path("deno-abc").write_bytes(b"\x1f\x8b\x08\x00 not really gzip")
    assert store.restore("deno-abc", tmp_path / "second") == "deno-abc"
    assert (tmp_path / "second" / "npm" / "package.txt").read_text() == "cached"


def test_save_after_deleted_archive_drops_old_folder(tmp_path):
    store = _saved_store(tmp_path, "old")
    store.restore("deno-abc", tmp_path / "first")
    store.archive_path("deno-abc").unlink()
    _saved_store(tmp_path, "new")
    store.restore("deno-abc", tmp_path / "second")
    assert (tmp_path / "second" / "npm" / "package.txt").read_text() == "new"


def test_cache_paths_change_the_key(tmp_path):
    plain = cache_key(tmp_path)
    assert cache_key(tmp_path, paths=["node_modules"]) != plain
    assert cache_key(tmp_path, paths=["a", "b"]) == cache_key(tmp_path, paths=["b", "a"])


def test_cached_paths_return_to_the_workspace(tmp_path):
    store = CacheStore(tmp_path / "data", "p1")
    workspace, deno_dir = tmp_path / "workspace", tmp_path / "deno-dir"
    (workspace / "build" / "out").mkdir(parents=True)
    (workspace / "build" / "out" / "result.txt").write_text("built")
    (workspace / "notes.txt").write_text("not cached")
    (deno_dir / "npm").mkdir(parents=True)
    assert store.save("deno-paths", deno_dir, workspace, ["build/out"])

    later_workspace, later_deno_dir = tmp_path / "later-workspace", tmp_path / "later-deno-dir"
    (later_workspace / "build" / "out").mkdir(parents=True)
    (later_workspace / "build" / "out" / "stale.txt").write_text("from the checkout")
    assert store.restore("deno-paths", later_deno_dir) == "deno-paths"
    assert restore_paths(later_deno_dir, later_workspace, ["build/out"]) == ["build/out"]

    assert (later_workspace / "build" / "out" / "result.txt").read_text() == "built"
    assert not (later_workspace / "build" / "out" / "stale.txt").exists()
    assert not (later_workspace / "notes.txt").exists()
    assert sorted(path.name for path in later_deno_dir.iterdir()) == ["npm"]


def test_cache_path_below_link_is_skipped(tmp_path):
    store = CacheStore(tmp_path / "data", "p1")
    host = tmp_path / "host"
    host.mkdir()
    (host / "secret.txt").write_text("host file")
    workspace, deno_dir = tmp_path / "workspace", tmp_path / "deno-dir"
    workspace.mkdir()
    deno_dir.mkdir()
    (workspace / "linked").symlink_to(host)
    assert store.save("deno-linked", deno_dir, workspace, ["linked/secret.txt"])
    with tarfile.open(store.archive_path("deno-linked")) as archive:
        assert archive.getnames() == []

    # A checkout whose folder is a link to the host gets nothing written through it.
    (deno_dir / ".deno-ci-workspace" / "linked").mkdir(parents=True)
    (deno_dir / ".deno-ci-workspace" / "linked" / "secret.txt").write_text("from the cache")
    assert restore_paths(deno_dir, workspace, ["linked/secret.txt"]) == []
    assert (host / "secret.txt").read_text() == "host file"
    assert not (deno_dir / ".deno-ci-workspace").exists()


def test_link_out_of_cached_path_is_left_out(tmp_path):
    store = CacheStore(tmp_path / "data", "p1")
    workspace, deno_dir = tmp_path / "workspace", tmp_path / "deno-dir"
    (workspace / "dir").mkdir(parents=True)
    (workspace / "dir" / "kept.txt").write_text("kept")
    (workspace / "dir" / "inside").symlink_to("kept.txt")
    (workspace / "dir" / "escape").symlink_to("../../..")
    (workspace / "outlink").symlink_to("/etc")
    deno_dir.mkdir()
    assert store.save("deno-links", deno_dir, workspace, ["dir", "outlink"])

    later_workspace, later_deno_dir = tmp_path / "later-workspace", tmp_path / "later-deno-dir"
    later_workspace.mkdir()
    assert store.restore("deno-links", later_deno_dir) == "deno-links"
    assert restore_paths(later_deno_dir, later_workspace, ["dir", "outlink"]) == ["dir"]
    assert (later_workspace / "dir" / "kept.txt").read_text() == "kept"
    assert os.readlink(later_workspace / "dir" / "inside") == "kept.txt"
    assert not (later_workspace / "dir" / "escape").is_symlink()
    assert not (later_workspace / "outlink").is_symlink()


def test_run_transpiled_files_not_saved(tmp_path):
    store = CacheStore(tmp_path / "data", "project-1")
    run_folder = tmp_path / "workspaces" / "run-7"
    workspace = run_folder / "stage-1-1" / "workspace"
    workspace.mkdir(parents=True)
    deno_dir = run_folder / "stage-1-1" / "deno-dir"
    own = deno_dir / "gen" / "file" / run_folder.relative_to("/") / "stage-1-1" / "workspace" / "deno-pipeline.ts.js"
    sdk = deno_dir / "gen" / "file" / "opt" / "deno-ci" / "sdk" / "mod.ts.js"
    for path in (own, sdk):
        path.parent.mkdir(parents=True)
        path.write_text("compiled")
    assert store.save("deno-abc", deno_dir, workspace)

    restored = tmp_path / "restored"
    assert store.restore("deno-abc", restored) == "deno-abc"
    assert (restored / sdk.relative_to(deno_dir)).read_text() == "compiled"
    assert not (restored / "gen" / "file" / run_folder.relative_to("/")).exists()
