"""Git LFS pieces: pointer files (checked against the real ``git lfs`` when installed) and attributes."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from export_action.errors import FileTooLargeError
from export_action.lfs import MAX_OBJECT_BYTES, gitattributes, lfs_object, lfs_url, pointer


def test_pointer_has_the_spec_format(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(b"weights" * 1000)
    obj = lfs_object("exports/x/model.onnx", path)
    assert (obj.oid, obj.size) == (hashlib.sha256(path.read_bytes()).hexdigest(), 7000)
    assert pointer(obj) == (f"version https://git-lfs.github.com/spec/v1\noid sha256:{obj.oid}\nsize 7000\n".encode())


@pytest.mark.git_lfs
def test_pointer_is_what_git_lfs_writes(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    with path.open("wb") as handle:  # sparse: 3 MiB of zeros and a tail, cheap to make
        handle.truncate(3 << 20)
        handle.seek(0, 2)
        handle.write(b"tail")
    process = subprocess.run(
        ["git", "lfs", "pointer", f"--file={path}"], capture_output=True, check=True, cwd=tmp_path, timeout=60
    )
    assert process.stdout == pointer(lfs_object("model.onnx", path))


def test_gitattributes_anchor_and_escape_names() -> None:
    assert gitattributes(["model.pt", "model.onnx", "a b[1].onnx"]) == (
        b"/a[[:space:]]b\\[1\\].onnx filter=lfs diff=lfs merge=lfs -text\n"
        b"/model.onnx filter=lfs diff=lfs merge=lfs -text\n"
        b"/model.pt filter=lfs diff=lfs merge=lfs -text\n"
    )


@pytest.mark.git_lfs
def test_git_applies_the_lfs_filter_to_exactly_these_files(tmp_path: Path) -> None:
    folder = tmp_path / "exports" / "x"
    folder.mkdir(parents=True)
    (folder / ".gitattributes").write_bytes(gitattributes(["model.onnx"]))
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    process = subprocess.run(
        ["git", "check-attr", "filter", "--", "exports/x/model.onnx", "exports/x/model.pt", "model.onnx"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert process.stdout.splitlines() == [
        "exports/x/model.onnx: filter: lfs",
        "exports/x/model.pt: filter: unspecified",
        "model.onnx: filter: unspecified",
    ]


def test_objects_above_two_gib_are_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx.data"
    with path.open("wb") as handle:
        handle.truncate(MAX_OBJECT_BYTES + 1)  # sparse: no disk, and never hashed
    with pytest.raises(FileTooLargeError) as caught:
        lfs_object("exports/x/model.onnx.data", path)
    assert str(caught.value).startswith("exports/x/model.onnx.data is 2.0 GiB, above GitHub's 2.0 GiB Git LFS object")
    assert caught.value.exit_code == 10


def test_lfs_url_is_the_remote_plus_info_lfs() -> None:
    assert lfs_url("https://github.com/", "octo/models") == "https://github.com/octo/models.git/info/lfs"
