"""Open or update the export's pull request through the Git Data API (PyGithub), large files via Git LFS.

A pull request is identified by (base branch, export branch). The action owns only what it wrote: the
files listed in the output folder's manifest. Each update is a new commit on the pull request branch's
own tree (a reviewer's commit is never reverted), and a branch holding commits the action did not make
is left alone with a clear error. A branch without an open pull request, whose commits are all the
action's or already in the base, is reset onto the base commit. An identical tree makes no commit; no
pull request is opened when the base already has the export.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import requests
from github import Auth, Github, GithubException, InputGitTreeElement, UnknownObjectException
from github.GitCommit import GitCommit
from github.GitTree import GitTree
from github.PullRequest import PullRequest
from github.Repository import Repository

from export_action import lfs
from export_action.errors import BranchConflictError, GitHubError
from export_action.manifest import MANIFEST_NAME, Entry, Manifest, check_owned

TRAILER = "Exported-From: "
_FILE_MODE = "100644"
_HINTS = {
    401: "check the github-token input",
    403: "give the job 'permissions: contents: write' and 'pull-requests: write', and allow GitHub Actions "
    "to create pull requests (Settings > Actions > General)",
    404: "check that the repository exists, the token can read it and the commit is pushed",
}
Operation = Literal["created", "updated", "unchanged"]


@dataclass(frozen=True, kw_only=True)
class PublishRequest:
    """The files to propose and where."""

    repository: str  # owner/name
    base_branch: str | None  # None: the repository's default branch
    base_sha: str | None  # the commit the export was made from; None: the base branch's head
    branch: str
    title: str
    body: str
    message: str
    directory: str  # the output folder in the repository
    files: Mapping[str, Path]  # name relative to ``directory`` -> local file
    lfs_threshold: int  # files above this many bytes go through Git LFS
    lfs_url: str  # the repository's Git LFS endpoint


@dataclass(frozen=True, kw_only=True)
class PullRequestResult:
    number: int
    url: str
    operation: Operation
    head_sha: str


@dataclass(frozen=True)
class Blob:
    """One file of the new tree: its git content (a pointer for LFS files) and manifest entry."""

    content: bytes | Path
    entry: Entry
    lfs_object: lfs.LfsObject | None


def git_blob_sha(content: bytes | Path) -> str:
    """The sha git gives this content as a blob."""
    if isinstance(content, bytes):
        return hashlib.sha1(f"blob {len(content)}\0".encode() + content, usedforsecurity=False).hexdigest()
    digest = hashlib.sha1(f"blob {content.stat().st_size}\0".encode(), usedforsecurity=False)
    with content.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def connect(api_url: str, token: str, *, paced: bool = True) -> Github:
    """PyGithub client; ``paced`` keeps its default spacing (0.25 s between requests, 1 s between writes),
    which GitHub's secondary rate limits ask of integrations. Tests against the fake turn it off."""
    if paced:
        return Github(base_url=api_url, auth=Auth.Token(token), timeout=300, user_agent="hub-exporter-action")
    return Github(
        base_url=api_url,
        auth=Auth.Token(token),
        timeout=300,
        user_agent="hub-exporter-action",
        seconds_between_requests=None,
        seconds_between_writes=None,
    )


