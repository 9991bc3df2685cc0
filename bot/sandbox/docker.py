"""``docker run`` on the project's image: no network, read-only root, memory and pid limits."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from dataclasses import dataclass

from bot.errors import SandboxUnavailableError
from bot.sandbox.base import SandboxRequest, SandboxResult, run_command, sandbox_env, substitute


@dataclass
class DockerRunner:
    """``docker run`` on the project's image: no network, read-only root, memory and pid limits."""

    image: str = "hub-exporter-bot:latest"
    docker: str = "docker"
    name: str = "docker"

    def command(self, request: SandboxRequest, container: str = "export-bot-sandbox") -> list[str]:
        argv = [self.docker, "run", "--rm", "--name", container, "--network", "none", "--read-only"]
        argv += ["--memory", str(request.memory_bytes), "--memory-swap", str(request.memory_bytes)]
        argv += ["--pids-limit", str(request.max_processes), "--cpus", str(request.threads), "--cap-drop", "ALL"]
        argv += ["--security-opt", "no-new-privileges", "--user", "1000:1000"]
        argv += ["--tmpfs", f"/tmp:rw,nosuid,nodev,size={request.tmp_bytes}", "--workdir", "/tmp"]
        argv += ["--ulimit", f"fsize={request.max_file_bytes}", "--ulimit", "core=0"]
        for key, value in sandbox_env(request.threads, None).items():
            argv += ["--env", f"{key}={value}"]
        argv += ["--volume", f"{request.snapshot_dir.resolve()}:/snapshot:ro"]
        argv += ["--volume", f"{request.output_dir.resolve()}:/output:rw"]
        argv += [self.image, "python", *substitute(request.args, "/snapshot", "/output")]
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
