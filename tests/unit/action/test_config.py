"""Action inputs and runner variables → :class:`ActionConfig`; the exporter's command and environment."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from export_action.config import LFS_THRESHOLD_BYTES, ActionConfig
from export_action.errors import InputError
from export_action.export import exporter_command, exporter_env
from export_action.gha import set_outputs
from tests.e2e.action.runner import read_outputs

REPO = "octo/models"
MODEL = "models/tiny-bert"
BRANCH = "exporter/models-tiny-bert"
EXPORT_DIR = "exports/models-tiny-bert"


@pytest.fixture
def runner_env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / MODEL).mkdir(parents=True)
    return {
        "GITHUB_WORKSPACE": str(tmp_path),
        "GITHUB_REPOSITORY": REPO,
        "GITHUB_SHA": "a" * 40,
        "GITHUB_REF_NAME": "main",
        "GITHUB_REF_TYPE": "branch",
        "INPUT_MODEL": MODEL,
        "INPUT_GITHUB_TOKEN": "token",
    }


def test_defaults(runner_env: dict[str, str], tmp_path: Path) -> None:
    config = ActionConfig.from_env({**runner_env, "INPUT_MODEL": f"./{MODEL}/", "INPUT_HF_TOKEN": "hf_x"})
    assert config.model == MODEL and config.model_is_local
    assert config.output_dir == tmp_path / "exports" / "models-tiny-bert"
    assert config.output_repo_path == EXPORT_DIR
    assert config.pr_branch == BRANCH
    assert config.pr_title == f"Export ./{MODEL}/ to ONNX and TorchScript"
    assert (config.formats, config.open_pr, config.fail_on_validation_error) == (
        ("onnx", "torchscript"),
        True,
        True,
    )
    assert (config.base_branch, config.lfs_threshold, config.server_url) == (
        "main",
        LFS_THRESHOLD_BYTES,
        "https://github.com",
    )
    assert "token" not in repr(config) and "hf_x" not in repr(config)


def test_hub_ids_and_explicit_values(runner_env: dict[str, str]) -> None:
    config = ActionConfig.from_env(
        {
            **runner_env,
            "INPUT_MODEL": "google-bert/bert-base-uncased",
            "INPUT_REVISION": "v1.0",
            "INPUT_OPSET": "17",
            "INPUT_ATOL": "1e-3",
            "INPUT_RTOL": "0.01",
            "INPUT_DTYPES": "q8, fp32",
            "INPUT_FORMATS": "torchscript, onnx, onnx",
            "INPUT_OPEN_PR": "False",
            "INPUT_FAIL_ON_VALIDATION_ERROR": "FALSE",
            "GITHUB_REF_TYPE": "tag",
            "GITHUB_SERVER_URL": "https://ghe.example.com/",
            "EXPORT_ACTION_LFS_THRESHOLD_BYTES": "0",
        }
    )
    assert (config.model, config.model_is_local, config.revision) == (
        "google-bert/bert-base-uncased",
        False,
        "v1.0",
    )
    assert (config.opset, config.atol, config.formats) == (17, 1e-3, ("torchscript", "onnx"))
    assert (config.open_pr, config.fail_on_validation_error, config.base_branch) == (False, False, None)
    assert (config.server_url, config.lfs_threshold) == ("https://ghe.example.com", 0)
    assert config.pr_branch == "exporter/google-bert-bert-base-uncased"
    command = exporter_command(config)
    assert command[1:] == [
        "-I", "-m", "exporter", "export", "--model", "google-bert/bert-base-uncased", "--revision", "v1.0",
        "--opset", "17", "--atol", "0.001", "--rtol", "0.01", "--dtypes", "fp32,q8", "--formats", "torchscript,onnx", str(config.output_dir),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"INPUT_MODEL": ""}, "input 'model' is required"),
        ({"INPUT_MODEL": "models/../../etc"}, "is neither a folder in the workspace"),
        ({"INPUT_MODEL": "a/b/c"}, "is neither a folder in the workspace"),
        ({"INPUT_REVISION": "main"}, "'revision' applies to Hub repo ids only"),
        ({"INPUT_OPSET": "eighteen"}, "input 'opset': 'eighteen' is not an integer"),
        ({"INPUT_OPSET": "3"}, "input 'opset': 3 is out of range"),
        ({"INPUT_ATOL": "small"}, "input 'atol': 'small' is not a number"),
        ({"INPUT_ATOL": "-1"}, "input 'atol': '-1' must be a finite number >= 0"),
        ({"INPUT_ATOL": "nan"}, "must be a finite number"),
        ({"INPUT_RTOL": "-0.1"}, "input 'rtol': '-0.1' must be a finite number >= 0"),
        ({"INPUT_DTYPES": "fp32,int4"}, "input 'dtypes': 'fp32,int4' must be a comma-separated subset"),
        ({"INPUT_FORMATS": "onnx,tflite"}, "input 'formats': 'onnx,tflite' must be a comma-separated subset"),
        ({"INPUT_OPEN_PR": "yes"}, "input 'open-pr': 'yes' is not a boolean; use true or false"),
        ({"INPUT_FAIL_ON_VALIDATION_ERROR": "0"}, "input 'fail-on-validation-error': '0' is not a boolean"),
        ({"INPUT_PR_BRANCH": "feature..x"}, "input 'pr-branch': 'feature..x' is not a valid git branch name"),
        ({"INPUT_PR_BRANCH": "a b"}, "is not a valid git branch name"),
        ({"INPUT_PR_BRANCH": "x.lock"}, "is not a valid git branch name"),
        ({"INPUT_PR_TITLE": "t" * 257}, "input 'pr-title' is 257 characters; GitHub allows at most 256"),
        ({"INPUT_OUTPUT_DIR": "../elsewhere"}, "must be a folder inside the workspace"),
        ({"INPUT_OUTPUT_DIR": "."}, "must be a folder inside the workspace"),
        ({"INPUT_OUTPUT_DIR": MODEL}, "overlaps the checkpoint folder"),
        ({"INPUT_OUTPUT_DIR": "models"}, "overlaps the checkpoint folder"),
        ({"INPUT_OUTPUT_DIR": f"{MODEL}/onnx"}, "overlaps the checkpoint folder"),
        ({"INPUT_GITHUB_TOKEN": ""}, "input 'github-token' is empty"),
        ({"GITHUB_REPOSITORY": ""}, "GITHUB_REPOSITORY must be 'owner/name'"),
        ({"GITHUB_SHA": "main"}, "GITHUB_SHA must be a 40-character commit sha"),
        ({"EXPORT_ACTION_LFS_THRESHOLD_BYTES": "10MB"}, "EXPORT_ACTION_LFS_THRESHOLD_BYTES: '10MB' must be an integer"),
        ({"EXPORT_ACTION_LFS_THRESHOLD_BYTES": str(50 << 20)}, "GitHub's blob API refuses larger requests"),
    ],
)
def test_bad_inputs_are_rejected(runner_env: dict[str, str], overrides: dict[str, str], message: str) -> None:
    with pytest.raises(InputError, match=re.escape(message)) as caught:
        ActionConfig.from_env({**runner_env, **overrides})
    assert caught.value.exit_code == 2 and "\n" not in str(caught.value)


def test_title_of_256_characters_is_accepted(runner_env: dict[str, str]) -> None:
    assert len(ActionConfig.from_env({**runner_env, "INPUT_PR_TITLE": "t" * 256}).pr_title) == 256


def test_without_open_pr_no_token_or_repository_is_needed(runner_env: dict[str, str]) -> None:
    env = {**runner_env, "INPUT_OPEN_PR": "false", "INPUT_GITHUB_TOKEN": "", "GITHUB_REPOSITORY": ""}
    assert ActionConfig.from_env(env).github_token is None


def test_bad_input_fails_the_step_with_one_annotation_and_a_summary_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INPUT_", "GITHUB_"))}
    output, summary = tmp_path / "output", tmp_path / "summary"
    output.touch()
    env.update(
        GITHUB_WORKSPACE=str(tmp_path),
        GITHUB_OUTPUT=str(output),
        GITHUB_STEP_SUMMARY=str(summary),
        INPUT_MODEL="org/model",
        INPUT_OPEN_PR="yes",
    )
    process = subprocess.run(
        [sys.executable, "-I", "-m", "export_action", "run"], env=env, capture_output=True, text=True, timeout=120
    )
    assert process.returncode == 2
    assert process.stderr.strip() == (
        "::error title=hub-exporter (InputError%2C exit 2)::input 'open-pr': 'yes' is not a boolean; use true or false"
    )
    assert output.read_text() == ""
    assert summary.read_text().strip() == (
        "**hub-exporter failed: no pull request was opened or updated.** "
        "(InputError, exit 2: input 'open-pr': 'yes' is not a boolean; use true or false)"
    )


def test_exporter_environment_has_the_hf_token_and_no_github_secret(runner_env: dict[str, str]) -> None:
    config = ActionConfig.from_env({**runner_env, "INPUT_HF_TOKEN": "hf_secret"})
    environ = {**runner_env, "INPUT_HF_TOKEN": "hf_secret", "GITHUB_TOKEN": "ghs_x", "PATH": "/usr/bin"}
    env = exporter_env(config, environ)
    assert env["HF_TOKEN"] == "hf_secret" and env["PATH"] == "/usr/bin"
    assert not any(key.startswith("INPUT_") for key in env) and "GITHUB_TOKEN" not in env
    assert "ghs_x" not in env.values() and "token" not in env.values()


def test_outputs_use_the_multiline_safe_format(tmp_path: Path) -> None:
    path = tmp_path / "output"
    set_outputs(path, {"status": "passed", "note": "two\nlines", "empty": ""})
    set_outputs(path, {"pr-number": "7"})
    assert re.match(r"status<<ghadelimiter_[0-9a-f-]{36}\npassed\nghadelimiter_", path.read_text())
    assert read_outputs(path) == {"status": "passed", "note": "two\nlines", "empty": "", "pr-number": "7"}
