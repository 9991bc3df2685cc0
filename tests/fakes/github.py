"""A fake GitHub REST API on loopback, faithful enough for unmodified PyGithub.

Implements what the GitHub Action calls: the repository, git refs, blobs, trees and commits (the Git
Data API, with real git object shas), and pull requests (list with ``state``/``head``/``base``
filters, create, get, update). Repositories live in memory and are inspectable from tests::

    with FakeGitHub() as fake:
        base = fake.create_repo("octo/models", {"README.md": b"hi"})
        gh = Github(base_url=fake.url, auth=Auth.Token(fake.token))
        ...
        assert fake.tree_files("octo/models", "exporter/tiny")["exports/tiny/model.onnx"] == b"..."

It also serves Git LFS (:mod:`tests.fakes.lfs`: the batch API and basic transfers) and enforces
GitHub's size limits, so that tests meet them: a create-blob request above ``max_blob_request_bytes``
(25 MB, the low end of what users report the API refuses; GitHub documents no figure) is answered 413,
a blob above ``max_file_bytes`` (100 MiB, git push's limit) 422, an LFS object above
``max_lfs_object_bytes`` (2 GiB, GitHub Free/Pro) 422.

Errors have GitHub's shapes: 401 ``Bad credentials``, 403 ``Resource not accessible by integration``
for a read-only token's writes, 404 ``Not Found``, 422 with ``message`` (and ``errors``) for invalid
writes (unknown objects, existing refs, non-fast-forward updates, duplicate pull requests).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.fakes.lfs import LfsServer
from tests.fakes.routing import LoopbackServer, NoRoute, Routes

BLOB_MODE, TREE_MODE = "100644", "40000"
MAX_BLOB_REQUEST_BYTES = 25_000_000
MAX_FILE_BYTES = 100 * 1024 * 1024
MAX_LFS_OBJECT_BYTES = 2 * 1024 * 1024 * 1024
_DOCS = "https://docs.github.com/rest"


class HTTPError(Exception):
    """An error response with GitHub's JSON body."""

    def __init__(self, status: int, message: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.errors = status, message, errors


@dataclass
class Commit:
    tree: str
    parents: list[str]
    message: str
    author: dict[str, str]
    committer: dict[str, str]


@dataclass
class Pull:
    number: int
    title: str
    body: str | None
    head: str  # branch name in the same repository
    base: str
    state: str = "open"
    created_at: str = ""
    updated_at: str = ""


@dataclass
class Repo:
    """One repository: git objects by sha, refs, pull requests."""

    id: int
    owner: str
    name: str
    default_branch: str
    blobs: dict[str, bytes] = field(default_factory=dict)
    trees: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict)  # sha -> (mode, name, sha)
    commits: dict[str, Commit] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)  # "refs/heads/main" -> commit sha
    pulls: list[Pull] = field(default_factory=list)

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    # -- git objects ---------------------------------------------------------------------------
    def put_blob(self, data: bytes) -> str:
        sha = _git_sha("blob", data)
        self.blobs[sha] = data
        return sha

    def put_tree(self, entries: list[tuple[str, str, str]]) -> str:
        entries = sorted(entries, key=lambda e: e[1] + ("/" if e[0] == TREE_MODE else ""))
        raw = b"".join(f"{mode} {name}".encode() + b"\0" + bytes.fromhex(sha) for mode, name, sha in entries)
        sha = _git_sha("tree", raw)
        self.trees[sha] = entries
        return sha

    def put_commit(self, commit: Commit) -> str:
        lines = [f"tree {commit.tree}", *(f"parent {p}" for p in commit.parents)]
        for role, person in (("author", commit.author), ("committer", commit.committer)):
            stamp = int(datetime.fromisoformat(person["date"].replace("Z", "+00:00")).timestamp())
            lines.append(f"{role} {person['name']} <{person['email']}> {stamp} +0000")
        sha = _git_sha("commit", ("\n".join(lines) + "\n\n" + commit.message).encode())
        self.commits[sha] = commit
        return sha

    def flatten(self, tree_sha: str, prefix: str = "") -> dict[str, str]:
        """``{path: blob sha}`` of every file under a tree."""
        files: dict[str, str] = {}
        for mode, name, sha in self.trees[tree_sha]:
            path = f"{prefix}{name}"
            if mode == TREE_MODE:
                files.update(self.flatten(sha, path + "/"))
            else:
                files[path] = sha
        return files

    def build_tree(self, files: Mapping[str, str]) -> str:
        """Store nested trees for ``{path: blob sha}`` and return the root tree's sha."""
        children: dict[str, dict[str, str]] = {}
        entries = []
        for path, sha in files.items():
            head, _, rest = path.partition("/")
            if rest:
                children.setdefault(head, {})[rest] = sha
            else:
                entries.append((BLOB_MODE, head, sha))
        entries += [(TREE_MODE, name, self.build_tree(sub)) for name, sub in children.items()]
        return self.put_tree(entries)

    def is_ancestor(self, ancestor: str, sha: str) -> bool:
        seen, todo = set(), [sha]
        while todo:
            current = todo.pop()
            if current == ancestor:
                return True
            if current not in seen and current in self.commits:
                seen.add(current)
                todo += self.commits[current].parents
        return False

    def ancestors_ordered(self, sha: str) -> list[str]:
        """``sha`` and every commit reachable from it, newest first (by walk order, parents after children)."""
        order: list[str] = []
        seen: set[str] = set()
        todo = [sha]
        while todo:
            current = todo.pop(0)
            if current in seen or current not in self.commits:
                continue
            seen.add(current)
            order.append(current)
            todo += self.commits[current].parents
        return order

    def ancestors(self, sha: str) -> set[str]:
        return set(self.ancestors_ordered(sha))

    def resolve(self, ref: str) -> str:
        """A commit sha from a branch name, ``refs/...`` name or sha."""
        for candidate in (ref, f"refs/heads/{ref}"):
            if candidate in self.refs:
                return self.refs[candidate]
        if ref in self.commits:
            return ref
        raise KeyError(ref)


