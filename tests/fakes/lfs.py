"""GitHub's Git LFS server side, as the fake GitHub serves it: the batch API and the basic transfer adapter.

The protocol (https://github.com/git-lfs/git-lfs/blob/main/docs/api/batch.md and
``basic-transfers.md``), on the same loopback server as the REST API:

- ``POST /{owner}/{repo}.git/info/lfs/objects/batch`` with ``Accept`` and ``Content-Type``
  ``application/vnd.git-lfs+json``, authenticated like git over HTTPS (Basic, the token as password;
  ``token``/``Bearer`` also accepted). Answers per object: ``actions.upload`` + ``actions.verify``
  (hrefs with their own ``Authorization`` header, as GitHub's signed storage URLs), no actions when the
  server already has the object, ``actions.download`` for downloads, or a per-object ``error``.
- ``PUT`` upload href: the raw bytes (``Content-Length`` required); the sha256 must be the oid.
- ``POST`` verify href: ``{"oid", "size"}``; 200 once the object is stored with that size.
- ``GET`` download href: the bytes.

GitHub's limits are enforced: objects above ``FakeGitHub.max_lfs_object_bytes`` (2 GiB by default) get a
422 object error in the batch answer and are refused at upload. Objects are streamed to disk, never
held in memory, so a real-size upload costs what it costs on loopback.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from tests.fakes.routing import NoRoute, Routes

if TYPE_CHECKING:
    from http.server import BaseHTTPRequestHandler

    from tests.fakes.github import FakeGitHub

LFS_MEDIA_TYPE = "application/vnd.git-lfs+json"
_OID = re.compile(r"^[0-9a-f]{64}$")
_BATCH = r"/(?P<owner>[^/]+)/(?P<name>[^/]+?)\.git/info/lfs/objects/batch"
_OBJECT = r"/_lfs/objects/(?P<owner>[^/]+)/(?P<name>[^/]+)/(?P<oid>[0-9a-f]{64})"
_VERIFY = r"/_lfs/verify/(?P<owner>[^/]+)/(?P<name>[^/]+)"
_CHUNK = 1 << 20


class _LfsError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


class LfsServer:
    """LFS objects of every fake repository, on disk under a temporary folder."""

    def __init__(self, fake: FakeGitHub) -> None:
        self.fake = fake
        self._dir = tempfile.TemporaryDirectory(prefix="fake-github-lfs-")
        self.root = Path(self._dir.name)
        self._secret = secrets.token_hex(16)  # what the signed upload/download URLs carry
        self.uploads: list[tuple[str, str, int]] = []  # (repo, oid, size) of every completed upload
        self._routes: Routes[Callable[..., None]] = Routes(
            [
                ("POST", _BATCH, self._batch),
                ("PUT", _OBJECT, self._upload),
                ("GET", _OBJECT, self._download),
                ("POST", _VERIFY, self._verify),
            ]
        )

    def close(self) -> None:
        self._dir.cleanup()

    def path(self, full_name: str, oid: str) -> Path:
        return self.root / full_name.replace("/", "__") / oid

    def objects(self, full_name: str) -> dict[str, int]:
        """``{oid: size}`` stored for a repository."""
        folder = self.root / full_name.replace("/", "__")
        return {p.name: p.stat().st_size for p in folder.iterdir() if _OID.match(p.name)} if folder.is_dir() else {}

    # -- routing ---------------------------------------------------------------------------
    def serve(self, handler: BaseHTTPRequestHandler) -> bool:
        """Answer the request if it is an LFS one; False leaves it to the REST API."""
        path = urlsplit(handler.path).path
        try:
            action, params = self._routes.resolve(handler.command, path)
        except NoRoute as no_route:
            if no_route.status == 404:
                return False
            action, params = None, {}
        with self.fake._lock:
            self.fake.requests.append((handler.command, path))
        try:
            if action is None:
                raise _LfsError(405, "Method not allowed")
            full_name = f"{params.pop('owner')}/{params.pop('name')}"
            if not self.fake.has_repo(full_name):
                raise _LfsError(404, "Repository not found")
            action(handler, full_name, **params)
        except _LfsError as error:  # the body may be unread: answer, then close the connection
            handler.close_connection = True
            _reply(handler, error.status, {"message": error.message}, {**error.headers, "Connection": "close"})
        return True

    # -- batch API -------------------------------------------------------------------------
    def _batch(self, handler: BaseHTTPRequestHandler, full_name: str) -> None:
        if LFS_MEDIA_TYPE not in (handler.headers.get("Accept") or ""):
            raise _LfsError(406, f"Accept must be {LFS_MEDIA_TYPE}")
        token = _credentials(handler.headers.get("Authorization") or "")
        if token is None or token not in self.fake.tokens:
            raise _LfsError(401, "Credentials needed", {"LFS-Authenticate": 'Basic realm="GitHub"'})
        body = _read_json(handler, limit=10 << 20)
        operation, objects = body.get("operation"), body.get("objects")
        if operation not in ("upload", "download") or not isinstance(objects, list):
            raise _LfsError(422, "operation must be upload or download, with a list of objects")
        if "basic" not in body.get("transfers", ["basic"]):
            raise _LfsError(422, "only the basic transfer adapter is supported")
        if operation == "upload" and not self.fake.tokens[token]:
            raise _LfsError(403, "You must have push access to verify locks")
        answers = [self._answer(full_name, operation, item) for item in objects]
        _reply(handler, 200, {"transfer": "basic", "objects": answers, "hash_algo": "sha256"})

    def _answer(self, full_name: str, operation: str, item: Any) -> dict[str, Any]:
        oid, size = (item.get("oid"), item.get("size")) if isinstance(item, dict) else (None, None)
        if not isinstance(oid, str) or not _OID.match(oid) or not isinstance(size, int) or size < 0:
            return {"oid": oid, "size": size, "error": {"code": 422, "message": "Invalid object"}}
        answer: dict[str, Any] = {"oid": oid, "size": size, "authenticated": True}
        limit = self.fake.max_lfs_object_bytes
        if size > limit:
            return {**answer, "error": {"code": 422, "message": f"Size must be less than or equal to {limit}"}}
        stored = self.path(full_name, oid)
        href = f"{self.fake.url}/_lfs/objects/{full_name}/{oid}"
        action = {"href": href, "header": {"Authorization": f"RemoteAuth {self._secret}"}, "expires_in": 3600}
        if operation == "download":
            if not stored.exists():
                return {**answer, "error": {"code": 404, "message": "Object does not exist"}}
            return {**answer, "actions": {"download": action}}
        if stored.exists() and stored.stat().st_size == size:
            return answer  # already there: nothing to upload
        verify = {**action, "href": f"{self.fake.url}/_lfs/verify/{full_name}"}
        return {**answer, "actions": {"upload": action, "verify": verify}}

    # -- basic transfer adapter ------------------------------------------------------------
    def _check_signature(self, handler: BaseHTTPRequestHandler) -> None:
        if handler.headers.get("Authorization") != f"RemoteAuth {self._secret}":
            raise _LfsError(401, "Invalid or expired signature")

    def _upload(self, handler: BaseHTTPRequestHandler, full_name: str, oid: str) -> None:
        self._check_signature(handler)
        length = handler.headers.get("Content-Length")
        if length is None or not length.isdigit():
            raise _LfsError(411, "Content-Length required")
        size = int(length)
        if size > self.fake.max_lfs_object_bytes:
            raise _LfsError(422, f"Size must be less than or equal to {self.fake.max_lfs_object_bytes}")
        target = self.path(full_name, oid)
        target.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as partial:
            remaining = size
            while remaining:
                chunk = handler.rfile.read(min(_CHUNK, remaining))
                if not chunk:
                    break
                digest.update(chunk)
                partial.write(chunk)
                remaining -= len(chunk)
        if remaining or digest.hexdigest() != oid:
            Path(partial.name).unlink()
            raise _LfsError(422, "Object data does not match its oid and size")
        Path(partial.name).replace(target)
        with self.fake._lock:
            self.uploads.append((full_name, oid, size))
        _reply(handler, 200, None)

    def _verify(self, handler: BaseHTTPRequestHandler, full_name: str) -> None:
        self._check_signature(handler)
        body = _read_json(handler, limit=1 << 16)
        oid, size = body.get("oid"), body.get("size")
        stored = self.path(full_name, oid) if isinstance(oid, str) and _OID.match(oid) else None
        if stored is None or not stored.exists():
            raise _LfsError(404, "Object does not exist")
        if stored.stat().st_size != size:
            raise _LfsError(422, f"Object size is {stored.stat().st_size}, not {size}")
        _reply(handler, 200, {"message": "ok"})

    def _download(self, handler: BaseHTTPRequestHandler, full_name: str, oid: str) -> None:
        self._check_signature(handler)
        stored = self.path(full_name, oid)
        if not stored.exists():
            raise _LfsError(404, "Object does not exist")
        handler.send_response(200)
        handler.send_header("Content-Type", "application/octet-stream")
        handler.send_header("Content-Length", str(stored.stat().st_size))
        handler.end_headers()
        with stored.open("rb") as source:
            while chunk := source.read(_CHUNK):
                handler.wfile.write(chunk)


def _credentials(header: str) -> str | None:
    """The token of ``Basic base64(user:token)``, ``token X`` or ``Bearer X``."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "basic":
        try:
            _, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
        except ValueError:
            return None
        return password or None
    return value.strip() or None if scheme.lower() in ("token", "bearer") else None


def _read_json(handler: BaseHTTPRequestHandler, *, limit: int) -> dict[str, Any]:
    length = int(handler.headers.get("Content-Length") or 0)
    if length > limit:
        raise _LfsError(413, "Request body too large")
    try:
        body = json.loads(handler.rfile.read(length) or b"{}")
    except ValueError:
        raise _LfsError(422, "Invalid JSON") from None
    if not isinstance(body, dict):
        raise _LfsError(422, "Invalid JSON")
    return body


def _reply(handler: BaseHTTPRequestHandler, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
    data = b"" if payload is None else json.dumps(payload).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", LFS_MEDIA_TYPE)
    handler.send_header("Content-Length", str(len(data)))
    for key, value in (headers or {}).items():
        handler.send_header(key, value)
    handler.end_headers()
    handler.wfile.write(data)
