"""Git LFS for large exported files: pointer files, ``.gitattributes`` lines, and uploads.

What ``git lfs push`` does, with the same token: ask the repository's LFS server through the batch API
(``POST {server}/{owner}/{repo}.git/info/lfs/objects/batch``, ``application/vnd.git-lfs+json``), then
for each object it does not have yet, ``PUT`` the bytes to the upload href (basic transfer adapter)
and ``POST`` the verify href. The commit then holds a pointer file in place of the content.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from export_action.errors import FileTooLargeError, GitHubError

SPEC = "https://git-lfs.github.com/spec/v1"
MEDIA_TYPE = "application/vnd.git-lfs+json"
#: GitHub Free and Pro store LFS objects up to 2 GiB.
MAX_OBJECT_BYTES = 2 * 1024 * 1024 * 1024
#: Objects per batch request (the reference client's default).
BATCH_SIZE = 100
_HINTS = {
    401: "check the github-token input",
    403: "the token needs contents: write to push Git LFS objects",
    404: "check that the repository exists and the token can read it",
    507: "the account's Git LFS storage quota is used up (Settings > Billing)",
}


@dataclass(frozen=True)
class LfsObject:
    """One file's LFS identity: the sha256 of its content and its size."""

    oid: str
    size: int
    path: Path


def lfs_object(repo_path: str, path: Path) -> LfsObject:
    """Hash a file for LFS; refuses it (before reading) above the 2 GiB object limit."""
    size = path.stat().st_size
    if size > MAX_OBJECT_BYTES:
        raise FileTooLargeError(repo_path, size, MAX_OBJECT_BYTES)
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return LfsObject(oid=digest.hexdigest(), size=size, path=path)


def pointer(obj: LfsObject) -> bytes:
    """The pointer file git commits in place of the content (``git lfs pointer --file`` writes the same)."""
    return f"version {SPEC}\noid sha256:{obj.oid}\nsize {obj.size}\n".encode()


def gitattributes(names: Sequence[str]) -> bytes:
    """A folder's ``.gitattributes`` routing ``names`` (relative to the folder) through LFS."""
    lines = [f"{_pattern(name)} filter=lfs diff=lfs merge=lfs -text" for name in sorted(names)]
    return ("\n".join(lines) + "\n").encode()


def _pattern(name: str) -> str:
    """A gitattributes pattern matching exactly ``name``, anchored to the folder."""
    escaped = "".join(f"\\{c}" if c in "*?[]\\!#" else c for c in name).replace(" ", "[[:space:]]")
    return "/" + escaped


def lfs_url(server_url: str, repository: str) -> str:
    """The LFS endpoint git derives from the remote ``{server}/{owner}/{repo}.git``."""
    return f"{server_url.rstrip('/')}/{repository}.git/info/lfs"


def upload(url: str, token: str, objects: Sequence[LfsObject], ref: str, *, timeout: float = 600) -> int:
    """Upload the objects the server lacks; returns how many were sent."""
    session = requests.Session()
    session.headers["User-Agent"] = "hub-exporter-action"
    sent = 0
    for start in range(0, len(objects), BATCH_SIZE):
        chunk = {obj.oid: obj for obj in objects[start : start + BATCH_SIZE]}
        answer = _batch(session, url, token, list(chunk.values()), ref, timeout)
        for item in answer:
            obj = chunk.get(item.get("oid", ""))
            if obj is None:
                raise GitHubError(f"Git LFS batch answer names an object that was not asked for: {item.get('oid')}")
            error = item.get("error")
            if error:
                raise GitHubError(
                    f"Git LFS refused {obj.path.name} ({obj.oid[:12]}): {error.get('code')} {error.get('message')}"
                )
            actions = item.get("actions") or {}
            if "upload" in actions:
                _transfer(session, "PUT", actions["upload"], obj, timeout)
                if "verify" in actions:
                    _transfer(session, "POST", actions["verify"], obj, timeout)
                sent += 1
    return sent


def _batch(
    session: requests.Session, url: str, token: str, objects: list[LfsObject], ref: str, timeout: float
) -> list[dict[str, Any]]:
    body: dict[str, Any] = {
        "operation": "upload",
        "transfers": ["basic"],
        "ref": {"name": ref},
        "objects": [{"oid": obj.oid, "size": obj.size} for obj in objects],
        "hash_algo": "sha256",
    }
    headers = {"Accept": MEDIA_TYPE, "Content-Type": MEDIA_TYPE}
    try:
        response = session.post(
            f"{url}/objects/batch", json=body, headers=headers, auth=("x-access-token", token), timeout=timeout
        )
    except requests.RequestException as error:
        raise GitHubError(f"cannot reach the Git LFS server at {url}: {error}") from error
    _raise_for_status(response, "asking the Git LFS server for upload URLs")
    try:
        objects_answer = response.json()["objects"]
    except (ValueError, KeyError, TypeError) as error:
        raise GitHubError(f"Git LFS batch answer is not valid JSON with objects: {response.text[:200]}") from error
    if response.json().get("transfer", "basic") != "basic":
        raise GitHubError(f"Git LFS server chose transfer {response.json()['transfer']!r}, not basic")
    return list(objects_answer)


def _transfer(session: requests.Session, method: str, action: dict[str, Any], obj: LfsObject, timeout: float) -> None:
    headers = dict(action.get("header") or {})
    stage = "uploading" if method == "PUT" else "verifying"
    try:
        if method == "PUT":
            headers.setdefault("Content-Type", "application/octet-stream")
            with obj.path.open("rb") as data:  # streamed, never read whole into memory
                response = session.put(action["href"], data=data, headers=headers, timeout=timeout)
        else:
            headers.update({"Accept": MEDIA_TYPE, "Content-Type": MEDIA_TYPE})
            response = session.post(
                action["href"], json={"oid": obj.oid, "size": obj.size}, headers=headers, timeout=timeout
            )
    except requests.RequestException as error:
        raise GitHubError(f"Git LFS failed {stage} {obj.path.name}: {error}") from error
    _raise_for_status(response, f"{stage} {obj.path.name} to Git LFS")


def _raise_for_status(response: requests.Response, stage: str) -> None:
    if response.ok:
        return
    try:
        message = response.json().get("message")
    except ValueError:
        message = response.text[:200]
    hint = _HINTS.get(response.status_code)
    raise GitHubError(f"Git LFS error while {stage}: {response.status_code} {message}" + (f" ({hint})" if hint else ""))
