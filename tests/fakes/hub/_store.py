"""In-memory state of the fake Hub: users, tokens, repos, commits, refs, LFS objects, discussions."""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import itertools
import json
import re
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

RepoType = Literal["model", "dataset", "space"]
TokenRole = Literal["read", "write"]
DiscussionStatus = Literal["open", "closed", "merged", "draft"]

URL_PREFIXES: dict[str, str] = {"model": "", "dataset": "datasets/", "space": "spaces/"}
LFS_SIZE_THRESHOLD = 10 * 1000 * 1000
DEFAULT_GITATTRIBUTES = b"".join(
    f"{pattern} filter=lfs diff=lfs merge=lfs -text\n".encode()
    for pattern in (
        "*.7z", "*.arrow", "*.bin", "*.bz2", "*.ckpt", "*.ftz", "*.gz", "*.h5", "*.joblib",
        "*.lfs.*", "*.mlmodel", "*.model", "*.msgpack", "*.npy", "*.npz", "*.onnx", "*.ot",
        "*.parquet", "*.pb", "*.pickle", "*.pkl", "*.pt", "*.pth", "*.rar", "*.safetensors",
        "saved_model/**/*", "*.tar.*", "*.tar", "*.tflite", "*.tgz", "*.wasm", "*.xz", "*.zip",
        "*.zst", "*tfevents*",
    )
)  # fmt: skip


class HubError(Exception):
    """An error the fake answers with: HTTP status, Hub error code header and message."""

    def __init__(self, status: int, message: str, code: str | None = None, commit: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.commit = commit


def now_iso() -> str:
    """Current UTC time in the Hub's `%Y-%m-%dT%H:%M:%S.%fZ` format."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def git_blob_oid(data: bytes) -> str:
    """Git blob sha1 of `data`."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _object_id(*parts: object) -> str:
    return hashlib.sha1(repr(parts).encode()).hexdigest()[:24]


@dataclass(frozen=True)
class FakeUser:
    """A Hub account and the organisations it belongs to."""

    name: str
    orgs: tuple[str, ...] = ()

    @property
    def namespaces(self) -> set[str]:
        """Namespaces this user may write to."""
        return {self.name, *self.orgs}


@dataclass(frozen=True)
class FakeToken:
    """An access token: its owner and role."""

    user: str
    role: TokenRole = "write"


@dataclass(frozen=True)
class Blob:
    """File content; `lfs` tells whether it is stored as an LFS pointer."""

    data: bytes
    lfs: bool = False

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def pointer(self) -> bytes:
        spec = "version https://git-lfs.github.com/spec/v1"
        return f"{spec}\noid sha256:{self.sha256}\nsize {len(self.data)}\n".encode()

    @property
    def oid(self) -> str:
        """Git oid (of the pointer file for LFS blobs), as the Hub's tree API reports it."""
        return git_blob_oid(self.pointer if self.lfs else self.data)

    @property
    def etag(self) -> str:
        return self.sha256 if self.lfs else self.oid


@dataclass
class Commit:
    """A commit: full file snapshot plus metadata."""

    oid: str
    parents: list[str]
    files: dict[str, Blob]
    title: str
    message: str
    author: str
    date: str


@dataclass
class Discussion:
    """A discussion or pull request with its event timeline."""

    num: int
    title: str
    author: str
    is_pull_request: bool
    status: DiscussionStatus
    created_at: str
    events: list[dict[str, Any]] = field(default_factory=list)
    base: str = "refs/heads/main"
    fork_point: str | None = None
    merge_commit_oid: str | None = None

    @property
    def git_ref(self) -> str | None:
        return f"refs/pr/{self.num}" if self.is_pull_request else None


@dataclass
class Repo:
    """A repository: commits by oid, refs (`refs/heads/*`, `refs/tags/*`, `refs/pr/*`), discussions."""

    repo_id: str
    repo_type: RepoType
    private: bool
    created_at: str
    commits: dict[str, Commit] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)
    discussions: dict[int, Discussion] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return URL_PREFIXES[self.repo_type] + self.repo_id

    @property
    def namespace(self) -> str:
        return self.repo_id.split("/")[0]

    def resolve(self, revision: str) -> str:
        """Commit oid of a branch, tag, `refs/...` name or (prefix of a) commit sha."""
        for ref in (revision, f"refs/heads/{revision}", f"refs/tags/{revision}"):
            if ref in self.refs:
                return self.refs[ref]
        if re.fullmatch(r"[0-9a-f]{7,40}", revision):
            matches = [oid for oid in self.commits if oid.startswith(revision)]
            if len(matches) == 1:
                return matches[0]
        raise HubError(404, f"Invalid rev id: {revision}", code="RevisionNotFound")

    def branch_ref(self, revision: str) -> str:
        """Full ref name of a branch or PR ref that can receive commits."""
        if revision.startswith("refs/") and revision in self.refs:
            return revision
        if f"refs/heads/{revision}" in self.refs:
            return f"refs/heads/{revision}"
        raise HubError(404, f"Invalid rev id: {revision}", code="RevisionNotFound")


