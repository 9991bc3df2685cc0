"""A container per export on the project's image, with Docker or Podman (same command line).

``cli`` is the engine's command with its global flags, e.g. ``docker`` or
``podman --runtime runc --cgroup-manager=cgroupfs`` (``EXPORT_BOT_CONTAINER_CLI``). The container
has no network, a read-only root, a size-capped ``/tmp``, memory (no swap), process and CPU limits,
no capabilities, no new privileges, the engine's default seccomp profile, and runs as an
unprivileged uid: 1000 (the image's ``bot`` user) when the bot is root, else the bot's own uid.

Folders: the snapshot is bound read-only, the output folder read-write. When the bot is root the
output folder is given to uid 1000 and the snapshot made world-readable, while their parent becomes
0700: the container's uid can write its output, nobody else on the host can enter either folder;
when the container has ended the output is given back to root before the bot reads it.
On a timeout, or when the engine's client is killed (a cancelled job), the container is killed by
name with the same command prefix and removed.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from bot.errors import SandboxUnavailableError
from bot.sandbox.base import SandboxRequest, SandboxResult, run_command, sandbox_env, substitute

#: The uid and gid of the image's ``bot`` user (Dockerfile).
IMAGE_UID = 1000


@dataclass
class ContainerRunner:
    """``<cli> run`` on the project's image: no network, read-only root, memory, process and /tmp limits."""

    image: str = "hub-exporter-bot:latest"
    cli: str = "docker"
    name: str = "container"

    def engine(self) -> list[str]:
        """The engine's command and global flags, its executable resolved on PATH."""
        argv = shlex.split(self.cli)
        exe = shutil.which(argv[0]) if argv else None
        if exe is None:
            raise SandboxUnavailableError(
                f"container engine {self.cli!r} not found: install it or choose another sandbox"
            )
        return [exe, *argv[1:]]

    def user(self) -> str:
        return f"{IMAGE_UID}:{IMAGE_UID}" if os.geteuid() == 0 else f"{os.geteuid()}:{os.getegid()}"

    def command(self, request: SandboxRequest, container: str = "export-bot-sandbox") -> list[str]:
        argv = [*self.engine(), "run", "--rm", "--name", container, "--pull", "never", "--no-healthcheck"]
        # The job's output folder as a label: an operator (or a test) finds the container of a job.
        argv += ["--label", f"export-bot.output={request.output_dir.resolve()}"]
        argv += ["--network", "none", "--read-only", "--user", self.user(), "--workdir", "/tmp"]
        argv += ["--memory", str(request.memory_bytes), "--memory-swap", str(request.memory_bytes)]
        argv += ["--pids-limit", str(request.max_processes), "--cpus", str(request.threads)]
        argv += ["--cap-drop", "ALL", "--security-opt", "no-new-privileges"]
        argv += ["--tmpfs", f"/tmp:rw,nosuid,nodev,size={request.tmp_bytes}"]
        argv += ["--ulimit", f"fsize={request.max_file_bytes}", "--ulimit", "core=0"]
        # RLIMIT_NPROC counts every process of host uid 1000, all containers together: --pids-limit is
        # the per-export bound, this one only replaces the engine's default (unlimited for a root engine).
        argv += ["--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096"]
        for key, value in sandbox_env(request.threads, None).items():
            argv += ["--env", f"{key}={value}"]
        argv += ["--volume", f"{request.snapshot_dir.resolve()}:/snapshot:ro"]
        argv += ["--volume", f"{request.output_dir.resolve()}:/output:rw"]
        if request.cache_dir is not None:
            argv += ["--volume", f"{request.cache_dir.resolve()}:/cache:rw"]
        argv += [self.image, "python", *substitute(request.args, "/snapshot", "/output")]
        return argv

    def run(self, request: SandboxRequest) -> SandboxResult:
        container = f"export-bot-{uuid.uuid4().hex[:12]}"
        command = self.command(request, container)
        owner = os.geteuid() == 0
        if owner:
            hand_over(request.snapshot_dir, request.output_dir)
            if request.cache_dir is not None:
                give_cache(request.cache_dir)
        # The client runs in a scratch folder: Podman's conmon drops an "oom" file in its working directory.
        scratch = tempfile.TemporaryDirectory(prefix="export-bot-engine-")
        try:
            result = run_command(
                command,
                request.timeout,
                env=_engine_env(),
                on_timeout=lambda: self._remove(container),
                cwd=Path(scratch.name),
            )
            if result.returncode < 0:  # the client was killed (a cancelled job): the container may live on
                self._remove(container)
        finally:
            scratch.cleanup()
            if owner:
                take_back(request.output_dir)
        return result

    def _remove(self, container: str) -> None:
        engine = self.engine()
        for action in (["kill", container], ["rm", "--force", container]):
            subprocess.run([*engine, *action], capture_output=True, check=False, env=_engine_env(), timeout=60)


def hand_over(snapshot: Path, output: Path) -> None:
    """Let the container's uid read the snapshot and write the output; close their parents to others."""
    for parent in {snapshot.resolve().parent, output.resolve().parent}:
        if parent.stat().st_uid == 0:
            parent.chmod(0o700)
    for root, dirs, files in os.walk(snapshot):
        for name in dirs:
            _add_mode(Path(root) / name, 0o555)
        for name in files:
            _add_mode(Path(root) / name, 0o444)
    _add_mode(snapshot, 0o555)
    os.chown(output, IMAGE_UID, IMAGE_UID)
    output.chmod(0o700)


def give_cache(cache: Path) -> None:
    """The repo's cache folder to the container's uid (it stays theirs: only this repo's exports use it)."""
    cache.chmod(0o700)
    for root, dirs, files in os.walk(cache):
        for name in (*dirs, *files):
            os.lchown(Path(root) / name, IMAGE_UID, IMAGE_UID)
    os.lchown(cache, IMAGE_UID, IMAGE_UID)


def take_back(output: Path) -> None:
    """Give the output back to the bot (root) before anyone reads it: uid 1000 may be a host user."""
    os.lchown(output, 0, 0)
    for root, dirs, files in os.walk(output):
        for name in (*dirs, *files):
            os.lchown(Path(root) / name, 0, 0)


def _add_mode(path: Path, bits: int) -> None:
    mode = path.lstat().st_mode
    if not path.is_symlink():
        path.chmod((mode & 0o7777) | bits)


def _engine_env() -> dict[str, str]:
    """The engine client's environment: PATH and HOME, never the bot's secrets."""
    return {key: os.environ[key] for key in ("PATH", "HOME", "XDG_RUNTIME_DIR", "DOCKER_HOST") if key in os.environ}
