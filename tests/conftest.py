"""Shared fixtures: offline guards, system-tool requirements, tiny checkpoints built locally.

Tests that need a system tool carry its marker (``bwrap``, ``redis``, ``podman``, ``node``,
``optimum`` …); on a machine without the tool they are skipped with a reason that says how to get
it (the ``optimum`` venv is built on first need, and its build error is the reason). ``.ci/run``
installs every tool and sets ``HUB_EXPORTER_REQUIRE`` (e.g. ``bwrap,redis``): a required tool that
is missing then fails the test instead, so CI cannot pass by skipping.
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# No test may reach the real Hub: point the client at a closed port unless a test starts a fake Hub.
os.environ.setdefault("HF_ENDPOINT", "http://127.0.0.1:9")
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("OMP_NUM_THREADS", "1")

pytest_plugins = ["tests.support.bot_fixtures"]

_real_connect = socket.socket.connect
#: The Node project of the client-parity tests (transformers.js 3 and 4).
CLIENTS = Path(__file__).parent / "clients"


def _redis_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


#: The container engine and image the ``podman`` tests use (scripts/build-image.sh builds the image).
PODMAN_CLI = "podman --runtime runc --cgroup-manager=cgroupfs"
TEST_IMAGE = os.environ.get("HUB_EXPORTER_TEST_IMAGE", "hub-exporter-bot:latest")


def _podman_ready() -> bool:
    if shutil.which("podman") is None or shutil.which("runc") is None:
        return False
    import subprocess

    return subprocess.run(["podman", "image", "exists", TEST_IMAGE], capture_output=True, check=False).returncode == 0


_optimum_error: list[str] = []


def _optimum_ready() -> bool:
    """Build the Optimum venv (tests/support/optimum.py) unless it is there; False, and why, if it cannot be."""
    from tests.support.optimum import OptimumVenvError, ensure_optimum_venv

    try:
        ensure_optimum_venv()
    except OptimumVenvError as e:
        _optimum_error.append(str(e))
        return False
    return True


#: marker → (is the tool there?, how to get it: a text, or a function that says why it is missing)
SYSTEM_TOOLS: dict[str, tuple[Callable[[], bool], str | Callable[[], str]]] = {
    "bwrap": (lambda: shutil.which("bwrap") is not None, "bubblewrap is not installed (apt-get install bubblewrap)"),
    "redis": (_redis_answers, "no Redis server on 127.0.0.1:6379 (apt-get install redis-server; see .ci/run)"),
    "git_lfs": (lambda: shutil.which("git-lfs") is not None, "git-lfs is not installed (apt-get install git-lfs)"),
    "podman": (
        _podman_ready,
        f"podman + runc or the image {TEST_IMAGE} missing (apt-get install podman runc; scripts/build-image.sh)",
    ),
    "node": (
        lambda: shutil.which("node") is not None and (CLIENTS / "node_modules").is_dir(),
        "Node.js or transformers.js is missing: run `npm ci --ignore-scripts` in tests/clients",
    ),
    "optimum": (_optimum_ready, lambda: f"the Optimum venv did not build: {_optimum_error[-1]}"),
}
_available: dict[str, bool] = {}


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip a test whose system tool is missing, or fail it when ``HUB_EXPORTER_REQUIRE`` names the tool."""
    required = {name.strip() for name in os.environ.get("HUB_EXPORTER_REQUIRE", "").split(",") if name.strip()}
    for marker, (present, reason) in SYSTEM_TOOLS.items():
        if item.get_closest_marker(marker) is None:
            continue
        if marker not in _available:
            _available[marker] = present()
        if not _available[marker]:
            reason = reason() if callable(reason) else reason
            if marker in required:
                pytest.fail(f"{reason}, and HUB_EXPORTER_REQUIRE requires it")
            pytest.skip(reason)


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
