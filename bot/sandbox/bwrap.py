"""bubblewrap: no network (``--unshare-all``), an empty environment but what the exporter needs,
read-only system, Python and snapshot, a private ``/tmp``, one writable bind."""

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


@dataclass
class BwrapRunner:
    """bubblewrap: separate namespaces (no network), read-only binds, one writable output folder."""

    bwrap: str = "bwrap"
    python: str = sys.executable
    name: str = "bwrap"
    ro_paths: list[Path] = field(default_factory=list)

    def command(self, request: SandboxRequest) -> list[str]:
        exe = shutil.which(self.bwrap)
        if exe is None:
            raise SandboxUnavailableError("bwrap not found: install bubblewrap or choose another sandbox")
        source = exporter_source_dir()
        argv = [exe, "--unshare-all", "--die-with-parent", "--new-session", "--clearenv"]
        argv += _system_binds()
        # The private /tmp first: binds made after it stay visible even when Python lives under /tmp.
        argv += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
        for path in self._python_paths():
            argv += ["--ro-bind", str(path), str(path)]
        if source is not None:
            argv += ["--ro-bind", str(source), "/opt/export-bot/src/exporter"]
        argv += ["--ro-bind", str(request.snapshot_dir.resolve()), "/snapshot"]
        argv += ["--bind", str(request.output_dir.resolve()), "/output", "--chdir", "/tmp"]
        env = sandbox_env(request.threads, "/opt/export-bot/src" if source is not None else None)
        for key, value in env.items():
            argv += ["--setenv", key, value]
        return [
            *prlimit_prefix(request),
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
        return run_command(self.command(request), request.timeout)


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
