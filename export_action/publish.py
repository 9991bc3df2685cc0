"""Open or update the export's pull request through the Git Data API (PyGithub).

One fixed branch per model. The branch's new tree is the base commit's tree with the output folder
replaced by the exported files. An open pull request from that branch gets a new commit on top of its
head (never a second pull request); an identical tree makes no commit. A branch left without an open
pull request is reset onto the base commit; no pull request is opened when the base already has the files.
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
from github.GitRef import GitRef
from github.GitTree import GitTree
from github.PullRequest import PullRequest
from github.Repository import Repository

from export_action.errors import FileTooLargeError, GitHubError

_TRAILER = "Exported-From: "
_FILE_MODE = "100644"
_HINTS = {
    401: "check the github-token input",
    403: "give the job 'permissions: contents: write' and 'pull-requests: write', and allow GitHub Actions "
    "to create pull requests (Settings > Actions > General)",
    404: "check that the repository exists, the token can read it and the commit is pushed",
}


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
    directory: str  # repository folder owned by the export; files there but not in ``files`` are removed
    files: Mapping[str, Path]  # repository path -> local file


@dataclass(frozen=True, kw_only=True)
class PullRequestResult:
    number: int
    url: str
    operation: Literal["created", "updated", "unchanged"]
    commit_sha: str


def git_blob_sha(path: Path) -> str:
    """The sha git gives this file's content as a blob."""
    digest = hashlib.sha1(f"blob {path.stat().st_size}\0".encode(), usedforsecurity=False)
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_file_sizes(files: Mapping[str, Path], limit: int) -> None:
    """Raise :class:`FileTooLargeError` for the first file above ``limit``; call before any upload."""
    for repo_path, local in sorted(files.items()):
        size = local.stat().st_size
        if size > limit:
            raise FileTooLargeError(repo_path, size, limit)


def connect(api_url: str, token: str) -> Github:
    return Github(base_url=api_url, auth=Auth.Token(token), timeout=300, user_agent="hub-exporter-action")


def publish(gh: Github, request: PublishRequest) -> PullRequestResult | None:
    """Commit ``request.files`` on ``request.branch`` and open or refresh its pull request.

    Returns None when the base commit already has exactly these files (nothing to propose).
    """
    with _translating("reading the repository"):
        repo = gh.get_repo(request.repository)
        base_branch = request.base_branch or repo.default_branch
        base = repo.get_git_commit(request.base_sha or repo.get_git_ref(f"heads/{base_branch}").object.sha)
        head = _get_ref(repo, request.branch)
        pull = _find_open_pull(repo, request.branch)
        parent = repo.get_git_commit(head.object.sha) if head is not None and pull is not None else None
    with _translating("uploading the files"):
        tree = _build_tree(repo, base, parent, request)
    if pull is None and tree.sha == base.tree.sha:
        return None
    commit = parent
    if parent is None or tree.sha != parent.tree.sha:
        with _translating(f"committing to branch {request.branch}"):
            commit = _commit(repo, request, tree, base, parent)
            if head is None:
                repo.create_git_ref(f"refs/heads/{request.branch}", commit.sha)
            else:
                head.edit(commit.sha, force=parent is None)
    assert commit is not None
    with _translating("opening the pull request"):
        if pull is None:
            pull = repo.create_pull(base=base_branch, head=request.branch, title=request.title, body=request.body)
            operation: Literal["created", "updated", "unchanged"] = "created"
        else:
            if (pull.title, pull.body) != (request.title, request.body):
                pull.edit(title=request.title, body=request.body)
            operation = "unchanged" if commit is parent else "updated"
    return PullRequestResult(number=pull.number, url=pull.html_url, operation=operation, commit_sha=commit.sha)


@contextmanager
def _translating(stage: str) -> Iterator[None]:
    """Turn PyGithub and transport failures into :class:`GitHubError` naming the stage."""
    try:
        yield
    except GithubException as error:
        message = error.data.get("message") if isinstance(error.data, dict) else None
        hint = _HINTS.get(error.status)
        raise GitHubError(
            f"GitHub API error while {stage}: {error.status} {message or error.data}" + (f" ({hint})" if hint else "")
        ) from error
    except requests.RequestException as error:
        raise GitHubError(f"cannot reach the GitHub API while {stage}: {error}") from error


def _get_ref(repo: Repository, branch: str) -> GitRef | None:
    try:
        return repo.get_git_ref(f"heads/{branch}")
    except UnknownObjectException:
        return None


def _find_open_pull(repo: Repository, branch: str) -> PullRequest | None:
    pulls = repo.get_pulls(state="open", head=f"{repo.owner.login}:{branch}")
    return next(iter(pulls), None)


def _directory_blobs(repo: Repository, tree_sha: str, directory: str) -> dict[str, str]:
    """``{repository path: blob sha}`` of every file under ``directory`` in a tree (empty if absent)."""
    for part in directory.split("/"):
        entry = next((e for e in repo.get_git_tree(tree_sha).tree if e.path == part and e.type == "tree"), None)
        if entry is None:
            return {}
        tree_sha = entry.sha
    listing = repo.get_git_tree(tree_sha, recursive=True)
    return {f"{directory}/{e.path}": e.sha for e in listing.tree if e.type == "blob"}


def _build_tree(repo: Repository, base: GitCommit, parent: GitCommit | None, request: PublishRequest) -> GitTree:
    """The base tree with ``request.directory`` replaced; blobs git already has are not uploaded again."""
    old = _directory_blobs(repo, base.tree.sha, request.directory)
    known = set(old.values())
    if parent is not None:
        known |= set(_directory_blobs(repo, parent.tree.sha, request.directory).values())
    elements = []
    for repo_path, local in sorted(request.files.items()):
        sha = git_blob_sha(local)
        if sha not in known:
            content = base64.b64encode(local.read_bytes()).decode("ascii")
            sha = repo.create_git_blob(content, "base64").sha
        elements.append(InputGitTreeElement(repo_path, _FILE_MODE, "blob", sha=sha))
    elements += [InputGitTreeElement(path, _FILE_MODE, "blob", sha=None) for path in old if path not in request.files]
    return repo.create_git_tree(elements, base_tree=base.tree)


def _commit(
    repo: Repository, request: PublishRequest, tree: GitTree, base: GitCommit, parent: GitCommit | None
) -> GitCommit:
    """A commit on the branch head; the new base becomes a second parent when it is not merged in yet."""
    message = f"{request.message}\n\n{_TRAILER}{base.sha}\n"
    if parent is None:
        parents = [base]
    elif _exported_from(parent) == base.sha or parent.sha == base.sha:
        parents = [parent]
    else:
        parents = [parent, base]
    return repo.create_git_commit(message, tree, parents)


def _exported_from(commit: GitCommit) -> str | None:
    for line in reversed(commit.message.splitlines()):
        if line.startswith(_TRAILER):
            return line.removeprefix(_TRAILER).strip()
    return None
