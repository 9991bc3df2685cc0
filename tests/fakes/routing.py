"""The routing core both fake servers share: a route table and a loopback HTTP server in a thread.

A fake lists its endpoints as ``(method, path regex, handler)``; :meth:`Routes.resolve` finds the
handler and the named groups of its pattern, or raises :class:`NoRoute` with the status a real
server gives (404 for an unknown path, 405 for a known path and another method).
:class:`LoopbackServer` serves a ``BaseHTTPRequestHandler`` class on a free loopback port.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Generic, TypeVar

H = TypeVar("H")


class NoRoute(Exception):
    """No endpoint answers this request: ``status`` is 404 (unknown path) or 405 (other method)."""

    def __init__(self, status: int, method: str, path: str) -> None:
        super().__init__(f"{method} {path}: {status}")
        self.status = status


class Routes(Generic[H]):
    """An ordered table of endpoints; the first pattern that matches the whole path wins."""

    def __init__(self, table: Iterable[tuple[str, str, H]], prefix: str = "") -> None:
        self._table = [(method, re.compile(prefix + pattern), handler) for method, pattern, handler in table]

    def resolve(self, method: str, path: str) -> tuple[H, dict[str, str]]:
        """The handler for ``method path`` and the pattern's matched named groups."""
        path_known = False
        for route_method, pattern, handler in self._table:
            match = pattern.fullmatch(path)
            if match is None:
                continue
            path_known = True
            if route_method == method:
                return handler, {key: value for key, value in match.groupdict().items() if value is not None}
        raise NoRoute(405 if path_known else 404, method, path)


class LoopbackServer:
    """A threaded HTTP server on ``127.0.0.1`` (free port unless given), served from a daemon thread."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], name: str, host: str = "127.0.0.1", port: int = 0):
        class _Server(ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._server = _Server((host, port), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name=name, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def stop(self) -> None:
        """Stop serving and wait for the serving thread (requests still in flight are abandoned)."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