@dataclass
class Webhook:
    """A webhook as `/api/settings/webhooks` stores it."""

    id: str
    owner: str
    url: str
    watched: list[dict[str, str]]
    domains: list[str]
    secret: str | None
    disabled: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "url": self.url,
            "watched": self.watched,
            "domains": self.domains,
            "secret": self.secret,
            "disabled": self.disabled,
        }

    def watches(self, repo: Repo, domain: str) -> bool:
        if self.disabled or domain not in self.domains:
            return False
        for item in self.watched:
            if item["type"] == repo.repo_type and item["name"] == repo.repo_id:
                return True
            if item["type"] in ("user", "org") and item["name"] == repo.namespace:
                return True
        return False


def lfs_patterns(gitattributes: bytes) -> list[str]:
    """Patterns marked `filter=lfs` in a .gitattributes file."""
    patterns = []
    for line in gitattributes.decode(errors="replace").splitlines():
        parts = line.split()
        if len(parts) >= 2 and "filter=lfs" in parts[1:]:
            patterns.append(parts[0])
    return patterns


def matches_lfs(path: str, patterns: list[str]) -> bool:
    """Whether `path` matches a .gitattributes LFS pattern (basename patterns match at any depth)."""
    name = path.rsplit("/", 1)[-1]
    for pattern in patterns:
        pat = pattern.replace("**/", "*")
        if fnmatch.fnmatchcase(path, pat) or ("/" not in pattern and fnmatch.fnmatchcase(name, pat)):
            return True
    return False


