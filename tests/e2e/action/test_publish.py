"""The GitHub side alone: :func:`export_action.publish.publish` with small files (and one real-size file),
the real PyGithub and the action's Git LFS client over loopback against the fake GitHub. No export.
"""

from __future__ import annotations

import base64
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from github import GithubException

from export_action.errors import BranchConflictError, GitHubError, OutputFolderNotOwnedError
from export_action.lfs import lfs_url
from export_action.manifest import MANIFEST_NAME, Manifest
from export_action.publish import PublishRequest, connect, publish
from tests.fakes.github import FakeGitHub

REPO = "octo/models"
BRANCH = "exporter/tiny"
FOLDER = "exports/tiny"
MiB = 1024 * 1024


def _request(fake: FakeGitHub, files: dict[str, Path], **overrides: Any) -> PublishRequest:
    fields: dict[str, Any] = {
        "repository": REPO,
        "base_branch": None,
        "base_sha": None,
        "branch": BRANCH,
        "title": "Export tiny",
        "body": "report",
        "message": "Export tiny",
        "directory": FOLDER,
        "files": files,
        "lfs_threshold": 10 * MiB,
        "lfs_url": lfs_url(fake.url, REPO),
        **overrides,
    }
    return PublishRequest(**fields)


def _publish(fake: FakeGitHub, files: dict[str, Path], **overrides: Any):
    return publish(connect(fake.url, fake.token, paced=False), _request(fake, files, **overrides), fake.token)


