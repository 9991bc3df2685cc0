"""Run the fake Hub standalone: `python -m tests.fakes.hub --port 8765`."""

from __future__ import annotations

import argparse
import threading

from . import DEFAULT_TOKENS, FakeHub


def main() -> None:
    """Serve until interrupted; prints the endpoint and the default tokens."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    hub = FakeHub().start(args.host, args.port)
    print(f"Fake Hub listening on {hub.url}", flush=True)
    for token, info in DEFAULT_TOKENS.items():
        print(f"  token {token}: user={info.user} role={info.role}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        hub.stop()


if __name__ == "__main__":
    main()
