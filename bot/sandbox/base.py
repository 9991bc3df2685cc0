"""What every sandbox backend shares: the request, the result, the runner Protocol, running a command.

A runner gets a :class:`SandboxRequest` — interpreter arguments with the :data:`SNAPSHOT` and
:data:`OUTPUT` placeholders, a read-only snapshot folder, one writable output folder, limits —
and returns a :class:`SandboxResult`. Every backend starts from an empty environment
(:func:`sandbox_env`), so the HF token never reaches the sandbox.
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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

from bot.errors import SandboxUnavailableError

log = logging.getLogger(__name__)

SNAPSHOT = "@SNAPSHOT@"
OUTPUT = "@OUTPUT@"
#: The repo's own graph-cache folder (``--cache-dir``), writable: see :class:`SandboxRequest`.
CACHE = "@CACHE@"
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
    #: Processes (and threads) at once, and the size of the private ``/tmp``.
    max_processes: int = 512
    tmp_bytes: int = 1 << 30
    #: A second writable folder, at :data:`CACHE`: the graph cache of this repo only (one repo's export
    #: must not be able to change what another repo's export reuses).
    cache_dir: Path | None = None


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


def substitute(args: Sequence[str], snapshot: str, output: str, cache: str = "/cache") -> list[str]:
    places = {SNAPSHOT: snapshot, OUTPUT: output, CACHE: cache}
    return [places.get(a, a) for a in args]


def prlimit_prefix(request: SandboxRequest, *, nproc: bool = False) -> list[str]:
    """``prlimit`` in front of the command: the limits hold before the first instruction runs.

    ``nproc`` adds ``RLIMIT_NPROC`` (counted per user namespace: only for a sandbox that has its own).
    """
    prlimit = shutil.which("prlimit")
    if prlimit is None:
        raise SandboxUnavailableError("prlimit (util-linux) is needed to apply memory and file limits")
    argv = [prlimit, f"--as={request.memory_bytes}", f"--fsize={request.max_file_bytes}", "--core=0"]
    if nproc:
        argv.append(f"--nproc={request.max_processes}")
    return [*argv, "--"]


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
    pass_fds: Sequence[int] = (),
    cwd: Path | None = None,
) -> SandboxResult:
    """Run in a new session with ``env`` (default: empty); on timeout kill the whole process group."""
    start = time.monotonic()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env=env or {},
            start_new_session=True,
            pass_fds=pass_fds,
            cwd=cwd,
        )
        timed_out = False
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            if on_timeout is not None:
                on_timeout()
            kill_group(proc)
        except BaseException:
            kill_group(proc)
            raise
        return SandboxResult(proc.returncode, _tail(out), _tail(err), timed_out, time.monotonic() - start)


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process group ``proc`` leads, then reap it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


#: What the preflight runs in the sandbox: the exporter package imports (torch is not loaded).
_PREFLIGHT = ("-c", "import exporter, sys; sys.stdout.write('ok')")


def preflight(runner: SandboxRunner, timeout: float = 120.0) -> None:
    """Run a trivial command in ``runner``'s sandbox; :class:`SandboxUnavailableError` in one line if it cannot.

    Called at ``serve``/``worker`` start, so a missing engine or image fails the start, not every job.
    """
    with tempfile.TemporaryDirectory(prefix="export-bot-preflight-") as tmp:
        snapshot, output = Path(tmp) / "snapshot", Path(tmp) / "output"
        snapshot.mkdir()
        output.mkdir()
        request = SandboxRequest(
            args=_PREFLIGHT, snapshot_dir=snapshot, output_dir=output, timeout=timeout, memory_bytes=4 << 30
        )
        try:
            result = runner.run(request)
        except OSError as exc:
            raise SandboxUnavailableError(f"sandbox {runner.name!r} cannot start: {exc}") from exc
    if result.timed_out:
        raise SandboxUnavailableError(f"sandbox {runner.name!r} did not answer within {timeout:g} s")
    if result.returncode != 0 or result.stdout != "ok":
        reason = result.last_line(300) or f"exit status {result.returncode}"
        raise SandboxUnavailableError(f"sandbox {runner.name!r} cannot run a command here: {reason}")