def _file(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _exported(fake: FakeGitHub, ref: str) -> dict[str, bytes]:
    return {p.removeprefix(f"{FOLDER}/"): d for p, d in fake.tree_files(REPO, ref).items() if p.startswith(FOLDER)}


def test_later_runs_delete_only_what_the_previous_manifest_lists(tmp_path: Path, fake: FakeGitHub) -> None:
    fake.create_repo(REPO, {"README.md": b"hi"})
    onnx, data = _file(tmp_path, "model.onnx", b"graph"), _file(tmp_path, "model.onnx.data", b"weights")
    first = _publish(fake, {"model.onnx": onnx, "model.onnx.data": data})
    assert first is not None and first.operation == "created"
    manifest = Manifest.from_json(_exported(fake, BRANCH)[MANIFEST_NAME])
    assert manifest is not None and sorted(manifest.files) == ["model.onnx", "model.onnx.data"]

    onnx.write_bytes(b"graph v2")  # the next export has no external data
    second = _publish(fake, {"model.onnx": onnx})
    assert second is not None and (second.number, second.operation) == (first.number, "updated")
    assert _exported(fake, BRANCH).keys() == {"model.onnx", MANIFEST_NAME}
    assert fake.commit(REPO, second.head_sha).parents == [first.head_sha]


@pytest.mark.parametrize(
    ("files", "foreign"),
    [
        ({f"{FOLDER}/config.json": b"{}", f"{FOLDER}/model.safetensors": b"w"}, "config.json, model.safetensors"),
        ({f"{FOLDER}/notes.md": b"mine", f"{FOLDER}/{MANIFEST_NAME}": b"{}"}, f"{MANIFEST_NAME}, notes.md"),
        ({FOLDER: b"a file where the folder would be"}, ""),
    ],
)
def test_folder_with_files_the_action_did_not_write_is_refused(
    tmp_path: Path, fake: FakeGitHub, files: dict[str, bytes], foreign: str
) -> None:
    base = fake.create_repo(REPO, {"README.md": b"hi", **files})
    with pytest.raises(OutputFolderNotOwnedError) as caught:
        _publish(fake, {"model.onnx": _file(tmp_path, "model.onnx", b"m")})
    assert f"output folder {FOLDER} (at {base[:7]}) holds files the action did not write ({foreign})" in str(
        caught.value
    )
    assert caught.value.exit_code == 12 and fake.writes() == [] and fake.ref(REPO, BRANCH) is None


def test_update_builds_on_the_branch_and_never_reverts_the_base(tmp_path: Path, fake: FakeGitHub) -> None:
    base1 = fake.create_repo(REPO, {"README.md": b"v1", "models/x/config.json": b"{}"})
    model = _file(tmp_path, "model.onnx", b"export 1")
    first = _publish(fake, {"model.onnx": model}, base_sha=base1)
    assert first is not None
    base2 = fake.push(REPO, "main", {"README.md": b"v2", "CHANGELOG": b"new"}, "Someone else's work")
    model.write_bytes(b"export 2")
    second = _publish(fake, {"model.onnx": model}, base_sha=base2)
    assert second is not None and second.operation == "updated"
    assert fake.commit(REPO, second.head_sha).parents == [first.head_sha]
    # The branch changes nothing outside the export folder relative to where it forked from main, so
    # merging it keeps main's README v2 and CHANGELOG (the old action re-based each update on main's tree
    # and merged main in, reverting commits made on the branch).
    fork_point = fake.tree_files(REPO, base1)
    branch = fake.tree_files(REPO, BRANCH)
    changed = {p for p in set(fork_point) | set(branch) if fork_point.get(p) != branch.get(p)}
    assert changed and all(p.startswith(f"{FOLDER}/") for p in changed)


def test_commits_the_action_did_not_make_stop_the_run(tmp_path: Path, fake: FakeGitHub) -> None:
    fake.create_repo(REPO, {"README.md": b"hi"})
    model = _file(tmp_path, "model.onnx", b"export 1")
    first = _publish(fake, {"model.onnx": model})
    assert first is not None
    reviewer = fake.push(REPO, BRANCH, {f"{FOLDER}/README.md": b"how to use it"}, "Add usage notes")
    model.write_bytes(b"export 2")
    with pytest.raises(BranchConflictError) as caught:
        _publish(fake, {"model.onnx": model})
    message = str(caught.value)
    assert message.startswith(f"branch {BRANCH} has 1 commit(s) the action did not make ({reviewer[:7]} by Test User")
    assert "nothing was pushed, so they are kept" in message and "pull request #1" in message
    assert caught.value.exit_code == 13 and fake.ref(REPO, BRANCH) == reviewer


def test_a_pull_request_into_another_base_is_never_touched(tmp_path: Path, fake: FakeGitHub) -> None:
    base = fake.create_repo(REPO, {"README.md": b"hi"})
    fake.push(REPO, "main", {"x": b"1"})
    fake.repo(REPO).refs["refs/heads/feature"] = base
    first = _publish(fake, {"model.onnx": _file(tmp_path, "model.onnx", b"m")})
    assert first is not None
    head = fake.ref(REPO, BRANCH)
    with pytest.raises(BranchConflictError, match=rf"branch {BRANCH} is the head of pull request #1 into main, "):
        _publish(fake, {"model.onnx": _file(tmp_path, "model.onnx", b"feature's")}, base_branch="feature")
    assert fake.ref(REPO, BRANCH) == head and len(fake.pulls(REPO)) == 1
    other = _publish(
        fake, {"model.onnx": tmp_path / "model.onnx"}, base_branch="feature", branch="exporter/tiny-feature"
    )
    assert other is not None and [(p.head, p.base) for p in fake.pulls(REPO)] == [
        (BRANCH, "main"),
        ("exporter/tiny-feature", "feature"),
    ]


def test_an_abandoned_branch_of_its_own_is_reset_onto_the_base(tmp_path: Path, fake: FakeGitHub) -> None:
    base = fake.create_repo(REPO, {"README.md": b"hi"})
    first = _publish(fake, {"model.onnx": _file(tmp_path, "model.onnx", b"1")})
    assert first is not None
    fake.repo(REPO).pulls[0].state = "closed"  # closed without merging
    second = _publish(fake, {"model.onnx": _file(tmp_path, "model.onnx", b"2")})
    assert second is not None and (second.number, second.operation) == (2, "created")
    assert fake.commit(REPO, second.head_sha).parents == [base]


def test_nothing_is_opened_when_the_base_already_has_the_export(tmp_path: Path, fake: FakeGitHub) -> None:
    model = _file(tmp_path, "model.onnx", b"merged earlier")
    fake.create_repo(REPO, {"README.md": b"hi"})
    first = _publish(fake, {"model.onnx": model})
    assert first is not None
    fake.repo(REPO).refs["refs/heads/main"] = first.head_sha  # the pull request was merged
    fake.repo(REPO).pulls[0].state = "closed"
    writes = len(fake.writes())
    assert _publish(fake, {"model.onnx": model}) is None
    assert fake.writes()[writes:] == [("POST", f"/repos/{REPO}/git/trees")] and len(fake.pulls(REPO)) == 1


def test_read_only_token_gets_a_clear_error(tmp_path: Path, fake: FakeGitHub) -> None:
    fake.create_repo(REPO, {"README.md": b"hi"})
    fake.add_token("read-only", write=False)
    request = _request(fake, {"model.onnx": _file(tmp_path, "model.onnx", b"m")})
    with pytest.raises(GitHubError, match="403 Resource not accessible by integration") as caught:
        publish(connect(fake.url, "read-only", paced=False), request, "read-only")
    assert "permissions: contents: write" in str(caught.value) and caught.value.exit_code == 11
    assert fake.ref(REPO, BRANCH) is None


def test_pull_request_creation_disabled_for_actions(tmp_path: Path, fake: FakeGitHub) -> None:
    fake.create_repo(REPO, {"README.md": b"hi"})
    fake.allow_pull_request_creation = False
    with pytest.raises(GitHubError, match="while opening the pull request: 403 GitHub Actions is not permitted"):
        _publish(fake, {"model.onnx": _file(tmp_path, "model.onnx", b"m")})


# -- large files: Git LFS, and the limits the fake enforces ----------------------------------------------
def _sparse(path: Path, size: int, tail: bytes = b"end") -> Path:
    """A file of ``size`` bytes that costs no disk and no time to write (zeros, then ``tail``)."""
    with path.open("wb") as handle:
        handle.truncate(size - len(tail))
        handle.seek(0, 2)
        handle.write(tail)
    return path


def test_real_size_file_goes_through_git_lfs(tmp_path: Path, fake: FakeGitHub) -> None:
    """A 150 MB weights file: above git's 100 MiB and the blob API's limit, so only LFS can carry it."""
    fake.create_repo(REPO, {"README.md": b"hi"})
    big = _sparse(tmp_path / "model.onnx.data", 150_000_000)
    small = _file(tmp_path, "model.onnx", b"graph")
    started = time.monotonic()
    result = _publish(fake, {"model.onnx": small, "model.onnx.data": big})
    seconds = time.monotonic() - started
    assert result is not None
    files = _exported(fake, BRANCH)
    manifest = Manifest.from_json(files[MANIFEST_NAME])
    assert manifest is not None
    entry = manifest.files["model.onnx.data"]
    assert (entry.size, entry.lfs) == (150_000_000, True) and not manifest.files["model.onnx"].lfs
    assert files["model.onnx.data"] == (
        f"version https://git-lfs.github.com/spec/v1\noid sha256:{entry.sha256}\nsize 150000000\n".encode()
    )
    assert files["model.onnx"] == b"graph"
    assert files[".gitattributes"] == b"/model.onnx.data filter=lfs diff=lfs merge=lfs -text\n"
    assert fake.lfs_objects(REPO) == {entry.sha256: 150_000_000}
    assert fake.lfs.uploads == [(REPO, entry.sha256, 150_000_000)]
    print(f"150 MB through Git LFS in {seconds:.1f} s")  # shown with -s; measured in the note
    assert seconds < 60

    # The same export again: the LFS server already has the object, so nothing is sent twice.
    puts = [r for r in fake.requests if r[0] == "PUT"]
    again = _publish(fake, {"model.onnx": small, "model.onnx.data": big})
    assert again is not None and again.operation == "unchanged"
    assert [r for r in fake.requests if r[0] == "PUT"] == puts


def test_fake_refuses_what_github_refuses(fake: FakeGitHub) -> None:
    """The limits hold for real clients: PyGithub for blobs, requests speaking the LFS batch protocol."""
    fake.create_repo(REPO, {"README.md": b"hi"})
    repo = connect(fake.url, fake.token, paced=False).get_repo(REPO)
    with pytest.raises((GithubException, requests.ConnectionError)):  # 413, or the connection closed mid-send
        repo.create_git_blob(base64.b64encode(b"\0" * 20_000_000).decode(), "base64")  # 26.7 MB of request
    assert (fake.max_file_bytes, fake.max_lfs_object_bytes) == (100 * MiB, 2 * 1024**3)  # GitHub's, by default
    fake.max_blob_request_bytes, fake.max_file_bytes = 4 * MiB, 1 * MiB  # the file limit, checked small and fast
    with pytest.raises(GithubException) as caught:
        repo.create_git_blob(base64.b64encode(b"\0" * (1 * MiB + 1)).decode(), "base64")
    assert caught.value.status == 422 and "file size limit" in caught.value.data["message"]

    batch = f"{lfs_url(fake.url, REPO)}/objects/batch"
    headers = {"Accept": "application/vnd.git-lfs+json", "Content-Type": "application/vnd.git-lfs+json"}
    body = {"operation": "upload", "transfers": ["basic"], "objects": [{"oid": "a" * 64, "size": 2 * 1024**3 + 1}]}
    answer = requests.post(batch, data=json.dumps(body), headers=headers, auth=("x-access-token", fake.token))
    assert answer.status_code == 200 and answer.headers["Content-Type"] == "application/vnd.git-lfs+json"
    [item] = answer.json()["objects"]
    assert item["error"] == {"code": 422, "message": "Size must be less than or equal to 2147483648"}
    assert requests.post(batch, data=json.dumps(body), headers=headers).status_code == 401
    assert (
        requests.post(batch, data=json.dumps(body), headers={**headers, "Accept": "application/json"}).status_code
        == 406
    )


@pytest.mark.git_lfs
def test_real_git_lfs_downloads_what_the_action_uploaded(tmp_path: Path, fake: FakeGitHub) -> None:
    """The reference client (``git lfs smudge``, as a checkout with ``lfs: true`` runs it) reads our objects."""
    fake.create_repo(REPO, {"README.md": b"hi"})
    weights = _file(tmp_path, "model.onnx", b"weights " * 1000)
    assert _publish(fake, {"model.onnx": weights}, lfs_threshold=0) is not None
    pointer = _exported(fake, BRANCH)["model.onnx"]
    clone = tmp_path / "clone"
    subprocess.run(["git", "init", "-q", str(clone)], check=True)
    url = lfs_url(fake.url, REPO).replace("http://", f"http://x-access-token:{fake.token}@")
    subprocess.run(["git", "-C", str(clone), "config", "lfs.url", url], check=True)
    process = subprocess.run(
        ["git", "lfs", "smudge", "--", "exports/tiny/model.onnx"],
        cwd=clone,
        input=pointer,
        capture_output=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "GIT_TERMINAL_PROMPT": "0"},
    )
    assert process.returncode == 0, process.stderr.decode()
    assert process.stdout == weights.read_bytes()


