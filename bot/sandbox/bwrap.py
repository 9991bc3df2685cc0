"""bubblewrap: no network (``--unshare-all``), an empty environment but what the exporter needs,
read-only system, Python and snapshot, a size-capped private ``/tmp``, one writable bind.

Privileges: the export runs as uid/gid 65534 in its own user namespace (no further namespaces),
with every capability dropped (also when the bot is root), no new privileges (bubblewrap always
sets ``PR_SET_NO_NEW_PRIVS``) and the seccomp filter of :mod:`bot.sandbox.seccomp`. Processes:
a per-run cgroup (:mod:`bot.sandbox.cgroup`) where the bot may make one, and ``RLIMIT_NPROC``.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from bot.errors import SandboxUnavailableError
from bot.sandbox.base import (
    SandboxRequest,
    SandboxResult,
    exporter_source_dir,
    prlimit_prefix,
    run_command,
    sandbox_env,
    substitute,
)
from bot.sandbox.cgroup import RunCgroup
from bot.sandbox.seccomp import compiled_filter, filter_fd

#: The export's uid and gid inside the user namespace ("nobody").
UID = "65534"


@dataclass
class BwrapRunner:
    """bubblewrap: separate namespaces (no network), read-only binds, one writable output folder."""

    bwrap: str = "bwrap"
    python: str = sys.executable
    name: str = "bwrap"
    ro_paths: list[Path] = field(default_factory=list)
    #: Load the seccomp filter (when libseccomp is there); a test turns it off to show what it blocks.
    seccomp: bool = True

    def command(self, request: SandboxRequest, seccomp_fd: int | None = None) -> list[str]:
        exe = shutil.which(self.bwrap)
        if exe is None:
            raise SandboxUnavailableError("bwrap not found: install bubblewrap or choose another sandbox")
        source = exporter_source_dir()
        argv = [exe, "--unshare-all", "--unshare-user", "--disable-userns", "--uid", UID, "--gid", UID]
        argv += ["--cap-drop", "ALL", "--die-with-parent", "--new-session", "--clearenv"]
        if seccomp_fd is not None:
            argv += ["--seccomp", str(seccomp_fd)]
        argv += _system_binds()
        # The private /tmp first: binds made after it stay visible even when Python lives under /tmp.
        argv += ["--proc", "/proc", "--dev", "/dev", "--size", str(request.tmp_bytes), "--tmpfs", "/tmp"]
        for path in self._python_paths():
            argv += ["--ro-bind", str(path), str(path)]
        if source is not None:
            argv += ["--ro-bind", str(source), "/opt/export-bot/src/exporter"]
        argv += ["--ro-bind", str(request.snapshot_dir.resolve()), "/snapshot"]
        argv += ["--bind", str(request.output_dir.resolve()), "/output", "--chdir", "/tmp"]
        if request.cache_dir is not None:
            argv += ["--bind", str(request.cache_dir.resolve()), "/cache"]
        # Last: the root bubblewrap built (a tmpfs without size cap) becomes read-only.
        argv += ["--remount-ro", "/"]
        env = sandbox_env(request.threads, "/opt/export-bot/src" if source is not None else None)
        for key, value in env.items():
            argv += ["--setenv", key, value]
        return [
            *prlimit_prefix(request, nproc=True),
            *argv,
            "--",
            self.python,
            *substitute(request.args, "/snapshot", "/output"),
        ]

    def _python_paths(self) -> list[Path]:
        """The interpreter, its standard library and the venv, read-only at their own paths."""
        paths = {Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve(), *self.ro_paths}
        paths = {p for p in paths if not p.is_relative_to("/usr")}
        return sorted(p for p in paths if not any(p != q and p.is_relative_to(q) for q in paths))

    def run(self, request: SandboxRequest) -> SandboxResult:
        program = compiled_filter() if self.seccomp else None
        fd = filter_fd(program) if program is not None else None
        # The cgroup also counts /tmp (tmpfs pages are charged to the writer): memory plus its size.
        group = RunCgroup.create(request.max_processes, request.memory_bytes + request.tmp_bytes)
        try:
            command = self.command(request, fd)
            if group is not None:
                command = [*group.prefix(), *command]
            return run_command(command, request.timeout, pass_fds=() if fd is None else (fd,))
        finally:
            if fd is not None:
                os.close(fd)
            if group is not None:
                group.remove()


def _system_binds() -> list[str]:
    """``/usr`` read-only; ``/bin``, ``/lib``… as on the host (merged-/usr symlinks or binds)."""
    argv = ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64"):
        path = Path("/") / name
        if path.is_symlink():
            argv += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            argv += ["--ro-bind", str(path), str(path)]
    for name in ("ld.so.cache", "ld.so.conf", "localtime", "nsswitch.conf"):
        argv += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    return argv