def publish(
    gh: Github, request: PublishRequest, token: str, blobs: Mapping[str, Blob] | None = None
) -> PullRequestResult | None:
    """Commit ``request.files`` on ``request.branch`` and open or refresh its pull request.

    ``token`` authenticates the Git LFS uploads. Returns None when the base commit already has exactly
    these files (nothing to propose).
    """
    if blobs is None:
        blobs = prepare_blobs(request)  # hashes (and refuses files above the LFS limit) before any request
    with _translating("reading the repository"):
        repo = gh.get_repo(request.repository)
        base_branch = request.base_branch or repo.default_branch
        base = repo.get_git_commit(request.base_sha or repo.get_git_ref(f"heads/{base_branch}").object.sha)
        pull = _pull_for(repo, request.branch, base_branch)
        head = _branch_head(repo, request.branch)
        if head is not None:
            _check_own_commits(repo, request.branch, base.sha, head.sha, pull)
        start = head if head is not None and pull is not None else base
        previous = _check_folder(repo, request.directory, start, base)
    lfs_objects = [blob.lfs_object for blob in blobs.values() if blob.lfs_object is not None]
    if lfs_objects:
        sent = lfs.upload(request.lfs_url, token, lfs_objects, f"refs/heads/{request.branch}")
        print(f"Git LFS: {len(lfs_objects)} file(s) tracked, {sent} uploaded, {len(lfs_objects) - sent} already stored")
    with _translating("uploading the files"):
        tree = _build_tree(repo, start, request.directory, blobs, previous)
    if pull is None and tree.sha == base.tree.sha:
        return None
    commit = start
    if tree.sha != start.tree.sha:
        with _translating(f"committing to branch {request.branch}"):
            commit = repo.create_git_commit(f"{request.message}\n\n{TRAILER}{base.sha}\n", tree, [start])
            if head is None:
                repo.create_git_ref(f"refs/heads/{request.branch}", commit.sha)
            else:
                repo.get_git_ref(f"heads/{request.branch}").edit(commit.sha, force=start is base)
    with _translating("opening the pull request"):
        operation: Operation
        if pull is None:
            pull = repo.create_pull(base=base_branch, head=request.branch, title=request.title, body=request.body)
            operation = "created"
        else:
            if (pull.title, pull.body) != (request.title, request.body):
                pull.edit(title=request.title, body=request.body)
            operation = "unchanged" if commit is start else "updated"
    return PullRequestResult(number=pull.number, url=pull.html_url, operation=operation, head_sha=commit.sha)


def prepare_blobs(request: PublishRequest) -> dict[str, Blob]:
    """``{name: blob}``: files above the threshold as LFS pointers, plus ``.gitattributes`` and the manifest."""
    blobs: dict[str, Blob] = {}
    for name, local in sorted(request.files.items()):
        size = local.stat().st_size
        if size > request.lfs_threshold:
            obj = lfs.lfs_object(f"{request.directory}/{name}", local)
            blobs[name] = Blob(lfs.pointer(obj), Entry(obj.oid, obj.size, lfs=True), obj)
        else:
            blobs[name] = Blob(local, Entry(hashlib.sha256(local.read_bytes()).hexdigest(), size, lfs=False), None)
    tracked = [name for name, blob in blobs.items() if blob.entry.lfs]
    if tracked:
        data = lfs.gitattributes(tracked)
        blobs[".gitattributes"] = Blob(data, Entry(hashlib.sha256(data).hexdigest(), len(data), lfs=False), None)
    manifest = Manifest({name: blob.entry for name, blob in blobs.items()}).to_json().encode()
    blobs[MANIFEST_NAME] = Blob(manifest, Entry("", len(manifest), lfs=False), None)
    return blobs


@contextmanager
def _translating(stage: str) -> Iterator[None]:
    """Turn PyGithub and transport failures into :class:`GitHubError` naming the stage."""
    try:
        yield
    except GithubException as error:
        message = error.data.get("message") if isinstance(error.data, dict) else None
        hint = _HINTS.get(error.status)
        if error.status == 422 and "fast forward" in str(message):
            hint = "the branch moved while the action ran; rerun it"
        raise GitHubError(
            f"GitHub API error while {stage}: {error.status} {message or error.data}" + (f" ({hint})" if hint else "")
        ) from error
    except requests.RequestException as error:
        raise GitHubError(f"cannot reach the GitHub API while {stage}: {error}") from error


def _branch_head(repo: Repository, branch: str) -> GitCommit | None:
    try:
        return repo.get_git_commit(repo.get_git_ref(f"heads/{branch}").object.sha)
    except UnknownObjectException:
        return None


