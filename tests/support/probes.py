"""What the sandbox's limits look like from inside: a probe run as ``python -c PROBE OUTPUT PORT TMP_WRITE FORKS``.

It records into ``OUTPUT/probe.json``: ids, capabilities, no-new-privs and seccomp status, whether a
plain ``ptrace(PTRACE_TRACEME)`` (allowed to any process without a filter) succeeds (``ok``, else the errno), how much of
``TMP_WRITE`` bytes fit in ``/tmp``, how many of ``FORKS`` children could be forked, whether the
root filesystem is writable, whether a loopback port answers, and the environment's names.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bot.sandbox import SandboxRequest

PROBE = r"""
import ctypes, errno, json, os, signal, socket, sys, time
out, port, tmp_write, forks = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
status = dict(line.split(":\t", 1) for line in open("/proc/self/status").read().splitlines() if ":\t" in line)
seen = {
    "uid": os.getuid(), "gid": os.getgid(), "euid": os.geteuid(), "env": sorted(os.environ),
    "cap_eff": status["CapEff"].strip(), "cap_prm": status["CapPrm"].strip(),
    "cap_bnd": status["CapBnd"].strip(), "no_new_privs": status.get("NoNewPrivs", "").strip(),
    "seccomp": status.get("Seccomp", "").strip(),
}
libc = ctypes.CDLL(None, use_errno=True)
child = os.fork()
if child == 0:  # in a child that exits at once, so that nobody stays traced
    os._exit(0 if libc.ptrace(0, 0, None, None) == 0 else min(ctypes.get_errno(), 255))
code = os.waitstatus_to_exitcode(os.waitpid(child, 0)[1])
seen["ptrace_traceme"] = "ok" if code == 0 else errno.errorcode.get(code, str(code))
written = 0
try:
    with open("/tmp/fill", "wb") as f:
        block = b"\0" * (1 << 20)
        while written < tmp_write:
            f.write(block)
            f.flush()
            written += len(block)
    seen["tmp_error"] = None
except OSError as e:
    seen["tmp_error"] = errno.errorcode.get(e.errno, str(e.errno))
seen["tmp_written"] = written
os.unlink("/tmp/fill")
children = []
seen["fork_error"] = None
for _ in range(forks):
    try:
        pid = os.fork()
    except OSError as e:
        seen["fork_error"] = errno.errorcode.get(e.errno, str(e.errno))
        break
    if pid == 0:
        time.sleep(60)
        os._exit(0)
    children.append(pid)
seen["forked"] = len(children)
for pid in children:
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
try:
    open("/probe-root-write", "w").close()
    seen["root_writable"] = True
except OSError:
    seen["root_writable"] = False
try:
    socket.create_connection(("127.0.0.1", port), timeout=2).close()
    seen["connected"] = True
except OSError:
    seen["connected"] = False
with open(os.path.join(out, "probe.json"), "w") as f:
    json.dump(seen, f)
"""


def probe_args(output: str, port: int, tmp_write: int, forks: int) -> tuple[str, ...]:
    """The interpreter arguments that run the probe."""
    return ("-c", PROBE, output, str(port), str(tmp_write), str(forks))


def read_probe(output: Path) -> dict[str, object]:
    return dict(json.loads((output / "probe.json").read_text()))


def sandbox_request(
    tmp_path: Path, *args: str, timeout: float = 60, memory: int = 2 << 30, small_limits: bool = False
) -> SandboxRequest:
    """A request over ``tmp_path/snapshot`` and ``tmp_path/output``; ``small_limits``: 32 processes and
    8 MiB of ``/tmp``, which a probe reaches quickly."""
    (tmp_path / "snapshot").mkdir(parents=True, exist_ok=True)
    (tmp_path / "output").mkdir(exist_ok=True)
    limits: dict[str, Any] = {"max_processes": 32, "tmp_bytes": 8 << 20} if small_limits else {}
    return SandboxRequest(
        args=args,
        snapshot_dir=tmp_path / "snapshot",
        output_dir=tmp_path / "output",
        timeout=timeout,
        memory_bytes=memory,
        **limits,
    )
