import os

import pytest

from jobs.artifacts import ArtifactError, ArtifactStore


def test_symlinked_folder_is_not_followed(tmp_path):
    workspace = tmp_path / "workspace"
    (workspace / "dist").mkdir(parents=True)
    (workspace / "dist" / "app.js").write_text("ok")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("host file")
    os.symlink(outside, workspace / "dist" / "link")
    os.symlink(outside, workspace / "walkroot")
    store = ArtifactStore(tmp_path / "store")
    store.save("site", workspace, ["dist", "walkroot"])
    restored = tmp_path / "restored"
    restored.mkdir()
    store.restore_all(restored)
    names = sorted(path.name for path in (restored / ".deno-ci" / "artifacts" / "site").rglob("*") if path.is_file())
    assert names == ["app.js"]


def test_path_leaving_workspace_is_rejected(tmp_path):
    with pytest.raises(ArtifactError, match="must be relative"):
        ArtifactStore(tmp_path / "store").save("x", tmp_path, ["../etc"])


def test_invalid_name_is_rejected(tmp_path):
    with pytest.raises(ArtifactError, match="invalid"):
        ArtifactStore(tmp_path / "store").save("../../x", tmp_path, ["a"])
