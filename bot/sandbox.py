"""Run untrusted work (loading weights, tracing, exporting) where no secret can be reached.

A runner gets a :class:`SandboxRequest` — interpreter arguments with the :data:`SNAPSHOT` and
:data:`OUTPUT` placeholders, a read-only snapshot folder, one writable output folder, limits —
and returns a :class:`SandboxResult`. Backends are listed in :data:`RUNNERS`:

- ``bwrap``: bubblewrap, no network (``--unshare-all``), an empty environment but what the
  exporter needs, read-only system, Python and snapshot, a private ``/tmp``, one writable bind.
- ``docker``: the same on the project's image with ``docker run --network none --read-only``.
- ``process``: no isolation at all; explicit opt-in for development, logs a warning.

Every backend starts from an empty environment, so the HF token never reaches the sandbox.
Limits: wall time (the whole process group is killed), address space, file size, no core dumps.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol

from bot.errors import ConfigError, SandboxUnavailableError

log = logging.getLogger(__name__)

SNAPSHOT = "@SNAPSHOT@"
OUTPUT = "@OUTPUT@"
_TAIL_BYTES = 64 * 1024
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


@dataclass(frozen=True, kw_only=True)
class SandboxRequest:
    """One run: ``python *args`` with the snapshot read-only and only ``output_dir`` writable."""

    args: tuple[str, ...]
    snapshot_dir: Path
    output_dir: Path
    timeout: float
    memory_bytes: int
    max_file_bytes: int = 16 << 30
    threads: int = 2


@dataclass(frozen=True)
class SandboxResult:
    """How the run ended; ``stdout``/``stderr`` keep only their last 64 KB."""

    returncode: int
    stdout: str
    stderr: str
    timed_out: bool
    seconds: float

    @property
    def signal(self) -> int | None:
        return -self.returncode if self.returncode < 0 else None

    def last_line(self, limit: int = 500) -> str:
        """The last stderr line (where the exporter prints its error), without terminal escapes."""
        text = _ANSI.sub("", self.stderr)
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        line = "".join(c for c in (lines[-1] if lines else "") if c.isprintable())
        return line if len(line) <= limit else line[: limit - 1] + "…"


class SandboxRunner(Protocol):
    """A backend: builds the command line and runs it under the request's limits."""

    name: str

    def command(self, request: SandboxRequest) -> list[str]: ...

    def run(self, request: SandboxRequest) -> SandboxResult: ...


def sandbox_env(threads: int, pythonpath: str | None) -> dict[str, str]:
    """The whole environment inside the sandbox: nothing inherited from the bot."""
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": "/tmp",
        "TMPDIR": "/tmp",
        "LANG": "C.UTF-8",
        "HF_HOME": "/tmp/hf",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "OMP_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
        "TOKENIZERS_PARALLELISM": "false",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
    }
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    return env


def exporter_source_dir() -> Path | None:
    """The folder holding the ``exporter`` package when it is not installed into site-packages."""
    spec = importlib.util.find_spec("exporter")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        return None
    package = Path(locations[0]).resolve()
    prefix = Path(sys.prefix).resolve()
    return None if package.is_relative_to(prefix) else package


def _substitute(args: Sequence[str], snapshot: str, output: str) -> list[str]:
    return [snapshot if a == SNAPSHOT else output if a == OUTPUT else a for a in args]


def _limits(request: SandboxRequest) -> list[str]:
    """``prlimit`` in front of the command: the limits hold before the first instruction runs."""
    prlimit = shutil.which("prlimit")
    if prlimit is None:
        raise SandboxUnavailableError("prlimit (util-linux) is needed to apply memory and file limits")
    return [prlimit, f"--as={request.memory_bytes}", f"--fsize={request.max_file_bytes}", "--core=0", "--"]


def _tail(handle: IO[bytes]) -> str:
    handle.seek(0, os.SEEK_END)
    handle.seek(max(handle.tell() - _TAIL_BYTES, 0))
    return handle.read().decode("utf-8", "replace")