class FakeGitHub:
    """The fake API server, run in a background thread on a free loopback port (a context manager)."""

    def __init__(self, token: str = "fake-token", login: str = "github-actions[bot]") -> None:
        self.token = token
        self.login = login
        self.tokens: dict[str, bool] = {token: True}  # token -> may write
        self.allow_pull_request_creation = True
        self.max_blob_request_bytes = MAX_BLOB_REQUEST_BYTES
        self.max_file_bytes = MAX_FILE_BYTES
        self.max_lfs_object_bytes = MAX_LFS_OBJECT_BYTES
        self.lfs = LfsServer(self)
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request, in order
        self.errors: list[str] = []  # tracebacks of handler bugs (answered 500)
        self._repos: dict[str, Repo] = {}
        self._lock = threading.RLock()
        self._server: LoopbackServer | None = None

    # -- lifecycle -----------------------------------------------------------------------------
    def __enter__(self) -> FakeGitHub:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        self._server = LoopbackServer(type("Handler", (_Handler,), {"fake": self}), "fake-github")

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
        self.lfs.close()

    @property
    def url(self) -> str:
        assert self._server is not None, "not started"
        return self._server.url

    # -- test helpers --------------------------------------------------------------------------
    def add_token(self, token: str, *, write: bool = True) -> None:
        self.tokens[token] = write

    def create_repo(self, full_name: str, files: Mapping[str, bytes], *, default_branch: str = "main") -> str:
        """A repository whose default branch has one commit with ``files``; returns its sha."""
        owner, name = full_name.split("/")
        with self._lock:
            repo = Repo(id=len(self._repos) + 1, owner=owner, name=name, default_branch=default_branch)
            self._repos[full_name] = repo
            return self._commit_files(repo, default_branch, dict(files), "Initial commit", parents=[])

    def push(self, full_name: str, branch: str, files: Mapping[str, bytes | None], message: str = "Update") -> str:
        """A new commit on ``branch`` changing ``files`` (``None`` deletes); returns its sha."""
        with self._lock:
            repo = self.repo(full_name)
            head = repo.refs[f"refs/heads/{branch}"]
            current = {path: repo.blobs[sha] for path, sha in repo.flatten(repo.commits[head].tree).items()}
            for path, data in files.items():
                if data is None:
                    current.pop(path, None)
                else:
                    current[path] = data
            return self._commit_files(repo, branch, current, message, parents=[head])

    def repo(self, full_name: str) -> Repo:
        return self._repos[full_name]

    def has_repo(self, full_name: str) -> bool:
        return full_name in self._repos

    def lfs_objects(self, full_name: str) -> dict[str, int]:
        """``{oid: size}`` of the Git LFS objects uploaded to a repository."""
        return self.lfs.objects(full_name)

    def pulls(self, full_name: str) -> list[Pull]:
        with self._lock:
            return [Pull(**vars(pull)) for pull in self.repo(full_name).pulls]

    def ref(self, full_name: str, branch: str) -> str | None:
        return self.repo(full_name).refs.get(f"refs/heads/{branch}")

    def commit(self, full_name: str, sha: str) -> Commit:
        return self.repo(full_name).commits[sha]

    def history(self, full_name: str, ref: str) -> list[str]:
        """First-parent history of a branch or commit, newest first."""
        repo = self.repo(full_name)
        shas, sha = [], repo.resolve(ref)
        while True:
            shas.append(sha)
            parents = repo.commits[sha].parents
            if not parents:
                return shas
            sha = parents[0]

    def tree_files(self, full_name: str, ref: str) -> dict[str, bytes]:
        """``{path: content}`` of every file at a branch or commit."""
        with self._lock:
            repo = self.repo(full_name)
            tree = repo.commits[repo.resolve(ref)].tree
            return {path: repo.blobs[sha] for path, sha in repo.flatten(tree).items()}

    def writes(self) -> list[tuple[str, str]]:
        return [(method, path) for method, path in self.requests if method != "GET"]

    def _commit_files(self, repo: Repo, branch: str, files: dict[str, bytes], message: str, parents: list[str]) -> str:
        tree = repo.build_tree({path: repo.put_blob(data) for path, data in files.items()})
        person = {"name": "Test User", "email": "test@example.com", "date": _now()}
        sha = repo.put_commit(Commit(tree, parents, message, person, dict(person)))
        repo.refs[f"refs/heads/{branch}"] = sha
        return sha

    # -- request handling ----------------------------------------------------------------------
    def handle(self, method: str, path: str, query: dict[str, str], body: Any, token: str | None) -> tuple[int, Any]:
        """Route one request; returns ``(status, json body)``."""
        with self._lock:
            self.requests.append((method, path))
            if token is None:
                raise HTTPError(401, "Requires authentication")
            if token not in self.tokens:
                raise HTTPError(401, "Bad credentials")
            try:
                action, params = _ROUTES.resolve(method, path)
            except NoRoute:
                raise HTTPError(404, "Not Found") from None
            params = {key: unquote(value) for key, value in params.items()}
            repo = self._repos.get(f"{params.pop('owner')}/{params.pop('name')}")
            if repo is None:
                raise HTTPError(404, "Not Found")
            if method != "GET" and not self.tokens[token]:
                raise HTTPError(403, "Resource not accessible by integration")
            return action(_Api(self, repo), query=query, body=body, **params)


