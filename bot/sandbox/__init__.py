"""Run untrusted work (loading weights, tracing, exporting) where no secret can be reached.

Backends, an explicit dict (:data:`RUNNERS`), each a module of its own:

- ``bwrap`` (:mod:`bot.sandbox.bwrap`): bubblewrap namespaces on the host's Python;
- ``container`` (alias ``docker``, :mod:`bot.sandbox.container`): the project's image in a container,
  with Docker or Podman (``--network none --read-only``, no capabilities, memory/process/``/tmp`` limits);
- ``process`` (:mod:`bot.sandbox.process`): no isolation; development only.

Limits: wall time (the whole process group is killed), address space, file size, no core dumps,
processes, the size of ``/tmp``; docs/sandbox.md says what each backend guarantees.
:func:`preflight` runs a trivial command in the chosen sandbox when ``serve``/``worker`` start.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable

from bot.errors import ConfigError, SandboxUnavailableError
from bot.sandbox.base import CACHE, OUTPUT, SNAPSHOT, SandboxRequest, SandboxResult, SandboxRunner, preflight
from bot.sandbox.bwrap import BwrapRunner
from bot.sandbox.container import ContainerRunner
from bot.sandbox.process import ProcessRunner

__all__ = [
    "CACHE",
    "OUTPUT",
    "RUNNERS",
    "SNAPSHOT",
    "BwrapRunner",
    "ContainerRunner",
    "ProcessRunner",
    "SandboxRequest",
    "SandboxResult",
    "SandboxRunner",
    "make_runner",
    "preflight",
]

RUNNERS: dict[str, Callable[..., SandboxRunner]] = {
    "bwrap": BwrapRunner,
    "container": ContainerRunner,
    "docker": ContainerRunner,
    "process": ProcessRunner,
}


_NEEDS = {"bwrap": ("bwrap", "prlimit"), "process": ("prlimit",)}


def make_runner(
    name: str,
    *,
    image: str = "hub-exporter-bot:latest",
    container_cli: str = "docker",
    check: bool = False,
) -> SandboxRunner:
    """The runner for a backend name from the settings; ``check`` fails fast if its tools are missing."""
    if name not in RUNNERS:
        raise ConfigError(f"unknown sandbox {name!r} (known: {', '.join(RUNNERS)})")
    if name in ("container", "docker"):
        runner = ContainerRunner(image=image, cli=container_cli)
        if check:
            runner.engine()
        return runner
    missing = [tool for tool in _NEEDS[name] if check and shutil.which(tool) is None]
    if missing:
        raise SandboxUnavailableError(f"sandbox {name!r} needs {', '.join(missing)}: install it or choose another")
    return RUNNERS[name]()
