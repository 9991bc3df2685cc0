"""HTTP layer of the fake Hub: routing, auth, fault injection and the `FakeHub` test handle."""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import json
import re
import socket
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any, cast
from urllib.parse import parse_qs, quote, unquote, urlsplit

from tests.fakes import hub_webhooks
from tests.fakes.routing import LoopbackServer, NoRoute, Routes

from ._store import (
    URL_PREFIXES,
    Blob,
    Discussion,
    FakeToken,
    FakeUser,
    HubError,
    HubStore,
    Repo,
    RepoType,
)

_TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
_REPO = r"(?P<type>models|datasets|spaces)/(?P<repo>[^/]+/[^/]+)"
_GIT_REPO = r"(?:(?P<prefix>datasets|spaces)/)?(?P<repo>[^/]+/[^/]+?)"
_DISCUSSION_PAGE = 50
_DISCUSSION_ACTION = r"/api/" + _REPO + r"/discussions/(?P<num>\d+)/(?P<action>comment|status|title|merge)"


@dataclass
class Response:
    """What a route answers."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, data: Any, status: int = 200, content_type: str = "application/json") -> Response:
        return cls(status, json.dumps(data).encode(), {"Content-Type": content_type})


@dataclass
class Fault:
    """A fault armed by `FakeHub.inject_fault`: answer `status`, sleep `delay`, or drop the connection."""

    pattern: re.Pattern[str]
    method: str | None
    status: int | None
    delay: float
    drop: bool
    remaining: int
    code: str | None = None
    hits: int = 0


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake served (path is raw, still percent-encoded)."""

    method: str
    path: str
    query: str
    status: int
    user: str | None


@dataclass(frozen=True)
class WebhookDelivery:
    """One webhook POST the fake Hub made."""

    webhook_id: str
    url: str
    payload: dict[str, Any]
    status: int | None
    body: str


@dataclass
class _Request:
    method: str
    path: str
    query: dict[str, list[str]]
    body: bytes
    base_url: str
    user: FakeUser | None
    token: FakeToken | None
    params: dict[str, str]
    range: str | None = None

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"{}")
        except ValueError as e:
            raise HubError(400, f"Invalid JSON body: {e}") from e

    def require_write(self, action: str = "perform this action") -> FakeUser:
        """Authenticated user with a write token (401 without token, 403 with a read token)."""
        if self.user is None or self.token is None:
            raise HubError(401, f"You must be authenticated to {action}")
        if self.token.role != "write":
            raise HubError(403, f"You don't have the rights to {action}: this token is read-only")
        return self.user


def _truthy(value: str | None) -> bool:
    return value is not None and value.lower() in ("1", "true", "yes")


