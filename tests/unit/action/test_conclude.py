"""What the action does after the export, without GitHub: outputs, summary, events without a pull request."""

from __future__ import annotations

from pathlib import Path

import pytest

from export_action.action import check_local_output_dir, conclude
from export_action.config import ActionConfig
from export_action.errors import OutputFolderNotOwnedError, ValidationGateError
from export_action.export import read_result
from export_action.manifest import MANIFEST_NAME, Manifest
from tests.e2e.action.runner import read_outputs
from tests.support.reports import write_report

SHA = "b" * 40


def _config(tmp_path: Path, **env: str) -> ActionConfig:
    (tmp_path / "models" / "m").mkdir(parents=True, exist_ok=True)
    (tmp_path / "output").touch()
    return ActionConfig.from_env(
        {
            "GITHUB_WORKSPACE": str(tmp_path),
            "GITHUB_REPOSITORY": "octo/models",
            "GITHUB_SHA": "a" * 40,
            "GITHUB_REF_NAME": "main",
            "GITHUB_OUTPUT": str(tmp_path / "output"),
            "GITHUB_STEP_SUMMARY": str(tmp_path / "summary"),
            "INPUT_MODEL": "models/m",
            "INPUT_GITHUB_TOKEN": "token",
            **env,
        }
    )


def _report(folder: Path, status: str, revision: str | None = None) -> Path:
    write_report(
        folder, status=status, files={"model.onnx": b"graph"}, revision=revision, markdown=f"## Export {status}\n"
    )
    return folder


@pytest.mark.parametrize("event", ["pull_request", "merge_group"])
def test_merge_checkout_events_export_but_open_nothing(tmp_path: Path, event: str, capsys) -> None:
    config = _config(tmp_path, GITHUB_EVENT_NAME=event, GITHUB_API_URL="http://127.0.0.1:9")
    outcome = conclude(config, read_result(_report(config.output_dir, "passed")))
    assert outcome.pull_request is None
    assert f"::warning::open-pr is ignored on {event} events" in capsys.readouterr().err
    outputs = read_outputs(tmp_path / "output")
    assert (outputs["status"], outputs["operation"], outputs["pr-number"], outputs["head-sha"]) == (
        "passed",
        "none",
        "",
        "",
    )
    manifest = Manifest.from_json((config.output_dir / MANIFEST_NAME).read_bytes())
    assert manifest is not None and sorted(manifest.files) == ["model.onnx", "report.md"]


def test_lenient_validation_failure_passes_with_a_summary_line(tmp_path: Path) -> None:
    config = _config(tmp_path, INPUT_FAIL_ON_VALIDATION_ERROR="false")
    outcome = conclude(config, read_result(_report(config.output_dir, "failed"), exit_code=1))
    assert outcome.pull_request is None and read_outputs(tmp_path / "output")["status"] == "failed"
    assert "Validation failed: no pull request was opened or updated." in (tmp_path / "summary").read_text()
    assert not (config.output_dir / MANIFEST_NAME).exists()  # nothing of a failed export is ever published
    with pytest.raises(ValidationGateError):
        conclude(_config(tmp_path), read_result(config.output_dir, exit_code=1))


def test_hub_exports_name_the_commit_for_the_cache_key(tmp_path: Path) -> None:
    config = _config(tmp_path, INPUT_MODEL="org/name", INPUT_OPEN_PR="false")
    conclude(config, read_result(_report(config.output_dir, "passed", revision=SHA)))
    assert read_outputs(tmp_path / "output")["hub-revision"] == SHA
    local = _config(tmp_path / "local", INPUT_OPEN_PR="false")
    conclude(local, read_result(_report(local.output_dir, "passed", revision=None)))
    assert "hub-revision" not in read_outputs(tmp_path / "local" / "output")


def test_local_output_folder_is_checked_against_its_manifest(tmp_path: Path) -> None:
    config = _config(tmp_path, INPUT_OPEN_PR="false")
    check_local_output_dir(config)  # absent: fine
    conclude(config, read_result(_report(config.output_dir, "passed")))
    check_local_output_dir(config)  # what an earlier run wrote, report.json included: fine
    (config.output_dir / "notes.md").write_text("mine")
    with pytest.raises(
        OutputFolderNotOwnedError, match=r"\(in the workspace\) holds files the action did not write \(notes.md\)"
    ):
        check_local_output_dir(config)
