"""Run untrusted work (loading weights, tracing, exporting) where no secret can be reached.

Backends, an explicit dict (:data:`RUNNERS`), each a module of its own:

- ``bwrap`` (:mod:`bot.sandbox.bwrap`): bubblewrap namespaces on the host's Python;
- ``docker`` (:mod:`bot.sandbox.docker`): the project's image with ``docker run --network none --read-only``;
- ``process`` (:mod:`bot.sandbox.process`): no isolation; development only.

Limits: wall time (the whole process group is killed), address space, file size, no core dumps.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable

from bot.errors import ConfigError, SandboxUnavailableError
from bot.sandbox.base import OUTPUT, SNAPSHOT, SandboxRequest, SandboxResult, SandboxRunner
from bot.sandbox.bwrap import BwrapRunner
from bot.sandbox.docker import DockerRunner
from bot.sandbox.process import ProcessRunner

__all__ = [
    "OUTPUT",
    "RUNNERS",
    "SNAPSHOT",
    "BwrapRunner",
    "DockerRunner",
    "ProcessRunner",
    "SandboxRequest",
    "SandboxResult",
    "SandboxRunner",
    "make_runner",
]

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