class FakeHub:
    """An in-memory Hugging Face Hub served over loopback HTTP for the real `huggingface_hub` client.

    Use as a context manager (or `start()`/`stop()`); `url` is the value for `HF_ENDPOINT`.
    """

    def __init__(
        self,
        users: Mapping[str, FakeUser] | None = None,
        tokens: Mapping[str, FakeToken] | None = None,
        *,
        deliver_webhooks: bool = True,
    ) -> None:
        from . import DEFAULT_TOKENS, DEFAULT_USERS

        self.store = HubStore(users or DEFAULT_USERS, tokens or DEFAULT_TOKENS)
        self.deliver_webhooks = deliver_webhooks
        self.requests: list[RecordedRequest] = []
        self.deliveries: list[WebhookDelivery] = []
        self.server_errors: list[str] = []
        self._faults: list[Fault] = []
        self._deliveries_changed = threading.Condition()
        self._server: LoopbackServer | None = None

    # ---- lifecycle ------------------------------------------------------------------------
    def start(self, host: str = "127.0.0.1", port: int = 0) -> FakeHub:
        """Serve in a daemon thread; `port=0` picks a free port."""
        hub = self

        class _BoundHandler(_Handler):
            fake_hub = hub

        self._server = LoopbackServer(_BoundHandler, "fake-hub", host, port)
        return self

    def stop(self) -> None:
        """Stop serving (requests still hanging in an injected delay are abandoned)."""
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> FakeHub:
        return self.start() if self._server is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL, e.g. `http://127.0.0.1:43127` (use as `HF_ENDPOINT` / `HfApi(endpoint=...)`)."""
        if self._server is None:
            raise RuntimeError("FakeHub is not started")
        return self._server.url

    # ---- inspection / seeding -------------------------------------------------------------
    @property
    def repos(self) -> dict[str, Repo]:
        """Repos keyed by URL form: `user/name` for models, `datasets/user/name`, `spaces/user/name`."""
        return self.store.repos

    def repo(self, repo_id: str, repo_type: RepoType = "model") -> Repo:
        """One repo (KeyError if absent)."""
        return self.store.repos[URL_PREFIXES[repo_type] + repo_id]

    def create_repo(self, repo_id: str, *, private: bool = False, repo_type: RepoType = "model") -> Repo:
        """Create a repo directly (with the Hub's initial `.gitattributes` commit)."""
        return self.store.create_repo(repo_id, repo_type, private=private)

    def push(
        self,
        repo_id: str,
        files: Mapping[str, bytes | None],
        *,
        message: str = "Push from test",
        revision: str = "main",
        author: str | None = None,
        repo_type: RepoType = "model",
    ) -> str:
        """Commit `files` (None deletes a path) to a branch like a git push; fires webhooks; returns sha."""
        repo = self.repo(repo_id, repo_type)
        ops: list[tuple[str, dict[str, Any]]] = []
        for path, data in files.items():
            if data is None:
                ops.append(("deletedFile", {"path": path}))
            else:
                lfs = self.store.lfs_mode(repo, revision, path, len(data), data[:512])
                if lfs:
                    self.store.lfs_objects[hashlib.sha256(data).hexdigest()] = data
                    ops.append(("lfsFile", {"path": path, "oid": hashlib.sha256(data).hexdigest()}))
                else:
                    content = base64.b64encode(data).decode()
                    ops.append(("file", {"path": path, "content": content, "encoding": "base64"}))
        commit, _, ref, old = self.store.apply_commit(
            repo,
            revision=revision,
            operations=ops,
            summary=message,
            description="",
            parent_commit=None,
            author=author or repo.namespace,
            create_pr=False,
        )
        self._fire_push(repo, ref, old, commit.oid, self.url if self._server else "https://huggingface.co")
        return commit.oid

    def head(self, repo_id: str, revision: str = "main", repo_type: RepoType = "model") -> str:
        """Commit sha a revision (branch, tag, `refs/pr/N`, sha) points to."""
        return self.repo(repo_id, repo_type).resolve(revision)

    def files_at(self, repo_id: str, revision: str = "main", repo_type: RepoType = "model") -> dict[str, bytes]:
        """All files (content) of a repo at a revision."""
        repo = self.repo(repo_id, repo_type)
        return {path: blob.data for path, blob in repo.commits[repo.resolve(revision)].files.items()}

    def lfs_files_at(self, repo_id: str, revision: str = "main", repo_type: RepoType = "model") -> set[str]:
        """Paths stored through LFS at a revision."""
        repo = self.repo(repo_id, repo_type)
        return {p for p, b in repo.commits[repo.resolve(revision)].files.items() if b.lfs}

    def discussions(self, repo_id: str, repo_type: RepoType = "model") -> list[Discussion]:
        """All discussions and PRs, by number."""
        return [d for _, d in sorted(self.repo(repo_id, repo_type).discussions.items())]

    def pull_requests(self, repo_id: str, repo_type: RepoType = "model") -> list[Discussion]:
        """Pull requests only, by number (`.num`, `.status`, `.title`, `.author`, `.events`, `.git_ref`)."""
        return [d for d in self.discussions(repo_id, repo_type) if d.is_pull_request]

    def pr_description(self, repo_id: str, num: int, repo_type: RepoType = "model") -> str:
        """Text of a discussion's opening comment."""
        return str(self.repo(repo_id, repo_type).discussions[num].events[0]["data"]["latest"]["raw"])

    # ---- faults ---------------------------------------------------------------------------
    def inject_fault(
        self,
        path_regex: str,
        *,
        status: int | None = None,
        delay: float = 0.0,
        drop: bool = False,
        times: int = 1,
        method: str | None = None,
        code: str | None = None,
    ) -> Fault:
        """Make the next `times` requests whose raw path matches `path_regex` (re.search) misbehave.

        `delay` sleeps first (a hang), then `drop` closes the socket without answering, else `status`
        is answered with a Hub-style JSON error (`code` sets `X-Error-Code`, e.g. "RepoNotFound",
        "EntryNotFound"); with only `delay`, the request is then served normally.
        """
        fault = Fault(re.compile(path_regex), method.upper() if method else None, status, delay, drop, times, code)
        with self.store.lock:
            self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        """Disarm every pending fault."""
        with self.store.lock:
            self._faults.clear()

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self.store.lock:
            for fault in self._faults:
                if fault.remaining > 0 and (fault.method in (None, method)) and fault.pattern.search(path):
                    fault.remaining -= 1
                    fault.hits += 1
                    return fault
        return None

    # ---- webhooks -------------------------------------------------------------------------
    def wait_for_deliveries(self, count: int, timeout: float = 10.0) -> list[WebhookDelivery]:
        """Block until at least `count` webhook deliveries were made; returns them all."""
        with self._deliveries_changed:
            self._deliveries_changed.wait_for(lambda: len(self.deliveries) >= count, timeout=timeout)
            return list(self.deliveries)

    def _deliver(self, repo: Repo, domain: str, build: Callable[[str], dict[str, Any]]) -> None:
        if not self.deliver_webhooks:
            return
        hooks = [h for h in self.store.webhooks.values() if h.watches(repo, domain)]
        for hook in hooks:
            payload = build(hook.id)

            def send(
                hook_id: str = hook.id,
                url: str = hook.url,
                secret: str | None = hook.secret,
                payload: dict[str, Any] = payload,
            ) -> None:
                result = hub_webhooks.send_webhook(url, payload, secret=secret)
                with self._deliveries_changed:
                    self.deliveries.append(WebhookDelivery(hook_id, url, payload, result.status, result.body))
                    self._deliveries_changed.notify_all()

            threading.Thread(target=send, name="fake-hub-webhook", daemon=True).start()

    def _fire_push(self, repo: Repo, ref: str, old: str | None, new: str, base: str) -> None:
        self._deliver(
            repo,
            "repo",
            lambda hook_id: hub_webhooks.repo_update_payload(
                repo.repo_id,
                new_sha=new,
                old_sha=old,
                ref=ref,
                head_sha=repo.refs["refs/heads/main"],
                repo_type=repo.repo_type,
                private=repo.private,
                webhook_id=hook_id,
                endpoint=base,
            ),
        )

    def _fire_discussion(self, repo: Repo, d: Discussion, action: str, base: str, comment: str | None = None) -> None:
        self._deliver(
            repo,
            "discussion",
            lambda hook_id: hub_webhooks.discussion_payload(
                repo.repo_id,
                num=d.num,
                title=d.title,
                author=d.author,
                is_pull_request=d.is_pull_request,
                status=d.status,
                action=cast(Any, action),
                head_sha=repo.refs["refs/heads/main"],
                base=d.base,
                comment=comment,
                repo_type=repo.repo_type,
                private=repo.private,
                webhook_id=hook_id,
                endpoint=base,
            ),
        )

    # ---- routes ---------------------------------------------------------------------------
    def _repo(self, req: _Request) -> Repo:
        return self.store.get_repo(_TYPES[req.params["type"]], req.params["repo"], req.user)

    def _git_repo(self, req: _Request) -> Repo:
        prefix = req.params.get("prefix")
        repo_type = {"datasets": "dataset", "spaces": "space"}.get(prefix or "", "model")
        return self.store.get_repo(repo_type, req.params["repo"], req.user)

    def _check_repo_write(self, repo: Repo, user: FakeUser) -> None:
        if repo.namespace not in user.namespaces:
            raise HubError(403, f"You don't have the rights to write to {repo.repo_id}")

    def _on_validate_yaml(self, req: _Request) -> Response:
        content = str(req.json().get("content", ""))
        if not content.startswith("---"):
            return Response.json({"errors": [], "warnings": []})
        front = content.split("---", 2)[1] if content.count("---") >= 2 else ""
        try:
            import yaml

            metadata = yaml.safe_load(front)
        except ImportError:
            return Response.json({"errors": [], "warnings": []})
        except yaml.YAMLError as e:
            error = {"message": f"Invalid YAML metadata: {e}"}
            return Response.json({"error": error["message"], "errors": [error], "warnings": []}, 400)
        if metadata is not None and not isinstance(metadata, dict):
            error = {"message": "YAML metadata must be a mapping"}
            return Response.json({"error": error["message"], "errors": [error], "warnings": []}, 400)
        return Response.json({"errors": [], "warnings": []})

    def _on_create_repo(self, req: _Request) -> Response:
        body = req.json()
        repo_type = body.get("type") or "model"
        if repo_type not in URL_PREFIXES:
            raise HubError(400, f"Invalid repo type: {repo_type}")
        user = req.require_write(f"create a {repo_type} repo")
        namespace = body.get("organization") or user.name
        repo_id = f"{namespace}/{body.get('name')}"
        if namespace not in user.namespaces:
            raise HubError(403, f"You don't have the rights to create a {repo_type} under the namespace {namespace}")
        private = body.get("visibility") == "private" or bool(body.get("private"))
        url = f"{req.base_url}/{URL_PREFIXES[repo_type]}{repo_id}"
        try:
            self.store.create_repo(repo_id, cast(RepoType, repo_type), private=private, author=user.name)
        except HubError as e:
            if e.status == 409:
                return Response.json({"error": e.message, "url": url}, status=409)
            raise
        return Response.json({"url": url, "name": repo_id, "id": hashlib.sha1(url.encode()).hexdigest()[:24]})

    def _on_repo_info(self, req: _Request) -> Response:
        repo = self._repo(req)
        with self.store.lock:
            oid = repo.resolve(unquote(req.params.get("rev") or "main"))
            commit = repo.commits[oid]
            blobs = _truthy(req.arg("blobs"))
            siblings = []
            for path, blob in sorted(commit.files.items()):
                sibling: dict[str, Any] = {"rfilename": path}
                if blobs:
                    sibling.update(size=len(blob.data), blobId=blob.oid)
                    if blob.lfs:
                        sibling["lfs"] = {
                            "size": len(blob.data),
                            "sha256": blob.sha256,
                            "pointerSize": len(blob.pointer),
                        }
                siblings.append(sibling)
            info: dict[str, Any] = {
                "_id": hashlib.sha1(repo.key.encode()).hexdigest()[:24],
                "id": repo.repo_id,
                "author": repo.namespace,
                "sha": oid,
                "lastModified": commit.date,
                "createdAt": repo.created_at,
                "private": repo.private,
                "gated": False,
                "disabled": False,
                "downloads": 0,
                "likes": 0,
                "tags": [],
                "siblings": siblings,
                "usedStorage": sum(len(b.data) for b in commit.files.values()),
            }
            if repo.repo_type == "model":
                info["modelId"] = repo.repo_id
                if (config := self.store.config_summary(repo, oid)) is not None:
                    info["config"] = config
        return Response.json(info)

    def _entry(self, path: str, blob: Blob | None, oid: str) -> dict[str, Any]:
        if blob is None:
            tree_oid = hashlib.sha1(f"tree\0{oid}\0{path}".encode()).hexdigest()
            return {"type": "directory", "oid": tree_oid, "size": 0, "path": path}
        entry: dict[str, Any] = {"type": "file", "oid": blob.oid, "size": len(blob.data), "path": path}
        if blob.lfs:
            entry["lfs"] = {"oid": blob.sha256, "size": len(blob.data), "pointerSize": len(blob.pointer)}
        return entry

    def _on_tree(self, req: _Request) -> Response:
        repo = self._repo(req)
        path = unquote(req.params.get("path") or "").strip("/")
        recursive = _truthy(req.arg("recursive"))
        with self.store.lock:
            oid = repo.resolve(unquote(req.params["rev"]))
            files = repo.commits[oid].files
        prefix = f"{path}/" if path else ""
        dirs: set[str] = set()
        entries: list[dict[str, Any]] = []
        for file_path, blob in sorted(files.items()):
            if not file_path.startswith(prefix):
                continue
            parts = file_path[len(prefix) :].split("/")
            depth = len(parts) - 1 if recursive else min(1, len(parts) - 1)
            dirs.update(prefix + "/".join(parts[: i + 1]) for i in range(depth))
            if recursive or len(parts) == 1:
                entries.append(self._entry(file_path, blob, oid))
        if path and not entries and not dirs:
            raise HubError(404, f"Entry not found: {path}", code="EntryNotFound", commit=oid)
        entries = [self._entry(d, None, oid) for d in sorted(dirs)] + entries
        return Response.json(entries)

    def _on_commits(self, req: _Request) -> Response:
        repo = self._repo(req)
        out = []
        with self.store.lock:
            oid: str | None = repo.resolve(unquote(req.params["rev"]))
            while oid is not None:
                commit = repo.commits[oid]
                out.append(
                    {
                        "id": commit.oid,
                        "title": commit.title,
                        "message": commit.message,
                        "authors": [{"user": commit.author, "avatar": ""}],
                        "date": commit.date,
                    }
                )
                oid = commit.parents[0] if commit.parents else None
        return Response.json(out)

    def _check_commit_rights(self, repo: Repo, req: _Request, ref: str, create_pr: bool) -> FakeUser:
        user = req.require_write(f"commit to {repo.repo_id}")
        if create_pr:
            return user
        if ref.startswith("refs/pr/"):
            pr = repo.discussions.get(int(ref.rsplit("/", 1)[1]))
            if pr is not None and pr.author == user.name:
                return user
        self._check_repo_write(repo, user)
        return user

    def _on_preupload(self, req: _Request) -> Response:
        repo = self._repo(req)
        revision = unquote(req.params["rev"])
        create_pr = _truthy(req.arg("create_pr"))
        with self.store.lock:
            ref = repo.branch_ref(revision)
            self._check_commit_rights(repo, req, ref, create_pr)
            body = req.json()
            head = repo.refs[ref]
            files = repo.commits[head].files
            ignore = [line.strip() for line in str(body.get("gitIgnore") or "").splitlines() if line.strip()]
            out = []
            for item in body.get("files", []):
                path = str(item["path"])
                sample = base64.b64decode(item.get("sample", ""))
                lfs = self.store.lfs_mode(repo, revision, path, int(item.get("size", 0)), sample)
                existing = files.get(path)
                remote_oid = None if existing is None else (existing.sha256 if existing.lfs else existing.oid)
                out.append(
                    {
                        "path": path,
                        "uploadMode": "lfs" if lfs else "regular",
                        "shouldIgnore": any(fnmatch.fnmatchcase(path, pat) for pat in ignore),
                        "oid": remote_oid,
                    }
                )
        return Response.json({"files": out, "commitOid": head})

    def _on_commit(self, req: _Request) -> Response:
        repo = self._repo(req)
        revision = unquote(req.params["rev"])
        create_pr = _truthy(req.arg("create_pr"))
        lines = [json.loads(line) for line in req.body.splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            raise HubError(400, "The first line of the commit payload must be the header")
        header = lines[0]["value"]
        with self.store.lock:
            user = self._check_commit_rights(repo, req, repo.branch_ref(revision), create_pr)
            commit, pr, ref, old = self.store.apply_commit(
                repo,
                revision=revision,
                operations=[(line["key"], line["value"]) for line in lines[1:]],
                summary=str(header.get("summary") or ""),
                description=str(header.get("description") or ""),
                parent_commit=header.get("parentCommit"),
                author=user.name,
                create_pr=create_pr,
            )
        web = f"{req.base_url}/{repo.key}"
        pr_num = pr.num if pr else (int(ref.rsplit("/", 1)[1]) if ref.startswith("refs/pr/") else None)
        self._fire_push(repo, ref, old, commit.oid, req.base_url)
        if pr is not None:
            self._fire_discussion(repo, pr, "create", req.base_url)
        return Response.json(
            {
                "success": True,
                "commitOid": commit.oid,
                "commitUrl": f"{web}/commit/{commit.oid}",
                "hookOutput": "",
                "pullRequestUrl": f"{web}/discussions/{pr_num}" if pr_num is not None else None,
            }
        )

    def _discussion_json(self, repo: Repo, d: Discussion) -> dict[str, Any]:
        return {
            "id": hashlib.sha1(f"{repo.key}#{d.num}".encode()).hexdigest()[:24],
            "num": d.num,
            "title": d.title,
            "status": d.status,
            "author": {"name": d.author, "type": "user"},
            "createdAt": d.created_at,
            "repo": {"name": repo.repo_id, "type": repo.repo_type},
            "isPullRequest": d.is_pull_request,
            "numComments": sum(1 for e in d.events if e["type"] == "comment"),
            "pinned": False,
            "topReactions": [],
        }

    def _on_list_discussions(self, req: _Request) -> Response:
        repo = self._repo(req)
        kind, status, author = req.arg("type", "all"), req.arg("status", "all"), req.arg("author")
        page = int(req.arg("p", "0") or 0)
        with self.store.lock:
            selected = [
                d
                for _, d in sorted(repo.discussions.items(), reverse=True)
                if (kind == "all" or d.is_pull_request == (kind == "pull_request"))
                and (status == "all" or (d.status in ("open", "draft")) == (status == "open"))
                and (author is None or d.author == author)
            ]
            chunk = selected[page * _DISCUSSION_PAGE : (page + 1) * _DISCUSSION_PAGE]
            return Response.json(
                {
                    "discussions": [self._discussion_json(repo, d) for d in chunk],
                    "count": len(selected),
                    "start": page * _DISCUSSION_PAGE,
                    "numClosedDiscussions": sum(1 for d in selected if d.status in ("closed", "merged")),
                }
            )

    def _discussion(self, repo: Repo, req: _Request) -> Discussion:
        d = repo.discussions.get(int(req.params["num"]))
        if d is None:
            raise HubError(404, "Discussion not found")
        return d

    def _on_discussion_details(self, req: _Request) -> Response:
        repo = self._repo(req)
        with self.store.lock:
            d = self._discussion(repo, req)
            data = self._discussion_json(repo, d)
            data["events"] = list(d.events)
            if d.is_pull_request:
                data["changes"] = {"base": d.base, "mergeCommitId": d.merge_commit_oid}
                data["filesWithConflicts"] = self.store.conflicting_files(repo, d)
                if _truthy(req.arg("diff")):
                    changed = self.store.pr_changes(repo, d) if d.fork_point else {}
                    data["diff"] = "".join(
                        f"diff --git a/{p} b/{p}\n{'deleted file' if b is None else 'file'}\n"
                        for p, b in sorted(changed.items())
                    )
        return Response.json(data)

    def _on_create_discussion(self, req: _Request) -> Response:
        repo = self._repo(req)
        user = req.require_write("open a discussion")
        body = req.json()
        d = self.store.create_discussion(
            repo,
            str(body.get("title", "")),
            str(body.get("description", "")),
            user.name,
            bool(body.get("pullRequest")),
        )
        self._fire_discussion(repo, d, "create", req.base_url)
        return Response.json(self._discussion_json(repo, d))

    def _on_discussion_action(self, req: _Request) -> Response:
        repo = self._repo(req)
        user = req.require_write("post on a discussion")
        body = req.json() if req.body else {}
        body = body or {}
        action = req.params["action"]
        with self.store.lock:
            d = self._discussion(repo, req)
            if action == "comment":
                event = self.store.comment_event(user.name, str(body.get("comment", "")))
                d.events.append(event)
                result: dict[str, Any] = {"newMessage": event}
            elif action == "title":
                if d.author != user.name:
                    self._check_repo_write(repo, user)
                event = self.store._event("title-change", user.name, {"from": d.title, "to": body.get("title")})
                d.title = str(body.get("title"))
                d.events.append(event)
                result = {"newTitle": event}
            elif action == "status":
                new_status = body.get("status")
                if new_status not in ("open", "closed"):
                    raise HubError(400, "Invalid status: must be 'open' or 'closed'")
                if d.author != user.name:
                    self._check_repo_write(repo, user)
                if d.status == "merged":
                    raise HubError(400, "Cannot change the status of a merged pull request")
                if body.get("comment"):
                    d.events.append(self.store.comment_event(user.name, str(body["comment"])))
                d.status = new_status
                event = self.store._event("status-change", user.name, {"status": new_status})
                d.events.append(event)
                result = {"newStatus": event}
            else:  # merge
                self._check_repo_write(repo, user)
                commit = self.store.merge(repo, d, user.name, body.get("comment"))
                result = {"newStatus": d.events[-1]}
        if action == "merge":
            self._fire_push(repo, d.base, commit.parents[0], commit.oid, req.base_url)
        self._fire_discussion(repo, d, "update", req.base_url, comment=body.get("comment"))
        return Response.json(result)

    def _on_create_webhook(self, req: _Request) -> Response:
        user = req.require_write("manage webhooks")
        return Response.json({"webhook": self.store.create_webhook(user.name, req.json()).as_json()})

    def _on_lfs_batch(self, req: _Request) -> Response:
        repo = self._git_repo(req)
        req.require_write(f"upload LFS files to {repo.repo_id}")
        body = req.json()
        if body.get("operation") != "upload":
            raise HubError(400, "Only the upload operation is supported")
        objects = []
        for obj in body.get("objects", []):
            oid, size = str(obj["oid"]), int(obj["size"])
            item: dict[str, Any] = {"oid": oid, "size": size, "authenticated": True}
            if oid not in self.store.lfs_objects:
                item["actions"] = {
                    "upload": {
                        "href": f"{req.base_url}/_fake_lfs/upload/{oid}?size={size}",
                        "expires_in": 86400,
                    },
                    "verify": {"href": f"{req.base_url}/_fake_lfs/verify", "expires_in": 86400},
                }
            objects.append(item)
        return Response.json({"transfer": "basic", "objects": objects}, content_type="application/vnd.git-lfs+json")

    def _on_lfs_upload(self, req: _Request) -> Response:
        oid = req.params["oid"]
        if hashlib.sha256(req.body).hexdigest() != oid:
            raise HubError(400, "Uploaded content does not match the announced sha256")
        with self.store.lock:
            self.store.lfs_objects[oid] = req.body
        return Response()

    def _on_lfs_verify(self, req: _Request) -> Response:
        body = req.json()
        data = self.store.lfs_objects.get(str(body.get("oid")))
        if data is None or len(data) != int(body.get("size", -1)):
            raise HubError(404, "Object not found or size mismatch")
        return Response.json({"success": True})

    def _on_resolve(self, req: _Request) -> Response:
        repo = self._git_repo(req)
        path = unquote(req.params["path"])
        with self.store.lock:
            oid = repo.resolve(unquote(req.params["rev"]))
            blob = repo.commits[oid].files.get(path)
        if blob is None:
            raise HubError(404, "Entry not found", code="EntryNotFound", commit=oid)
        name = path.rsplit("/", 1)[-1]
        headers = {
            "X-Repo-Commit": oid,
            "ETag": f'"{blob.etag}"',
            "Accept-Ranges": "bytes",
            "Content-Type": "application/octet-stream",
            "Content-Disposition": f"inline; filename*=UTF-8''{quote(name)}; filename=\"{name}\";",
        }
        if blob.lfs:
            headers["X-Linked-Etag"] = f'"{blob.sha256}"'
            headers["X-Linked-Size"] = str(len(blob.data))
        data = blob.data
        status = 200
        if (rng := req.range) is not None:
            match = re.fullmatch(r"bytes=(\d*)-(\d*)", rng.strip())
            size = len(data)
            if match is None or (not match.group(1) and not match.group(2)):
                raise HubError(416, "Invalid range")
            if match.group(1):
                start = int(match.group(1))
                end = min(int(match.group(2)), size - 1) if match.group(2) else size - 1
            else:
                start, end = max(0, size - int(match.group(2))), size - 1
            if start >= size and size > 0:
                return Response(416, b"", {**headers, "Content-Range": f"bytes */{size}"})
            data = data[start : end + 1]
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
            status = 206
        return Response(status, data, headers)


_Endpoint = Callable[["FakeHub", _Request], Response]
ROUTES: Routes[_Endpoint] = Routes(
    [
        ("POST", r"/api/repos/create", FakeHub._on_create_repo),
        ("POST", r"/api/validate-yaml", FakeHub._on_validate_yaml),  # huggingface_hub, on a README.md commit
        ("GET", rf"/api/{_REPO}", FakeHub._on_repo_info),
        ("GET", rf"/api/{_REPO}/revision/(?P<rev>.+)", FakeHub._on_repo_info),
        ("GET", rf"/api/{_REPO}/tree/(?P<rev>[^/]+)(?:/(?P<path>.*))?", FakeHub._on_tree),
        ("GET", rf"/api/{_REPO}/commits/(?P<rev>[^/]+)", FakeHub._on_commits),
        ("POST", rf"/api/{_REPO}/preupload/(?P<rev>[^/]+)", FakeHub._on_preupload),
        ("POST", rf"/api/{_REPO}/commit/(?P<rev>[^/]+)", FakeHub._on_commit),
        ("GET", rf"/api/{_REPO}/discussions", FakeHub._on_list_discussions),
        ("POST", rf"/api/{_REPO}/discussions", FakeHub._on_create_discussion),
        ("GET", rf"/api/{_REPO}/discussions/(?P<num>\d+)", FakeHub._on_discussion_details),
        ("POST", _DISCUSSION_ACTION, FakeHub._on_discussion_action),
        ("POST", r"/api/settings/webhooks", FakeHub._on_create_webhook),
        ("POST", rf"/{_GIT_REPO}\.git/info/lfs/objects/batch", FakeHub._on_lfs_batch),
        ("PUT", r"/_fake_lfs/upload/(?P<oid>[0-9a-f]{64})", FakeHub._on_lfs_upload),
        ("POST", r"/_fake_lfs/verify", FakeHub._on_lfs_verify),
        ("HEAD", rf"/{_GIT_REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)", FakeHub._on_resolve),
        ("GET", rf"/{_GIT_REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)", FakeHub._on_resolve),
    ]
)  # fmt: skip


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake_hub: FakeHub

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default stderr access log."""

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline().strip():
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _dispatch(self, method: str) -> None:
        hub = self.fake_hub
        split = urlsplit(self.path)
        body = self._read_body()
        fault = hub._take_fault(method, split.path)
        if fault is not None:
            if fault.delay:
                time.sleep(fault.delay)
            if fault.drop:
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                hub.requests.append(RecordedRequest(method, split.path, split.query, 0, None))
                return
            if fault.status is not None:
                error = HubError(fault.status, f"Injected fault ({fault.status})", code=fault.code)
                self._send(method, split.path, split.query, self._error(error), None)
                return
        user_name = None
        try:
            user, token = hub.store.user_for(self._bearer())
            user_name = user.name if user else None
            response = self._route(method, split.path, split.query, body, user, token)
        except HubError as e:
            response = self._error(e)
        except Exception:
            trace = traceback.format_exc()
            hub.server_errors.append(trace)
            response = Response.json({"error": f"Fake Hub internal error: {trace.splitlines()[-1]}"}, 500)
        self._send(method, split.path, split.query, response, user_name)

    def _bearer(self) -> str | None:
        auth = self.headers.get("Authorization")
        if not auth:
            return None
        scheme, _, value = auth.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise HubError(401, "Invalid credentials in Authorization header")
        return value.strip()

    def _route(
        self,
        method: str,
        path: str,
        query: str,
        body: bytes,
        user: FakeUser | None,
        token: FakeToken | None,
    ) -> Response:
        try:
            fn, params = ROUTES.resolve(method, path)
        except NoRoute as e:
            if e.status == 405:
                raise HubError(405, f"Method {method} not allowed on {path}") from None
            raise HubError(404, f"Sorry, we can't find the page you are looking for: {path}") from None
        req = _Request(
            method=method,
            path=path,
            query=parse_qs(query, keep_blank_values=True),
            body=body,
            base_url=f"http://{self.headers.get('Host', '127.0.0.1')}",
            user=user,
            token=token,
            params=params,
            range=self.headers.get("Range"),
        )
        return fn(self.fake_hub, req)

    @staticmethod
    def _error(error: HubError) -> Response:
        response = Response.json({"error": error.message}, status=error.status)
        response.headers["X-Error-Message"] = error.message
        if error.code:
            response.headers["X-Error-Code"] = error.code
        if error.commit:
            response.headers["X-Repo-Commit"] = error.commit
        return response

    def _send(self, method: str, path: str, query: str, response: Response, user: str | None) -> None:
        self.fake_hub.requests.append(RecordedRequest(method, path, query, response.status, user))
        try:
            self.send_response(response.status)
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            if method != "HEAD":
                self.wfile.write(response.body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