class _Api:
    """Endpoint implementations for one repository (called with the server lock held)."""

    def __init__(self, fake: FakeGitHub, repo: Repo) -> None:
        self.fake, self.repo = fake, repo
        self.base = f"{fake.url}/repos/{repo.full_name}"

    # -- JSON shapes ---------------------------------------------------------------------------
    def repo_json(self) -> dict[str, Any]:
        repo = self.repo
        return {
            "id": repo.id,
            "node_id": f"R_{repo.id}",
            "name": repo.name,
            "full_name": repo.full_name,
            "private": False,
            "owner": self.user_json(repo.owner),
            "html_url": f"https://github.com/{repo.full_name}",
            "url": self.base,
            "default_branch": repo.default_branch,
            "fork": False,
            "permissions": {"admin": False, "push": True, "pull": True},
        }

    def user_json(self, login: str) -> dict[str, Any]:
        return {
            "login": login,
            "id": abs(hash(login)) % 10**6,
            "type": "User",
            "url": f"{self.fake.url}/users/{login}",
        }

    def ref_json(self, ref: str) -> dict[str, Any]:
        sha = self.repo.refs[ref]
        return {
            "ref": ref,
            "node_id": f"REF_{ref}",
            "url": f"{self.base}/git/{ref}",
            "object": {"sha": sha, "type": "commit", "url": f"{self.base}/git/commits/{sha}"},
        }

    def commit_json(self, sha: str) -> dict[str, Any]:
        commit = self.repo.commits[sha]
        return {
            "sha": sha,
            "node_id": f"C_{sha}",
            "url": f"{self.base}/git/commits/{sha}",
            "html_url": f"https://github.com/{self.repo.full_name}/commit/{sha}",
            "author": commit.author,
            "committer": commit.committer,
            "message": commit.message,
            "tree": {"sha": commit.tree, "url": f"{self.base}/git/trees/{commit.tree}"},
            "parents": [
                {
                    "sha": p,
                    "url": f"{self.base}/git/commits/{p}",
                    "html_url": f"https://github.com/x/commit/{p}",
                }
                for p in commit.parents
            ],
            "verification": {"verified": False, "reason": "unsigned", "signature": None, "payload": None},
        }

    def repo_commit_json(self, sha: str) -> dict[str, Any]:
        """A commit as ``/repos/{owner}/{repo}/commits`` and ``/compare`` list it."""
        git = self.commit_json(sha)
        return {
            "sha": sha,
            "node_id": git["node_id"],
            "url": f"{self.base}/commits/{sha}",
            "html_url": git["html_url"],
            "commit": {key: git[key] for key in ("author", "committer", "message", "tree", "url", "verification")},
            "author": None,
            "committer": None,
            "parents": git["parents"],
        }

    def tree_json(self, sha: str, *, recursive: bool = False) -> dict[str, Any]:
        entries = []

        def walk(tree_sha: str, prefix: str) -> None:
            for mode, name, entry_sha in self.repo.trees[tree_sha]:
                is_tree = mode == TREE_MODE
                entry: dict[str, Any] = {
                    "path": prefix + name,
                    "mode": "040000" if is_tree else mode,
                    "type": "tree" if is_tree else "blob",
                    "sha": entry_sha,
                    "url": f"{self.base}/git/{'trees' if is_tree else 'blobs'}/{entry_sha}",
                }
                if not is_tree:
                    entry["size"] = len(self.repo.blobs[entry_sha])
                entries.append(entry)
                if is_tree and recursive:
                    walk(entry_sha, f"{prefix}{name}/")

        walk(sha, "")
        return {"sha": sha, "url": f"{self.base}/git/trees/{sha}", "tree": entries, "truncated": False}

    def pull_json(self, pull: Pull) -> dict[str, Any]:
        url = f"{self.base}/pulls/{pull.number}"

        def side(branch: str) -> dict[str, Any]:
            return {
                "label": f"{self.repo.owner}:{branch}",
                "ref": branch,
                "sha": self.repo.refs.get(f"refs/heads/{branch}"),
                "user": self.user_json(self.repo.owner),
                "repo": self.repo_json(),
            }

        return {
            "id": 1000 + pull.number,
            "node_id": f"PR_{pull.number}",
            "number": pull.number,
            "url": url,
            "html_url": f"https://github.com/{self.repo.full_name}/pull/{pull.number}",
            "issue_url": f"{self.base}/issues/{pull.number}",
            "state": pull.state,
            "locked": False,
            "title": pull.title,
            "body": pull.body,
            "user": self.user_json(self.fake.login),
            "labels": [],
            "assignees": [],
            "requested_reviewers": [],
            "requested_teams": [],
            "milestone": None,
            "draft": False,
            "merged": False,
            "merged_at": None,
            "closed_at": None if pull.state == "open" else pull.updated_at,
            "created_at": pull.created_at,
            "updated_at": pull.updated_at,
            "head": side(pull.head),
            "base": side(pull.base),
            "author_association": "CONTRIBUTOR",
        }

    # -- endpoints -----------------------------------------------------------------------------
    def get_repo(self, **_: Any) -> tuple[int, Any]:
        return 200, self.repo_json()

    def get_ref(self, ref: str, **_: Any) -> tuple[int, Any]:
        ref = ref if ref.startswith("refs/") else f"refs/{ref}"
        if ref not in self.repo.refs:
            raise HTTPError(404, "Not Found")
        return 200, self.ref_json(ref)

    def create_ref(self, body: dict[str, Any], **_: Any) -> tuple[int, Any]:
        ref, sha = _require(body, "ref", str), _require(body, "sha", str)
        if not ref.startswith("refs/") or ref.count("/") < 2:
            raise HTTPError(422, f"{ref} is not a valid ref name.")
        if ref in self.repo.refs:
            raise HTTPError(422, "Reference already exists")
        if sha not in self.repo.commits:
            raise HTTPError(422, "Object does not exist")
        self.repo.refs[ref] = sha
        return 201, self.ref_json(ref)

    def update_ref(self, ref: str, body: dict[str, Any], **_: Any) -> tuple[int, Any]:
        ref = f"refs/{ref}"
        sha = _require(body, "sha", str)
        if ref not in self.repo.refs:
            raise HTTPError(422, "Reference does not exist")
        if sha not in self.repo.commits:
            raise HTTPError(422, "Object does not exist")
        if not body.get("force") and not self.repo.is_ancestor(self.repo.refs[ref], sha):
            raise HTTPError(422, "Update is not a fast forward")
        self.repo.refs[ref] = sha
        return 200, self.ref_json(ref)

    def delete_ref(self, ref: str, **_: Any) -> tuple[int, Any]:
        if self.repo.refs.pop(f"refs/{ref}", None) is None:
            raise HTTPError(422, "Reference does not exist")
        return 204, None

    def create_blob(self, body: dict[str, Any], **_: Any) -> tuple[int, Any]:
        content, encoding = _require(body, "content", str), body.get("encoding", "utf-8")
        if encoding == "base64":
            try:
                data = base64.b64decode(content, validate=True)
            except binascii.Error as error:
                raise HTTPError(422, f"content is not valid Base64: {error}") from None
        elif encoding in ("utf-8", "utf8"):
            data = content.encode()
        else:
            raise HTTPError(422, f"encoding must be utf-8 or base64, got {encoding!r}")
        if len(data) > self.fake.max_file_bytes:
            raise HTTPError(
                422, f"File of {len(data)} bytes exceeds GitHub's file size limit of {self.fake.max_file_bytes} bytes"
            )
        sha = self.repo.put_blob(data)
        return 201, {"sha": sha, "url": f"{self.base}/git/blobs/{sha}"}

    def get_blob(self, sha: str, **_: Any) -> tuple[int, Any]:
        if sha not in self.repo.blobs:
            raise HTTPError(404, "Not Found")
        data = self.repo.blobs[sha]
        return 200, {
            "sha": sha,
            "node_id": f"B_{sha}",
            "size": len(data),
            "url": f"{self.base}/git/blobs/{sha}",
            "content": base64.encodebytes(data).decode(),
            "encoding": "base64",
        }

    def create_tree(self, body: dict[str, Any], **_: Any) -> tuple[int, Any]:
        base_tree = body.get("base_tree")
        if base_tree is not None and base_tree not in self.repo.trees:
            raise HTTPError(422, "base_tree is not a valid tree oid")
        files = self.repo.flatten(base_tree) if base_tree else {}
        for entry in _require(body, "tree", list):
            path, mode, kind = entry.get("path"), entry.get("mode"), entry.get("type")
            if not isinstance(path, str) or not path or path.startswith("/") or "//" in path:
                raise HTTPError(422, "Invalid tree info", [{"field": "path", "code": "invalid"}])
            if (kind, mode) not in (("blob", "100644"), ("blob", "100755"), ("tree", "040000")):
                raise HTTPError(422, f"Invalid tree info: mode {mode!r} type {kind!r}")
            if "content" in entry and entry.get("sha") is None and entry["content"] is not None:
                files[path] = self.repo.put_blob(str(entry["content"]).encode())
                continue
            if "sha" not in entry:
                raise HTTPError(422, "Must supply either tree.sha or tree.content")
            sha = entry["sha"]
            if kind == "tree":
                files = {p: s for p, s in files.items() if not p.startswith(path + "/")}
                if sha is not None:
                    if sha not in self.repo.trees:
                        raise HTTPError(422, f"tree.sha {sha} is not a valid tree")
                    files.update(self.repo.flatten(sha, path + "/"))
            elif sha is None:
                files.pop(path, None)
            elif sha not in self.repo.blobs:
                raise HTTPError(422, f"tree.sha {sha} is not a valid blob")
            else:
                files[path] = sha
        sha = self.repo.build_tree(files)
        return 201, self.tree_json(sha)

    def get_tree(self, sha: str, query: dict[str, str], **_: Any) -> tuple[int, Any]:
        if sha not in self.repo.trees:
            try:
                sha = self.repo.commits[self.repo.resolve(sha)].tree
            except KeyError:
                raise HTTPError(404, "Not Found") from None
        recursive = query.get("recursive") not in (None, "", "0", "false")
        return 200, self.tree_json(sha, recursive=recursive)

    def create_commit(self, body: dict[str, Any], **_: Any) -> tuple[int, Any]:
        message, tree = _require(body, "message", str), _require(body, "tree", str)
        parents = body.get("parents", [])
        if tree not in self.repo.trees:
            raise HTTPError(422, "Tree SHA does not exist")
        if not isinstance(parents, list) or any(p not in self.repo.commits for p in parents):
            raise HTTPError(422, "Parent SHA does not exist or is not a commit object")
        person = {"name": self.fake.login, "email": "41898282+github-actions[bot]@users.noreply.github.com"}
        author = {**person, "date": _now(), **body.get("author", {})}
        committer = {**author, **body.get("committer", {})}
        sha = self.repo.put_commit(Commit(tree, list(parents), message, author, committer))
        return 201, self.commit_json(sha)

    def get_commit(self, sha: str, **_: Any) -> tuple[int, Any]:
        if sha not in self.repo.commits:
            raise HTTPError(404, "Not Found")
        return 200, self.commit_json(sha)

    def compare(self, basehead: str, query: dict[str, str], **_: Any) -> tuple[int, Any]:
        base_ref, dots, head_ref = basehead.partition("...")
        try:
            base, head = self.repo.resolve(base_ref), self.repo.resolve(head_ref)
        except KeyError:
            raise HTTPError(404, "Not Found") from None
        if not dots:
            raise HTTPError(404, "Not Found")
        base_side, head_side = self.repo.ancestors(base), self.repo.ancestors(head)
        merge_base = next(sha for sha in self.repo.ancestors_ordered(head) if sha in base_side)
        ahead = [sha for sha in reversed(self.repo.ancestors_ordered(head)) if sha not in base_side]  # oldest first
        behind = [sha for sha in base_side if sha not in head_side]
        status = {(0, 0): "identical", (0, 1): "behind", (1, 0): "ahead"}.get(
            (min(len(ahead), 1), min(len(behind), 1)), "diverged"
        )
        per_page, page = min(int(query.get("per_page", 250)), 1000), int(query.get("page", 1))
        url = f"{self.base}/compare/{basehead}"
        return 200, {
            "url": url,
            "html_url": f"https://github.com/{self.repo.full_name}/compare/{basehead}",
            "permalink_url": url,
            "diff_url": url + ".diff",
            "patch_url": url + ".patch",
            "base_commit": self.repo_commit_json(base),
            "merge_base_commit": self.repo_commit_json(merge_base),
            "status": status,
            "ahead_by": len(ahead),
            "behind_by": len(behind),
            "total_commits": len(ahead),
            "commits": [self.repo_commit_json(sha) for sha in ahead[(page - 1) * per_page : page * per_page]],
            "files": [],
        }

    def list_pulls(self, query: dict[str, str], **_: Any) -> tuple[int, Any]:
        state, head, base = query.get("state", "open"), query.get("head"), query.get("base")
        pulls = [
            pull
            for pull in reversed(self.repo.pulls)  # newest first, GitHub's default sort
            if state in ("all", pull.state)
            and (head is None or head == f"{self.repo.owner}:{pull.head}")
            and (base is None or base == pull.base)
        ]
        per_page, page = int(query.get("per_page", 30)), int(query.get("page", 1))
        chunk = pulls[(page - 1) * per_page : page * per_page]
        headers = {}
        if page * per_page < len(pulls):
            params = "&".join(f"{k}={v}" for k, v in {**query, "page": page + 1}.items())
            headers["Link"] = f'<{self.base}/pulls?{params}>; rel="next"'
        return 200, _WithHeaders([self.pull_json(pull) for pull in chunk], headers)

    def create_pull(self, body: dict[str, Any], **_: Any) -> tuple[int, Any]:
        if not self.fake.allow_pull_request_creation:
            raise HTTPError(403, "GitHub Actions is not permitted to create or approve pull requests.")
        title, head, base = (
            _require(body, "title", str),
            _require(body, "head", str),
            _require(body, "base", str),
        )
        head = head.removeprefix(f"{self.repo.owner}:")
        for field_name, branch in (("base", base), ("head", head)):
            if f"refs/heads/{branch}" not in self.repo.refs:
                raise HTTPError(
                    422,
                    "Validation Failed",
                    [{"resource": "PullRequest", "field": field_name, "code": "invalid"}],
                )
        if any(p.state == "open" and p.head == head and p.base == base for p in self.repo.pulls):
            raise HTTPError(
                422,
                "Validation Failed",
                [
                    {
                        "resource": "PullRequest",
                        "code": "custom",
                        "message": f"A pull request already exists for {self.repo.owner}:{head}.",
                    }
                ],
            )
        head_sha, base_sha = self.repo.refs[f"refs/heads/{head}"], self.repo.refs[f"refs/heads/{base}"]
        if self.repo.is_ancestor(head_sha, base_sha):
            raise HTTPError(
                422,
                "Validation Failed",
                [
                    {
                        "resource": "PullRequest",
                        "code": "custom",
                        "message": f"No commits between {base} and {head}",
                    }
                ],
            )
        now = _now()
        number = len(self.repo.pulls) + 1
        pull = Pull(number, title, body.get("body"), head, base, created_at=now, updated_at=now)
        self.repo.pulls.append(pull)
        return 201, self.pull_json(pull)

    def get_pull(self, number: str, **_: Any) -> tuple[int, Any]:
        return 200, self.pull_json(self._pull(number))

    def update_pull(self, number: str, body: dict[str, Any], **_: Any) -> tuple[int, Any]:
        pull = self._pull(number)
        for key in ("title", "body", "base"):
            if key in body:
                setattr(pull, key, body[key])
        if "state" in body:
            if body["state"] not in ("open", "closed"):
                raise HTTPError(422, "Validation Failed", [{"field": "state", "code": "invalid"}])
            pull.state = body["state"]
        pull.updated_at = _now()
        return 200, self.pull_json(pull)

    def _pull(self, number: str) -> Pull:
        for pull in self.repo.pulls:
            if str(pull.number) == number:
                return pull
        raise HTTPError(404, "Not Found")


