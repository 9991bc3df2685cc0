"""The sandbox on its own, proven with a hostile script and a hostile pickle (no exporter involved)."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.sandbox import (
    CACHE,
    OUTPUT,
    SNAPSHOT,
    BwrapRunner,
    ContainerRunner,
    ProcessRunner,
    SandboxRequest,
    make_runner,
    preflight,
)
from bot.sandbox.seccomp import DENIED_SYSCALLS, compiled_filter
from tests.support.hostile import ATTACK, Listener, hostile_pickle, pickle_attack
from tests.support.probes import probe_args, read_probe, sandbox_request

TOKEN = "hf_SECRET_token_never_in_sandbox"


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener()
    yield server
    server.close()


@pytest.fixture
def secrets_around(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The bot's token in its environment and in a token file under its HOME."""
    home = tmp_path / "bot-home"
    token_file = home / ".cache" / "huggingface" / "token"
    token_file.parent.mkdir(parents=True)
    token_file.write_text(TOKEN)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setenv("HOME", str(home))
    return token_file


def request(tmp_path: Path, *args: str, timeout: float = 60) -> SandboxRequest:
    return sandbox_request(tmp_path, *args, timeout=timeout)


def all_output_text(output: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in output.rglob("*") if p.is_file())


@pytest.mark.bwrap
def test_hostile_script_gets_nothing_under_bwrap(tmp_path: Path, listener: Listener, secrets_around: Path) -> None:
    outside = tmp_path / "outside.txt"
    result = BwrapRunner().run(
        request(tmp_path, "-c", ATTACK, OUTPUT, str(listener.port), str(secrets_around), str(outside))
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads((tmp_path / "output" / "observed.json").read_text())
    assert seen["env_token"] is None and "HF_TOKEN" not in seen["env"]
    assert "file_token" not in seen and seen["file_token_error"] == "FileNotFoundError"
    assert seen["connected"] is False and seen["wrote_outside"] is False
    assert seen.get("home_tokens") == []
    assert listener.connections == 0 and not outside.exists()
    assert TOKEN not in all_output_text(tmp_path / "output") + result.stdout + result.stderr


@pytest.mark.bwrap
def test_hostile_pickle_gets_nothing_under_bwrap(tmp_path: Path, listener: Listener, secrets_around: Path) -> None:
    """Even a plain ``pickle.load`` (no weights_only) of the payload inside the sandbox is harmless."""
    outside = tmp_path / "outside.txt"
    (tmp_path / "snapshot").mkdir()
    (tmp_path / "snapshot" / "pytorch_model.bin").write_bytes(
        hostile_pickle(pickle_attack("/output", listener.port, secrets_around, outside))
    )
    load = "import pickle; pickle.load(open('/snapshot/pytorch_model.bin', 'rb'))"
    result = BwrapRunner().run(request(tmp_path, "-c", load))
    assert result.returncode == 0, result.stderr
    seen = json.loads((tmp_path / "output" / "observed.json").read_text())
    assert seen["env_token"] is None and "file_token" not in seen
    assert seen["connected"] is False and seen["wrote_outside"] is False
    assert listener.connections == 0 and not outside.exists()
    assert TOKEN not in all_output_text(tmp_path / "output")


def test_control_without_isolation_the_attack_works(tmp_path: Path, listener: Listener, secrets_around: Path) -> None:
    """The same script under the ``process`` backend reaches the network and the disk: the test has teeth.

    (Even here the token is not in the environment, which every backend clears.)
    """
    outside = tmp_path / "outside.txt"
    result = ProcessRunner().run(
        request(tmp_path, "-c", ATTACK, OUTPUT, str(listener.port), str(secrets_around), str(outside))
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads((tmp_path / "output" / "observed.json").read_text())
    assert seen["env_token"] is None
    assert seen["file_token"] == TOKEN and seen["connected"] is True and outside.exists()


@pytest.mark.bwrap
def test_snapshot_is_read_only_and_output_writable(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "try:\n    open(sys.argv[1] + '/x', 'w'); print('snapshot writable')\n"
        "except OSError as e:\n    print('snapshot', type(e).__name__)\n"
        "open(sys.argv[2] + '/y', 'w').write('ok')\n"
    )
    result = BwrapRunner().run(request(tmp_path, "-c", code, SNAPSHOT, OUTPUT))
    assert result.stdout.strip() == "snapshot OSError", result.stderr
    assert (tmp_path / "output" / "y").read_text() == "ok"
    assert not (tmp_path / "snapshot" / "x").exists()


@pytest.mark.bwrap
def test_time_limit_kills_the_process_group(tmp_path: Path) -> None:
    code = "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); time.sleep(60)"
    result = BwrapRunner().run(request(tmp_path, "-c", code, timeout=2))
    assert result.timed_out and result.seconds < 10


@pytest.mark.bwrap
def test_memory_limit(tmp_path: Path) -> None:
    code = "x = bytearray(3 << 30)"
    result = BwrapRunner().run(request(tmp_path, "-c", code))
    assert result.returncode == 1 and "MemoryError" in result.stderr


def test_docker_command_line(tmp_path: Path) -> None:
    req = request(tmp_path, "-m", "exporter", "export", "--model", SNAPSHOT, OUTPUT)
    argv = ContainerRunner(image="hub-exporter-bot:test", cli="sh").command(req, "c1")
    joined = " ".join(argv)
    for part in (
        "--rm",
        "--network none",
        "--read-only",
        f"--memory {2 << 30}",
        "--cap-drop ALL",
        "--security-opt no-new-privileges",
        f"{tmp_path / 'snapshot'}:/snapshot:ro",
        f"{tmp_path / 'output'}:/output:rw",
        "--env HF_HUB_OFFLINE=1",
    ):
        assert part in joined
    assert argv[-8:] == [
        "hub-exporter-bot:test",
        "python",
        "-m",
        "exporter",
        "export",
        "--model",
        "/snapshot",
        "/output",
    ]
    assert "HF_TOKEN" not in joined and os.environ.get("HF_TOKEN", "§") not in joined


@pytest.mark.bwrap
def test_bwrap_command_line_never_carries_the_token(tmp_path: Path, secrets_around: Path) -> None:
    argv = BwrapRunner().command(request(tmp_path, "-c", "pass"))
    joined = " ".join(argv)
    assert "--unshare-all" in argv and "--clearenv" in argv and "--die-with-parent" in argv
    assert TOKEN not in joined and str(secrets_around.parent) not in joined
    assert str(Path(sys.prefix).resolve()) in joined


def test_make_runner() -> None:
    assert make_runner("bwrap").name == "bwrap"
    assert make_runner("docker", image="img").name == "container"
    with pytest.raises(ValueError, match="unknown sandbox"):
        make_runner("chroot")


def limited_request(tmp_path: Path, *args: str) -> SandboxRequest:
    """A request with small process and ``/tmp`` limits the probe can reach quickly."""
    return sandbox_request(tmp_path, *args, small_limits=True)


@pytest.mark.bwrap
def test_probe_inside_bwrap_every_limit_holds(tmp_path: Path, listener: Listener, secrets_around: Path) -> None:
    """Unprivileged, no capabilities, no new privileges, seccomp, /tmp capped, fork bomb stopped, no network."""
    result = BwrapRunner().run(limited_request(tmp_path, *probe_args(OUTPUT, listener.port, 64 << 20, 200)))
    assert result.returncode == 0, result.stderr
    seen = read_probe(tmp_path / "output")
    assert seen["uid"] == seen["euid"] == seen["gid"] == 65534
    assert seen["cap_eff"] == seen["cap_prm"] == seen["cap_bnd"] == "0000000000000000"
    assert seen["no_new_privs"] == "1" and seen["seccomp"] == "2"
    assert seen["ptrace_traceme"] == "EPERM"
    assert seen["tmp_error"] == "ENOSPC" and seen["tmp_written"] <= 8 << 20  # type: ignore[operator]
    assert seen["fork_error"] == "EAGAIN" and seen["forked"] < 32  # type: ignore[operator]
    assert seen["root_writable"] is False and seen["connected"] is False and listener.connections == 0
    assert "HF_TOKEN" not in seen["env"]  # type: ignore[operator]


@pytest.mark.bwrap
def test_probe_control_without_seccomp_ptrace_works(tmp_path: Path, listener: Listener) -> None:
    """The ptrace probe has teeth: without the filter the same call succeeds in the same sandbox."""
    result = BwrapRunner(seccomp=False).run(limited_request(tmp_path, *probe_args(OUTPUT, listener.port, 0, 0)))
    assert result.returncode == 0, result.stderr
    seen = read_probe(tmp_path / "output")
    assert seen["seccomp"] == "0" and seen["ptrace_traceme"] == "ok"


def test_probe_control_process_backend_forks_freely(tmp_path: Path, listener: Listener) -> None:
    """Without a sandbox the fork bomb and /tmp fill go past the limits the bwrap test expects."""
    result = ProcessRunner().run(limited_request(tmp_path, *probe_args(OUTPUT, listener.port, 0, 40)))
    assert result.returncode == 0, result.stderr
    seen = read_probe(tmp_path / "output")
    assert seen["forked"] == 40 and seen["fork_error"] is None and seen["connected"] is True
    assert seen["ptrace_traceme"] == "ok"


def _export_cgroups() -> list[Path]:
    return [p for p in Path("/sys/fs/cgroup").glob("**/export-bot-*") if p.is_dir()]


@pytest.mark.bwrap
def test_bwrap_preflight_and_no_cgroup_left_behind(tmp_path: Path) -> None:
    before = _export_cgroups()
    preflight(BwrapRunner())
    assert _export_cgroups() == before
    with pytest.raises(FileNotFoundError, match="bwrap not found"):
        preflight(BwrapRunner(bwrap="no-such-bwrap"))


def test_seccomp_filter_compiles_to_bpf() -> None:
    """libseccomp is on every machine with bubblewrap or podman from Debian: the filter must compile."""
    program = compiled_filter()
    assert program is not None and len(program) % 8 == 0 and len(program) > 8 * len(DENIED_SYSCALLS) // 2


CACHE_PROBE = """
import json, os, sys
os.makedirs('/cache/entry', exist_ok=True)
open('/cache/entry/graph', 'w').write('x')
sibling = sys.argv[2]
try:
    open(sibling + '/planted', 'w').write('x')
    planted = True
except OSError:
    planted = False
json.dump({'cache': sorted(os.listdir('/cache')), 'sibling_seen': os.path.exists(sibling), 'planted': planted},
          open(sys.argv[1] + '/cache.json', 'w'))
"""


@pytest.mark.bwrap
def test_bwrap_binds_only_the_repos_own_cache_folder_writable(tmp_path: Path) -> None:
    """One repo's export writes its cache folder; another repo's folder is neither visible nor writable."""
    mine, other = tmp_path / "cache" / "repo-a", tmp_path / "cache" / "repo-b"
    mine.mkdir(parents=True)
    other.mkdir()
    (mine / "old").write_text("kept")
    req = dataclasses.replace(request(tmp_path, "-c", CACHE_PROBE, OUTPUT, str(other)), cache_dir=mine)
    result = BwrapRunner().run(req)
    assert result.returncode == 0, result.stderr
    seen = json.loads((tmp_path / "output" / "cache.json").read_text())
    assert seen == {"cache": ["entry", "old"], "sibling_seen": False, "planted": False}
    assert (mine / "entry" / "graph").read_text() == "x"
    assert list(other.iterdir()) == []


def test_container_command_line_mounts_the_repos_cache(tmp_path: Path) -> None:
    mine = tmp_path / "cache" / "repo-a"
    req = dataclasses.replace(request(tmp_path, "-m", "exporter", "export", CACHE, OUTPUT), cache_dir=mine)
    argv = ContainerRunner(image="hub-exporter-bot:test", cli="sh").command(req, "c1")
    assert f"{mine}:/cache:rw" in " ".join(argv) and argv[-2:] == ["/cache", "/output"]
    assert ":/cache" not in " ".join(ContainerRunner(image="i", cli="sh").command(request(tmp_path, "-c", "")))
