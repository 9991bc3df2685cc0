"""The routing core of the fake servers: first full match wins, 404 and 405 as a real server answers."""

from __future__ import annotations

import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler

import pytest

from tests.fakes.routing import LoopbackServer, NoRoute, Routes

ROUTES = Routes([("GET", r"/repos/(?P<name>[^/]+)", "get"), ("POST", r"/repos/(?P<name>[^/]+)", "post")], prefix="/api")


def test_resolve_returns_the_handler_and_named_groups() -> None:
    assert ROUTES.resolve("GET", "/api/repos/tiny") == ("get", {"name": "tiny"})
    assert ROUTES.resolve("POST", "/api/repos/tiny") == ("post", {"name": "tiny"})


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("DELETE", "/api/repos/tiny", 405), ("GET", "/api/repos/tiny/extra", 404), ("GET", "/repos/tiny", 404)],
)
def test_unknown_routes_answer_like_a_server(method: str, path: str, status: int) -> None:
    with pytest.raises(NoRoute) as raised:
        ROUTES.resolve(method, path)
    assert raised.value.status == status


def test_loopback_server_serves_a_handler_and_stops() -> None:
    class Hello(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "5")
            self.end_headers()
            self.wfile.write(b"hello")

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = LoopbackServer(Hello, "hello")
    url = server.url
    assert url.startswith("http://127.0.0.1:")
    with urllib.request.urlopen(url) as answer:
        assert answer.read() == b"hello"
    server.stop()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url, timeout=2)