class HubStore:
    """All state of one fake Hub, guarded by one re-entrant lock."""

    def __init__(
        self,
        users: Mapping[str, FakeUser],
        tokens: Mapping[str, FakeToken],
    ) -> None:
        self.lock = threading.RLock()
        self.users = dict(users)
        self.tokens = dict(tokens)
        self.repos: dict[str, Repo] = {}
        self.lfs_objects: dict[str, bytes] = {}
        self.webhooks: dict[str, Webhook] = {}
        self._counter = itertools.count(1)

    # ---- auth -------------------------------------------------------------------------------
    def user_for(self, token: str | None) -> tuple[FakeUser | None, FakeToken | None]:
        """Owner and token for a bearer token; raises 401 on an unknown token."""
        if token is None:
            return None, None
        info = self.tokens.get(token)
        if info is None:
            raise HubError(401, "Invalid credentials in Authorization header")
        return self.users.get(info.user, FakeUser(info.user)), info

    # ---- repos ------------------------------------------------------------------------------
    def create_repo(
        self, repo_id: str, repo_type: RepoType = "model", *, private: bool = False, author: str | None = None
    ) -> Repo:
        """Create a repo with the Hub's initial commit (a default `.gitattributes`)."""
        with self.lock:
            key = URL_PREFIXES[repo_type] + repo_id
            if key in self.repos:
                raise HubError(409, "You already created this model repo")
            repo = Repo(repo_id=repo_id, repo_type=repo_type, private=private, created_at=now_iso())
            self.repos[key] = repo
            self._new_commit(
                repo,
                parent=None,
                files={".gitattributes": Blob(DEFAULT_GITATTRIBUTES)},
                title="initial commit",
                message="",
                author=author or repo.namespace,
                ref="refs/heads/main",
            )
            return repo

    def get_repo(self, repo_type: str, repo_id: str, user: FakeUser | None) -> Repo:
        """Find a repo visible to `user`; 401/404 `RepoNotFound` otherwise, as the Hub answers."""
        repo = self.repos.get(URL_PREFIXES.get(repo_type, "") + repo_id)
        visible = repo is not None and (not repo.private or (user is not None and repo.namespace in user.namespaces))
        if repo is None or not visible:
            status = 401 if user is None else 404
            raise HubError(status, "Repository not found", code="RepoNotFound")
        return repo

    def _new_commit(
        self,
        repo: Repo,
        *,
        parent: str | None,
        files: dict[str, Blob],
        title: str,
        message: str,
        author: str,
        ref: str | None,
    ) -> Commit:
        oid = hashlib.sha1(f"{repo.key}\0{parent}\0{title}\0{next(self._counter)}".encode()).hexdigest()
        commit = Commit(oid, [parent] if parent else [], files, title, message, author, now_iso())
        repo.commits[oid] = commit
        if ref is not None:
            repo.refs[ref] = oid
        return commit

    def lfs_mode(self, repo: Repo, revision: str, path: str, size: int, sample: bytes) -> bool:
        """Whether the Hub would store this file with LFS: size, .gitattributes, or binary sample."""
        if size >= LFS_SIZE_THRESHOLD or b"\0" in sample:
            return True
        try:
            files = repo.commits[repo.resolve(revision)].files
        except HubError:
            files = {}
        attrs = files.get(".gitattributes")
        return attrs is not None and matches_lfs(path, lfs_patterns(attrs.data))

    def apply_commit(
        self,
        repo: Repo,
        *,
        revision: str,
        operations: list[tuple[str, dict[str, Any]]],
        summary: str,
        description: str,
        parent_commit: str | None,
        author: str,
        create_pr: bool,
    ) -> tuple[Commit, Discussion | None, str, str | None]:
        """Apply NDJSON commit operations; returns (commit, new PR, updated ref, old sha of that ref)."""
        with self.lock:
            ref = repo.branch_ref(revision)
            head = repo.refs[ref]
            if create_pr:
                if ref.startswith("refs/pr/"):
                    raise HubError(400, "Cannot create a PR from a PR ref")
                base_oid = parent_commit or head
                if base_oid not in repo.commits:
                    raise HubError(400, f"Invalid parent commit: {parent_commit}")
            else:
                if parent_commit is not None and parent_commit != head:
                    raise HubError(
                        412,
                        "A commit has happened since. Please refresh and try again.",
                    )
                base_oid = head
            files = dict(repo.commits[base_oid].files)
            for key, value in operations:
                self._apply_operation(files, key, value, head)
            pr: Discussion | None = None
            if create_pr:
                pr = self._new_discussion(repo, summary, description, author, is_pr=True, base=ref)
                pr.fork_point = base_oid
                ref = f"refs/pr/{pr.num}"
            old = repo.refs.get(ref)
            commit = self._new_commit(
                repo, parent=base_oid, files=files, title=summary, message=description, author=author, ref=ref
            )
            if ref.startswith("refs/pr/"):
                discussion = repo.discussions[int(ref.rsplit("/", 1)[1])]
                discussion.events.append(self._event("commit", author, {"subject": summary, "oid": commit.oid}))
            return commit, pr, ref, old

    def _apply_operation(self, files: dict[str, Blob], key: str, value: dict[str, Any], head: str) -> None:
        path = str(value.get("path", "")).strip("/")
        if key == "file":
            content = value.get("content", "")
            data = base64.b64decode(content) if value.get("encoding") == "base64" else str(content).encode()
            files[path] = Blob(data)
        elif key == "lfsFile":
            oid = value.get("oid", "")
            if oid not in self.lfs_objects:
                raise HubError(
                    422,
                    "Your push was rejected because an LFS pointer pointed to a file that does not exist. "
                    f"For instance: {path}",
                )
            files[path] = Blob(self.lfs_objects[oid], lfs=True)
        elif key == "deletedFile":
            if path not in files:
                raise HubError(404, f"A file with this name doesn't exist: {path}", code="EntryNotFound")
            del files[path]
        elif key == "deletedFolder":
            doomed = [p for p in files if p.startswith(path + "/")]
            if not doomed:
                raise HubError(404, f"A folder with this name doesn't exist: {path}", code="EntryNotFound")
            for p in doomed:
                del files[p]
        else:
            raise HubError(400, f"Unknown commit operation: {key}")

    # ---- discussions ------------------------------------------------------------------------
    def _event(self, kind: str, author: str, data: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": _object_id(kind, author, next(self._counter)),
            "type": kind,
            "createdAt": now_iso(),
            "author": {"name": author, "type": "user", "isOwner": False},
            "data": data,
        }

    def comment_event(self, author: str, text: str) -> dict[str, Any]:
        """A `comment` event in the shape the Hub returns."""
        now = now_iso()
        return self._event(
            "comment",
            author,
            {
                "edited": False,
                "hidden": False,
                "latest": {
                    "raw": text,
                    "html": f"<p>{text}</p>",
                    "updatedAt": now,
                    "author": {"name": author},
                },
                "numEdits": 0,
                "editors": [author],
                "reactions": [],
            },
        )

    def _new_discussion(
        self, repo: Repo, title: str, description: str, author: str, *, is_pr: bool, base: str
    ) -> Discussion:
        num = max(repo.discussions, default=0) + 1
        discussion = Discussion(
            num=num,
            title=title,
            author=author,
            is_pull_request=is_pr,
            status="open",
            created_at=now_iso(),
            base=base,
        )
        discussion.events.append(self.comment_event(author, description))
        repo.discussions[num] = discussion
        return discussion

    def create_discussion(self, repo: Repo, title: str, description: str, author: str, is_pr: bool) -> Discussion:
        """Open a discussion, or a draft PR whose ref starts at the head of main."""
        with self.lock:
            discussion = self._new_discussion(repo, title, description, author, is_pr=is_pr, base="refs/heads/main")
            if is_pr:
                discussion.status = "draft"
                discussion.fork_point = repo.refs["refs/heads/main"]
                repo.refs[f"refs/pr/{discussion.num}"] = discussion.fork_point
            return discussion

    def pr_changes(self, repo: Repo, pr: Discussion) -> dict[str, Blob | None]:
        """Files the PR changed relative to its fork point (None = deleted)."""
        head = repo.commits[repo.refs[f"refs/pr/{pr.num}"]].files
        fork = repo.commits[pr.fork_point].files if pr.fork_point else {}
        changes: dict[str, Blob | None] = {p: b for p, b in head.items() if fork.get(p) != b}
        changes.update({p: None for p in fork if p not in head})
        return changes

    def conflicting_files(self, repo: Repo, pr: Discussion) -> list[str]:
        """Paths changed both by the PR and on its base branch since the fork point, differently."""
        if not pr.is_pull_request or pr.status in ("merged", "closed") or pr.fork_point is None:
            return []
        fork = repo.commits[pr.fork_point].files
        base = repo.commits[repo.refs[pr.base]].files
        conflicts = []
        for path, blob in self.pr_changes(repo, pr).items():
            if base.get(path) != fork.get(path) and base.get(path) != blob:
                conflicts.append(path)
        return sorted(conflicts)

    def merge(self, repo: Repo, pr: Discussion, author: str, comment: str | None) -> Commit:
        """Merge a PR into its base branch with a merge commit."""
        with self.lock:
            if not pr.is_pull_request or pr.status not in ("open", "draft"):
                raise HubError(400, "This pull request cannot be merged")
            if conflicts := self.conflicting_files(repo, pr):
                raise HubError(409, f"Merge conflict in {', '.join(conflicts)}")
            files = dict(repo.commits[repo.refs[pr.base]].files)
            for path, blob in self.pr_changes(repo, pr).items():
                if blob is None:
                    files.pop(path, None)
                else:
                    files[path] = blob
            commit = self._new_commit(
                repo,
                parent=repo.refs[pr.base],
                files=files,
                title=f"Merge refs/pr/{pr.num}: {pr.title}",
                message=comment or "",
                author=author,
                ref=pr.base,
            )
            commit.parents.append(repo.refs[f"refs/pr/{pr.num}"])
            pr.status = "merged"
            pr.merge_commit_oid = commit.oid
            if comment:
                pr.events.append(self.comment_event(author, comment))
            pr.events.append(self._event("status-change", author, {"status": "merged"}))
            return commit

    # ---- webhooks ---------------------------------------------------------------------------
    def create_webhook(self, owner: str, body: Mapping[str, Any]) -> Webhook:
        """Register a webhook from the `POST /api/settings/webhooks` body."""
        with self.lock:
            if not body.get("url"):
                raise HubError(400, "Only URL webhooks are supported by the fake Hub")
            hook = Webhook(
                id=_object_id("webhook", owner, next(self._counter)),
                owner=owner,
                url=str(body["url"]),
                watched=[{"type": w["type"], "name": w["name"]} for w in body.get("watched", [])],
                domains=list(body.get("domains") or ["repo", "discussion"]),
                secret=body.get("secret"),
            )
            self.webhooks[hook.id] = hook
            return hook

    def iter_files(self, repo: Repo, oid: str) -> Iterator[tuple[str, Blob]]:
        """Files of a commit, sorted by path."""
        yield from sorted(repo.commits[oid].files.items())

    def config_summary(self, repo: Repo, oid: str) -> dict[str, Any] | None:
        """The `config` subset the Hub extracts from config.json (architectures, model_type)."""
        blob = repo.commits[oid].files.get("config.json")
        if blob is None:
            return None
        try:
            config = json.loads(blob.data)
        except ValueError:
            return None
        if not isinstance(config, dict):
            return None
        return {k: config[k] for k in ("architectures", "model_type") if k in config}
