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


def test_links_inside_workspace_are_kept(tmp_path):
    workspace = tmp_path / "workspace"
    (workspace / "dist" / "sub").mkdir(parents=True)
    (workspace / "dist" / "index.html").write_text("home")
    os.symlink("index.html", workspace / "dist" / "link.html")
    os.symlink("../index.html", workspace / "dist" / "sub" / "up.html")
    os.symlink("/etc/passwd", workspace / "dist" / "sub" / "pw")
    os.symlink("../../../outside.txt", workspace / "dist" / "sub" / "out")
    store = ArtifactStore(tmp_path / "store")

    _, left_out = store.save("site", workspace, ["dist"])

    assert left_out == [
        "dist/sub/out -> ../../../outside.txt: it leads out of the workspace",
        "dist/sub/pw -> /etc/passwd: an absolute link would lead out of the workspace where the artifact is unpacked",
    ]
    restored = tmp_path / "restored"
    restored.mkdir()
    store.restore_all(restored)
    site = restored / ".deno-ci" / "artifacts" / "site" / "dist"
    assert os.readlink(site / "link.html") == "index.html"
    assert (site / "sub" / "up.html").read_text() == "home"
    assert not (site / "sub" / "pw").exists()
    assert not (site / "sub" / "out").is_symlink()
