"""Fixtures of the Action's end-to-end tests: the fake GitHub, a loopback torch index, the emulated runner."""

from __future__ import annotations

import hashlib
import os
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, unquote

import pytest

from tests.e2e.action.runner import CacheService, Runner
from tests.fakes.github import FakeGitHub

#: Where this machine keeps PyTorch's CPU wheel (the file the CPU index serves, same sha256).
TORCH_WHEELS = Path(os.environ.get("HUB_EXPORTER_TORCH_WHEELS", "/opt/wheels"))
#: uv's download cache, kept between test sessions on this machine (a hosted runner starts without).
MACHINE_CACHE = Path.home() / ".cache" / "hub-exporter-tests"


def _tls_env() -> dict[str, str]:
    """This machine's CA bundle for uv (its HTTPS goes through a proxy whose CA only the system trusts)."""
    bundle = os.environ.get("SSL_CERT_FILE") or "/etc/ssl/certs/ca-certificates.crt"
    return {"SSL_CERT_FILE": bundle} if Path(bundle).is_file() else {}


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    with FakeGitHub() as server:
        yield server
        assert server.errors == [], server.errors[0]


@pytest.fixture(scope="session")
def torch_index() -> Iterator[str]:
    """A PEP 503 simple index on loopback with the torch wheel(s) of ``TORCH_WHEELS``."""
    wheels = sorted(TORCH_WHEELS.glob("torch-*.whl")) if TORCH_WHEELS.is_dir() else []
    if not wheels:
        pytest.skip(f"no torch wheel in {TORCH_WHEELS} (set HUB_EXPORTER_TORCH_WHEELS)")
    digests = {w.name: hashlib.sha256(w.read_bytes()).hexdigest() for w in wheels}

    class Index(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            path = unquote(self.path.split("?")[0])
            if path.rstrip("/") == "/whl/cpu/torch":
                links = "".join(f'<a href="{quote(n)}#sha256={d}">{n}</a>\n' for n, d in digests.items())
                self._send(f"<!DOCTYPE html><html><body>\n{links}</body></html>".encode(), "text/html")
            elif path.startswith("/whl/cpu/torch/") and (TORCH_WHEELS / Path(path).name).is_file():
                self._send((TORCH_WHEELS / Path(path).name).read_bytes(), "application/octet-stream")
            else:
                self.send_error(404)

        def _send(self, data: bytes, kind: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Index)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/whl/cpu"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def runner(tmp_path_factory: pytest.TempPathFactory, torch_index: str) -> Iterator[Runner]:
    """One runner machine and cache service for the session: the first run installs, later ones restore.

    Removed at the end of the session: its venvs hold tens of thousands of files, which pytest would
    otherwise leave for a later session (anyone's, under the same /tmp/pytest-of-user) to delete.
    """
    root = tmp_path_factory.mktemp("runner")
    yield Runner(
        root=root,
        cache=CacheService(root / "cache-service"),
        overrides={("install", "TORCH_INDEX_URL"): torch_index},
        machine_env={"XDG_CACHE_HOME": str(MACHINE_CACHE), **_tls_env()},
    )
    trash = root.with_name(root.name + ".deleting")
    root.rename(trash)  # then delete it without holding up the end of the session
    # a shell that backgrounds rm and exits: nothing is left for this process to reap
    subprocess.run(["sh", "-c", 'rm -rf -- "$1" &', "sh", str(trash)], check=True, start_new_session=True)