def _pull_for(repo: Repository, branch: str, base_branch: str) -> PullRequest | None:
    """The open pull request from ``branch`` into ``base_branch``; one into another base is a conflict."""
    pulls = list(repo.get_pulls(state="open", head=f"{repo.owner.login}:{branch}"))
    ours = [pull for pull in pulls if pull.base.ref == base_branch]
    if not ours and pulls:
        other = pulls[0]
        raise BranchConflictError(
            f"branch {branch} is the head of pull request #{other.number} into {other.base.ref}, and this run's "
            f"base is {base_branch}; nothing was pushed. Give each base its own export branch, e.g. "
            f"pr-branch: {branch}-{base_branch.replace('/', '-')}"
        )
    return ours[0] if ours else None


def _check_own_commits(repo: Repository, branch: str, base_sha: str, head_sha: str, pull: PullRequest | None) -> None:
    """Raise :class:`BranchConflictError` if the branch has a commit, not in the base, that the action did not make."""
    comparison = repo.compare(base_sha, head_sha)
    foreign = [
        c for c in comparison.commits if not any(line.startswith(TRAILER) for line in c.commit.message.splitlines())
    ]
    if not foreign:
        return
    first = foreign[0]
    subject = first.commit.message.splitlines()[0][:60] if first.commit.message else ""
    where = f"pull request #{pull.number}" if pull else f"branch {branch}"
    raise BranchConflictError(
        f"branch {branch} has {len(foreign)} commit(s) the action did not make "
        f"({first.sha[:7]} by {first.commit.author.name}: {subject!r}); nothing was pushed, so they are kept. "
        f"Merge or close {where} and delete the branch, or set pr-branch to another branch"
    )


def _check_folder(repo: Repository, directory: str, start: GitCommit, base: GitCommit) -> Manifest | None:
    """The manifest of ``directory`` in ``start``'s tree; refuses a folder with files it does not list."""
    previous = None
    for commit in dict.fromkeys([start, base]):
        blobs = _directory_blobs(repo, commit.tree.sha, directory)
        manifest = None
        if MANIFEST_NAME in blobs:
            manifest = Manifest.from_json(base64.b64decode(repo.get_git_blob(blobs[MANIFEST_NAME]).content))
        label = "on the pull request branch" if commit is start and commit is not base else f"at {commit.sha[:7]}"
        check_owned(label, directory, blobs, manifest, local=False)
        if commit is start:
            previous = manifest
    return previous


def _directory_blobs(repo: Repository, tree_sha: str, directory: str) -> dict[str, str]:
    """``{path relative to directory: blob sha}`` of every file under ``directory`` (empty if absent)."""
    for part in directory.split("/"):
        entry = next((e for e in repo.get_git_tree(tree_sha).tree if e.path == part), None)
        if entry is None:
            return {}
        if entry.type != "tree":
            return {"": entry.sha}  # a file where the folder should be: not the action's
        tree_sha = entry.sha
    listing = repo.get_git_tree(tree_sha, recursive=True)
    return {e.path: e.sha for e in listing.tree if e.type != "tree"}


def _build_tree(
    repo: Repository, start: GitCommit, directory: str, blobs: Mapping[str, Blob], previous: Manifest | None
) -> GitTree:
    """``start``'s tree with the export's files written and the previous export's leftovers removed."""
    existing = _directory_blobs(repo, start.tree.sha, directory)
    known = set(existing.values())
    elements = []
    for name, blob in blobs.items():
        sha = git_blob_sha(blob.content)
        if sha not in known:
            data = blob.content if isinstance(blob.content, bytes) else blob.content.read_bytes()
            sha = repo.create_git_blob(base64.b64encode(data).decode("ascii"), "base64").sha
        elements.append(InputGitTreeElement(f"{directory}/{name}", _FILE_MODE, "blob", sha=sha))
    stale = sorted((previous.owned() if previous else frozenset()) - set(blobs) & set(existing))
    elements += [InputGitTreeElement(f"{directory}/{name}", _FILE_MODE, "blob", sha=None) for name in stale]
    return repo.create_git_tree(elements, base_tree=start.tree)