@pytest.mark.git_lfs
def test_real_git_lfs_uploads_to_the_fake_and_the_action_agrees(tmp_path: Path, fake: FakeGitHub) -> None:
    """``git lfs push`` (the reference client's batch + basic upload + verify) works against the fake, and
    the action then finds the same oid already stored: both sides speak one protocol."""
    fake.create_repo(REPO, {"README.md": b"hi"})
    clone = tmp_path / "clone"
    subprocess.run(["git", "init", "-q", str(clone)], check=True)
    url = lfs_url(fake.url, REPO).replace("http://", f"http://x-access-token:{fake.token}@")
    subprocess.run(["git", "-C", str(clone), "config", "lfs.url", url], check=True)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "GIT_TERMINAL_PROMPT": "0"}
    data = b"pushed by git-lfs " * 1000
    pointer = subprocess.run(
        ["git", "lfs", "clean", "--", "model.onnx"], cwd=clone, input=data, capture_output=True, env=env, check=True
    ).stdout
    oid = pointer.decode().split("oid sha256:")[1].split()[0]
    push = subprocess.run(
        ["git", "lfs", "push", "--object-id", url, oid], cwd=clone, capture_output=True, env=env, timeout=60
    )
    assert push.returncode == 0, push.stderr.decode()
    assert fake.lfs_objects(REPO) == {oid: len(data)} and [r[0] for r in fake.requests] == ["POST", "PUT", "POST"]

    result = _publish(fake, {"model.onnx": _file(tmp_path, "model.onnx", data)}, lfs_threshold=0)
    assert result is not None and _exported(fake, BRANCH)["model.onnx"] == pointer  # the same pointer bytes
    assert [r for r in fake.requests if r[0] == "PUT"] == [("PUT", f"/_lfs/objects/{REPO}/{oid}")]  # not sent again
