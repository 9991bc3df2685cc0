"""The manifest of an export folder: the files the action wrote there, and nothing else it may touch.

Each pull request commit carries ``<output-dir>/.hub-exporter-manifest.json``. A later run replaces or
deletes only the files its previous manifest lists; a folder holding any other file (the checkpoint, a
sibling model, a user's notes) is refused before anything is exported or pushed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from export_action.errors import OutputFolderNotOwnedError

MANIFEST_NAME = ".hub-exporter-manifest.json"
GENERATOR = "hub-exporter GitHub Action"
#: Files the exporter leaves in the folder that are never committed (``report.json`` has timings).
UNCOMMITTED = frozenset({"report.json"})


@dataclass(frozen=True)
class Entry:
    sha256: str
    size: int
    lfs: bool


@dataclass(frozen=True)
class Manifest:
    """``{name relative to the folder: Entry}`` of the files one run committed."""

    files: Mapping[str, Entry]

    def to_json(self) -> str:
        files = {name: vars(entry) for name, entry in sorted(self.files.items())}
        return json.dumps({"generator": GENERATOR, "version": 1, "files": files}, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes) -> Manifest | None:
        """The manifest, or None when the content is not one the action wrote."""
        try:
            data: Any = json.loads(text)
            files = {
                name: Entry(sha256=str(e["sha256"]), size=int(e["size"]), lfs=bool(e["lfs"]))
                for name, e in data["files"].items()
            }
        except (ValueError, TypeError, KeyError, AttributeError):
            return None
        if data.get("generator") != GENERATOR or not all(_safe_name(name) for name in files):
            return None
        return cls(files)

    def owned(self) -> frozenset[str]:
        return frozenset({*self.files, MANIFEST_NAME})


def _safe_name(name: str) -> bool:
    """A path inside the folder: never ``..``, absolute or empty parts (a manifest cannot reach outside)."""
    return all(part not in ("", ".", "..") for part in name.split("/")) and "\\" not in name


def check_owned(where: str, folder: str, names: Iterable[str], manifest: Manifest | None, *, local: bool) -> None:
    """Raise :class:`OutputFolderNotOwnedError` if ``folder`` holds a file ``manifest`` does not list.

    ``names`` are the folder's files, relative to it (``sub/x.bin`` for nested ones). ``local`` also
    accepts the exporter's uncommitted outputs, which a run leaves in the workspace.
    """
    owned = manifest.owned() if manifest else frozenset()
    if local:
        owned |= UNCOMMITTED
    foreign = sorted(name for name in names if name not in owned)
    if foreign:
        raise OutputFolderNotOwnedError(where, folder, foreign)
