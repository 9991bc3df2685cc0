"""Shared fixtures: offline guards and tiny checkpoints built locally."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

# No test may reach the real Hub: point the client at a closed port unless a test starts a fake Hub.
os.environ.setdefault("HF_ENDPOINT", "http://127.0.0.1:9")
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("OMP_NUM_THREADS", "1")

_real_connect = socket.socket.connect


def _loopback_only(self: socket.socket, address: object) -> object:
    host = address[0] if isinstance(address, tuple) else address
    remote = isinstance(host, str) and host not in ("::1", "localhost") and not host.startswith("127.")
    if remote and self.family in (socket.AF_INET, socket.AF_INET6):
        raise OSError(f"test tried to reach {host}: only loopback is allowed")
    return _real_connect(self, address)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _network_guard(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fail loudly on any connection that leaves the machine."""
    monkeypatch.setattr(socket.socket, "connect", _loopback_only)
    yield


@pytest.fixture(scope="session")
def checkpoint_factory(tmp_path_factory: pytest.TempPathFactory):
    """``make(model_type, task) -> Path`` of a tiny checkpoint, built once per session."""
    from exporter.sample import build_sample_checkpoint

    cache: dict[tuple[str, str], Path] = {}

    def make(model_type: str, task: str) -> Path:
        key = (model_type, task)
        if key not in cache:
            path = tmp_path_factory.mktemp(f"{model_type}-{task}")
            cache[key] = build_sample_checkpoint(path, model_type, task)
        return cache[key]

    return make