def run_command(
    command: list[str],
    timeout: float,
    *,
    env: dict[str, str] | None = None,
    on_timeout: Callable[[], None] | None = None,
) -> SandboxResult:
    """Run in a new session with ``env`` (default: empty); on timeout kill the whole process group."""
    start = time.monotonic()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env or {}, start_new_session=True
        )
        timed_out = False
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            if on_timeout is not None:
                on_timeout()
            _kill_group(proc)
        except BaseException:
            _kill_group(proc)
            raise
        return SandboxResult(proc.returncode, _tail(out), _tail(err), timed_out, time.monotonic() - start)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


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
            *_limits(request),
            *argv,
            "--",
            self.python,
            *_substitute(request.args, "/snapshot", "/output"),
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


@dataclass
class DockerRunner:
    """``docker run`` on the project's image: no network, read-only root, memory and pid limits."""

    image: str = "hub-exporter-bot:latest"
    docker: str = "docker"
    name: str = "docker"

    def command(self, request: SandboxRequest, container: str = "export-bot-sandbox") -> list[str]:
        argv = [self.docker, "run", "--rm", "--name", container, "--network", "none", "--read-only"]
        argv += ["--memory", str(request.memory_bytes), "--memory-swap", str(request.memory_bytes)]
        argv += ["--pids-limit", "512", "--cpus", str(request.threads), "--cap-drop", "ALL"]
        argv += ["--security-opt", "no-new-privileges", "--user", "1000:1000"]
        argv += ["--tmpfs", "/tmp:rw,nosuid,nodev,size=1g", "--workdir", "/tmp"]
        argv += ["--ulimit", f"fsize={request.max_file_bytes}", "--ulimit", "core=0"]
        for key, value in sandbox_env(request.threads, None).items():
            argv += ["--env", f"{key}={value}"]
        argv += ["--volume", f"{request.snapshot_dir.resolve()}:/snapshot:ro"]
        argv += ["--volume", f"{request.output_dir.resolve()}:/output:rw"]
        argv += [self.image, "python", *_substitute(request.args, "/snapshot", "/output")]
        return argv

    def run(self, request: SandboxRequest) -> SandboxResult:
        if shutil.which(self.docker) is None:
            raise SandboxUnavailableError("docker not found: install it or choose another sandbox")
        container = f"export-bot-{uuid.uuid4().hex[:12]}"
        command = self.command(request, container)
        command[0] = shutil.which(self.docker) or self.docker

        def kill() -> None:
            subprocess.run([command[0], "kill", container], capture_output=True, check=False, env={})

        return run_command(command, request.timeout, on_timeout=kill)


@dataclass
class ProcessRunner:
    """No isolation: a child process with an empty environment and limits. Development only."""

    python: str = sys.executable
    name: str = "process"

    def command(self, request: SandboxRequest) -> list[str]:
        args = _substitute(request.args, str(request.snapshot_dir.resolve()), str(request.output_dir.resolve()))
        return [*_limits(request), self.python, *args]

    def env(self, request: SandboxRequest) -> dict[str, str]:
        """Still no token: an empty environment with a scratch HOME next to the output folder."""
        source = exporter_source_dir()
        env = sandbox_env(request.threads, str(source.parent) if source is not None else None)
        env["HOME"] = env["TMPDIR"] = str(request.output_dir.resolve().parent / "home")
        env["HF_HOME"] = env["HOME"] + "/hf"
        return env

    def run(self, request: SandboxRequest) -> SandboxResult:
        log.warning("sandbox 'process' gives NO isolation: the checkpoint's code runs as the bot's user")
        env = self.env(request)
        Path(env["HOME"]).mkdir(exist_ok=True)
        return run_command(self.command(request), request.timeout, env=env)


RUNNERS: dict[str, Callable[..., SandboxRunner]] = {
    "bwrap": BwrapRunner,
    "docker": DockerRunner,
    "process": ProcessRunner,
}


_NEEDS = {"bwrap": ("bwrap", "prlimit"), "docker": ("docker",), "process": ("prlimit",)}


def make_runner(name: str, *, docker_image: str = "hub-exporter-bot:latest", check: bool = False) -> SandboxRunner:
    """The runner for a backend name from the settings; ``check`` fails fast if its tools are missing."""
    if name not in RUNNERS:
        raise ConfigError(f"unknown sandbox {name!r} (known: {', '.join(RUNNERS)})")
    missing = [tool for tool in _NEEDS[name] if check and shutil.which(tool) is None]
    if missing:
        raise SandboxUnavailableError(f"sandbox {name!r} needs {', '.join(missing)}: install it or choose another")
    return DockerRunner(image=docker_image) if name == "docker" else RUNNERS[name]()