@dataclass
class _WithHeaders:
    body: Any
    headers: dict[str, str]


_REPO = r"/repos/(?P<owner>[^/]+)/(?P<name>[^/]+)"
_Endpoint = Callable[..., tuple[int, Any]]
_ENDPOINTS: list[tuple[str, str, _Endpoint]] = [
    ("GET", "", _Api.get_repo),
    ("GET", r"/git/ref/(?P<ref>.+)", _Api.get_ref),
    ("GET", r"/git/refs/(?P<ref>.+)", _Api.get_ref),
    ("POST", r"/git/refs", _Api.create_ref),
    ("PATCH", r"/git/refs/(?P<ref>.+)", _Api.update_ref),
    ("DELETE", r"/git/refs/(?P<ref>.+)", _Api.delete_ref),
    ("POST", r"/git/blobs", _Api.create_blob),
    ("GET", r"/git/blobs/(?P<sha>[0-9a-f]{40})", _Api.get_blob),
    ("POST", r"/git/trees", _Api.create_tree),
    ("GET", r"/git/trees/(?P<sha>[^/]+)", _Api.get_tree),
    ("POST", r"/git/commits", _Api.create_commit),
    ("GET", r"/git/commits/(?P<sha>[0-9a-f]{40})", _Api.get_commit),
    ("GET", r"/compare/(?P<basehead>.+)", _Api.compare),
    ("GET", r"/pulls", _Api.list_pulls),
    ("POST", r"/pulls", _Api.create_pull),
    ("GET", r"/pulls/(?P<number>\d+)", _Api.get_pull),
    ("PATCH", r"/pulls/(?P<number>\d+)", _Api.update_pull),
]
_ROUTES: Routes[_Endpoint] = Routes(_ENDPOINTS, prefix=_REPO)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake: FakeGitHub

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _serve(self) -> None:
        if self.fake.lfs.serve(self):
            return
        split = urlsplit(self.path)
        query = {key: values[-1] for key, values in parse_qs(split.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        headers: dict[str, str] = {}
        if split.path.endswith("/git/blobs") and length > self.fake.max_blob_request_bytes:
            with self.fake._lock:
                self.fake.requests.append((self.command, split.path))
            self.close_connection = True  # the body stays unread, as a proxy that refuses it early would
            self._send(413, {"message": "Sorry, your request was too large.", "documentation_url": _DOCS}, {})
            return
        raw = self.rfile.read(length) if length else b""
        try:
            try:
                body = json.loads(raw) if raw else {}
            except ValueError:
                raise HTTPError(400, "Problems parsing JSON") from None
            status, payload = self.fake.handle(self.command, split.path, query, body, _token(self.headers))
            if isinstance(payload, _WithHeaders):
                payload, headers = payload.body, payload.headers
        except HTTPError as error:
            status = error.status
            payload = {"message": error.message, "documentation_url": _DOCS, "status": str(status)}
            if error.errors:
                payload["errors"] = error.errors
        except Exception as error:  # a bug in the fake: answer 500 and keep it for the test to see
            import traceback

            self.fake.errors.append(traceback.format_exc())
            status, payload = 500, {"message": f"fake server error: {error!r}"}
        self._send(status, payload, headers)

    def _send(self, status: int, payload: Any, headers: dict[str, str]) -> None:
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-RateLimit-Limit", "5000")
        self.send_header("X-RateLimit-Remaining", "4999")
        self.send_header("X-RateLimit-Reset", str(int(time.time()) + 3600))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _serve


def _token(headers: Any) -> str | None:
    value = headers.get("Authorization") or ""
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() in ("token", "bearer") and token.strip() else None


def _require(body: Any, key: str, kind: type) -> Any:
    if not isinstance(body, dict) or not isinstance(body.get(key), kind):
        raise HTTPError(422, f"Invalid request: {key!r} is missing or not a {kind.__name__}")
    return body[key]


def _git_sha(kind: str, data: bytes) -> str:
    return hashlib.sha1(f"{kind} {len(data)}\0".encode() + data, usedforsecurity=False).hexdigest()


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
