"""The container backend for real, with Podman + runc and the project's image (scripts/build-image.sh).

The same probe as the bwrap tests (tests/support/probes.py), a memory limit, a timeout that must
kill the container, and a real export of a tiny checkpoint checked like the bot checks it.
"""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bot.pipeline.check import check_output
from bot.pipeline.repo_config import RepoConfig
from bot.pipeline.sandboxed_export import ExportLimits, export_in_sandbox
from bot.sandbox import OUTPUT, ContainerRunner, SandboxRequest, preflight
from tests.conftest import PODMAN_CLI, TEST_IMAGE
from tests.support.hostile import ATTACK, Listener
from tests.support.probes import probe_args, read_probe, sandbox_request

pytestmark = pytest.mark.podman


@pytest.fixture
def runner() -> ContainerRunner:
    return ContainerRunner(image=TEST_IMAGE, cli=PODMAN_CLI)


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener()
    yield server
    server.close()


def request(tmp_path: Path, *args: str, timeout: float = 120, memory: int = 2 << 30) -> SandboxRequest:
    return sandbox_request(tmp_path, *args, timeout=timeout, memory=memory, small_limits=True)


def containers(output: Path) -> list[str]:
    """The containers, running or not, whose export writes into ``output``."""
    label = f"label=export-bot.output={output.resolve()}"
    out = subprocess.run(
        [*PODMAN_CLI.split(), "ps", "--all", "--filter", label, "--format", "{{.Names}}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.split()


def test_probe_inside_the_container_every_limit_holds(
    tmp_path: Path, runner: ContainerRunner, listener: Listener, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_SECRET_token_never_in_sandbox")
    result = runner.run(request(tmp_path, *probe_args(OUTPUT, listener.port, 64 << 20, 200)))
    assert result.returncode == 0, result.stderr
    seen = read_probe(tmp_path / "output")
    assert seen["uid"] == seen["gid"] == 1000
    assert seen["cap_eff"] == seen["cap_prm"] == "0000000000000000"
    assert seen["no_new_privs"] == "1" and seen["seccomp"] == "2"
    assert seen["tmp_error"] == "ENOSPC" and seen["tmp_written"] <= 8 << 20  # type: ignore[operator]
    assert seen["fork_error"] == "EAGAIN" and seen["forked"] < 32  # type: ignore[operator]
    assert seen["root_writable"] is False and seen["connected"] is False and listener.connections == 0
    assert "HF_TOKEN" not in seen["env"]  # type: ignore[operator]
    # The output was writable by the container's uid (the probe wrote it), nobody else on the host can
    # enter it, and it is root's again once the container has ended.
    assert (tmp_path / "output").stat().st_uid == (tmp_path / "output" / "probe.json").stat().st_uid == 0
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "output").stat().st_mode) == 0o700


def test_memory_limit_in_the_container(
    tmp_path: Path, runner: ContainerRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code = "x = bytearray(768 << 20); print('allocated')"
    result = runner.run(request(tmp_path, "-c", code, memory=256 << 20))
    assert result.returncode != 0 and "allocated" not in result.stdout
    assert not (tmp_path / "oom").exists()  # the engine's OOM marker stays out of the bot's folder
    control = runner.run(request(tmp_path / "c", "-c", "x = bytearray(64 << 20); print('allocated')", memory=256 << 20))
    assert control.returncode == 0 and control.stdout.strip() == "allocated", control.stderr


def test_timeout_kills_the_container(tmp_path: Path, runner: ContainerRunner) -> None:
    req = request(tmp_path, "-c", "import time; time.sleep(120)", timeout=12)
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(runner.run, req)
        deadline = time.monotonic() + 15
        while not containers(req.output_dir) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert containers(req.output_dir), "the container never showed up"  # the check below has teeth
        result = running.result()
    assert result.timed_out and result.seconds < 80
    assert containers(req.output_dir) == []


def test_preflight_passes_and_fails_on_a_missing_image(runner: ContainerRunner) -> None:
    preflight(runner)
    with pytest.raises(FileNotFoundError, match=r"sandbox 'container' cannot run a command here: .*no-such-image"):
        preflight(ContainerRunner(image="localhost/no-such-image:1", cli=PODMAN_CLI))


@pytest.mark.slow
@pytest.mark.heavy  # about a minute on a loaded 2-core machine: .ci/run's heavy tier runs it
def test_real_export_in_the_container(
    tmp_path: Path, runner: ContainerRunner, checkpoint_factory: Callable[[str, str], Path]
) -> None:
    """A tiny checkpoint exported in the image: the files and the report pass the bot's own check."""
    checkpoint = checkpoint_factory("bert", "sequence-classification")
    snapshot = tmp_path / "job" / "snapshot"
    shutil.copytree(checkpoint, snapshot)
    output = tmp_path / "job" / "output-0"
    limits = ExportLimits(timeout=600, memory_bytes=4 << 30, max_file_bytes=1 << 30, threads=2)
    export_in_sandbox(runner, snapshot, output, RepoConfig(), None, limits)
    checked = check_output(output, formats=["onnx", "torchscript"], prefix="", max_bytes=1 << 30)
    assert any(path.endswith("model.onnx") for path in checked.files)
    assert (output / "report.json").is_file()


def test_hostile_script_gets_nothing_in_the_container(
    tmp_path: Path, runner: ContainerRunner, listener: Listener, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bwrap tests' attack (tests/support/hostile.py): token from env and file, network, writes outside."""
    token = "hf_SECRET_token_never_in_sandbox"
    token_file = tmp_path / "home" / ".cache" / "huggingface" / "token"
    token_file.parent.mkdir(parents=True)
    token_file.write_text(token)
    monkeypatch.setenv("HF_TOKEN", token)
    outside = tmp_path / "outside.txt"
    req = request(tmp_path / "job", "-c", ATTACK, OUTPUT, str(listener.port), str(token_file), str(outside))
    result = runner.run(req)
    assert result.returncode == 0, result.stderr
    seen = json.loads((req.output_dir / "observed.json").read_text())
    assert seen["env_token"] is None and "file_token" not in seen and seen["file_token_error"] == "FileNotFoundError"
    assert seen["connected"] is False and seen["wrote_outside"] is False and seen.get("home_tokens") == []
    assert listener.connections == 0 and not outside.exists()
    assert token not in (req.output_dir / "observed.json").read_text() + result.stdout + result.stderr
