"""A cgroup per sandbox run: a process limit and a memory limit that also counts the private ``/tmp``.

Needed when the bot runs as root: inside bubblewrap's user namespace the export still has the host
uid 0, which ``RLIMIT_NPROC`` never limits. The group is made under the bot's own cgroup, in the
``pids`` and ``memory`` hierarchies of cgroup v1, or in the unified v2 tree when those controllers
are already enabled in the bot's group's ``cgroup.subtree_control``. Where the bot may not create one (not root, no delegation), :meth:`RunCgroup.create`
returns ``None``: the limits then come from ``RLIMIT_NPROC`` and the unit's ``TasksMax=``/``MemoryMax=``
(docs/sandbox.md).
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

ROOT = Path("/sys/fs/cgroup")
#: The command prefix that moves itself into the groups, then runs the rest (after ``--``).
_JOIN = 'while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@"'


def _own_path(controller: str) -> str | None:
    """This process's cgroup path in ``controller``'s v1 hierarchy (``""`` for v2), or ``None``."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return path
    return None


def _v1_groups(name: str) -> dict[str, Path] | None:
    groups = {}
    for controller in ("pids", "memory"):
        own = _own_path(controller)
        if own is None or not (ROOT / controller / "cgroup.procs").exists():
            return None
        groups[controller] = ROOT / controller / own.lstrip("/") / name
    return groups


def _v2_group(name: str) -> Path | None:
    own = next(
        (line[3:] for line in Path("/proc/self/cgroup").read_text().splitlines() if line.startswith("0::")), None
    )
    if own is None or not (ROOT / "cgroup.controllers").exists():
        return None
    parent = ROOT / own.lstrip("/")
    enabled = (parent / "cgroup.subtree_control").read_text().split() if parent.is_dir() else []
    return parent / name if {"pids", "memory"} <= set(enabled) else None


@dataclass
class RunCgroup:
    """The groups of one run; ``prefix()`` goes in front of the command, ``remove()`` after it ended."""

    dirs: list[Path]

    @classmethod
    def create(cls, max_processes: int, memory_bytes: int) -> RunCgroup | None:
        """Groups limited to ``max_processes`` tasks and ``memory_bytes``, or ``None`` where not allowed."""
        name = f"export-bot-{uuid.uuid4().hex[:12]}"
        limits: list[tuple[Path, str, str]]
        v1 = _v1_groups(name)
        if v1 is not None:
            limits = [
                (v1["pids"], "pids.max", str(max_processes)),
                (v1["memory"], "memory.limit_in_bytes", str(memory_bytes)),
            ]
        else:
            v2 = _v2_group(name)
            if v2 is None:
                return None
            limits = [(v2, "pids.max", str(max_processes)), (v2, "memory.max", str(memory_bytes))]
        group = cls(list(dict.fromkeys(d for d, _, _ in limits)))
        try:
            for folder in group.dirs:
                folder.mkdir()
            for folder, knob, value in limits:
                (folder / knob).write_text(value)
        except OSError as exc:
            log.debug("no cgroup for the sandbox (%s): limits come from rlimits and the service unit", exc)
            group.remove()
            return None
        return group

    def prefix(self) -> list[str]:
        return ["/bin/sh", "-c", _JOIN, "join-cgroup", *(str(d / "cgroup.procs") for d in self.dirs), "--"]

    def remove(self) -> None:
        """Remove the groups (their processes are gone; the kernel may take a moment to notice)."""
        for folder in self.dirs:
            for _ in range(50):
                try:
                    folder.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)
            else:
                log.warning("cgroup %s still busy; left in place", folder)
