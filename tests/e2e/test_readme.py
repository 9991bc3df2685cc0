"""The README is the front door: its Quickstart commands and generated table must be the ones that work."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from exporter.readme import render

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def quickstart_commands() -> list[str]:
    section = README.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", section, re.DOTALL)]


def test_quickstart_is_two_commands() -> None:
    commands = quickstart_commands()
    assert len(commands) == 2
    assert all("\n" not in command for command in commands)


def test_ci_runs_the_readme_test_command() -> None:
    test_command = quickstart_commands()[1]
    lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert test_command in lines
    install = quickstart_commands()[0].split(" && ")
    assert install[0] in lines  # same venv
    assert any(install[1] in line for line in lines)  # same install


@pytest.mark.slow
def test_quickstart_main_job_runs(tmp_path: Path) -> None:
    """Run the first command's job (the installed console script) exactly as the README writes it."""
    _install, job = quickstart_commands()[0].rsplit(" && ", 1)
    assert job.startswith(".venv/bin/exporter quickstart ")
    script = Path(sys.executable).with_name("exporter")
    args = job.split()[1:]
    result = subprocess.run([str(script), *args], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    target = tmp_path / args[-1] / "export"
    assert (target / "model.onnx").is_file() and (target / "model.pt").is_file()
    assert '"status": "passed"' in (target / "report.json").read_text()


def test_support_table_is_current() -> None:
    assert render(README) == README, "run `python -m exporter.readme` to regenerate the table"
