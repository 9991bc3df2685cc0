"""The GitHub Action: ``action.yml``, input parsing, and whole runs against a fake GitHub.

The end-to-end tests run the export step the way a runner does: ``action.yml``'s ``env:`` mapping
with the inputs substituted, the step's ``run:`` script in ``bash -eo pipefail``, fresh
``$GITHUB_OUTPUT`` / ``$GITHUB_STEP_SUMMARY`` files, a workspace with a tiny checkpoint, the real
exporter in a subprocess, and real PyGithub talking HTTP to :class:`tests.fakes.github.FakeGitHub`.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from export_action.action import conclude
from export_action.config import GITHUB_MAX_FILE_BYTES, ActionConfig
from export_action.errors import FileTooLargeError, GitHubError, InputError
from export_action.export import exporter_command, exporter_env, read_result
from export_action.gha import set_outputs
from export_action.publish import PublishRequest, check_file_sizes, connect, git_blob_sha, publish
from tests.fakes.github import FakeGitHub

REPO_ROOT = Path(__file__).resolve().parents[1]
ACTION = yaml.safe_load((REPO_ROOT / "action.yml").read_text(encoding="utf-8"))
WORKFLOW = REPO_ROOT / ".github" / "workflows" / "action-selftest.yml"
EXPORT_STEP = next(step for step in ACTION["runs"]["steps"] if step.get("id") == "export")
REPO = "octo/models"
MODEL = "models/tiny-bert"
BRANCH = "exporter/models-tiny-bert"
EXPORT_DIR = "exports/models-tiny-bert"
_EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


# -- running the step like a runner -----------------------------------------------------------------
@dataclass
class StepResult:
    returncode: int
    stdout: str
    stderr: str
    outputs: dict[str, str]
    summary: str
    env: dict[str, str]

    @property
    def log(self) -> str:
        return f"exit {self.returncode}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"


def read_outputs(path: Path) -> dict[str, str]:
    """Parse ``$GITHUB_OUTPUT`` (``name=value`` and ``name<<DELIMITER`` blocks) like the runner."""
    outputs: dict[str, str] = {}
    lines = iter(path.read_text(encoding="utf-8").splitlines())
    for line in lines:
        name, heredoc, delimiter = line.partition("<<")
        if heredoc:
            block: list[str] = []
            for next_line in lines:
                if next_line == delimiter:
                    break
                block.append(next_line)
            outputs[name] = "\n".join(block)
        else:
            key, _, value = line.partition("=")
            outputs[key] = value
    return outputs


def step_env(inputs: Mapping[str, str], github_token: str) -> dict[str, str]:
    """The export step's ``env:`` from ``action.yml``, expressions evaluated as a runner would."""
    values = {name: str(spec.get("default", "")) for name, spec in ACTION["inputs"].items()}
    unknown = set(inputs) - set(values)
    assert not unknown, f"not inputs of action.yml: {unknown}"
    values.update(inputs)
    contexts = {"github.token": github_token, "steps.install.outputs.python": sys.executable}

    def evaluate(match: re.Match[str]) -> str:
        expression = match.group(1)
        if expression.startswith("inputs."):
            return _EXPRESSION.sub(evaluate, values[expression.removeprefix("inputs.")])
        return contexts[expression]

    return {key: _EXPRESSION.sub(evaluate, str(value)) for key, value in EXPORT_STEP["env"].items()}


class Workspace:
    """A checked-out repository on a runner: the checkpoint in ``models/tiny-bert``."""

    def __init__(self, root: Path) -> None:
        self.path = root / "workspace"
        self.model_dir = self.path / MODEL
        self.export_dir = self.path / EXPORT_DIR
        self.runner_temp = root / "runner-temp"
        self.runner_temp.mkdir(parents=True)
        self.build_checkpoint(seed=0)

    def build_checkpoint(self, seed: int) -> None:
        from exporter.sample import build_sample_checkpoint

        shutil.rmtree(self.model_dir, ignore_errors=True)
        build_sample_checkpoint(self.model_dir, "bert", "sequence-classification", seed=seed)

    def checkpoint_files(self) -> dict[str, bytes]:
        return {f"{MODEL}/{p.name}": p.read_bytes() for p in sorted(self.model_dir.iterdir()) if p.is_file()}

    def run(
        self,
        fake: FakeGitHub,
        sha: str,
        inputs: Mapping[str, str] | None = None,
        extra_env: Mapping[str, str] | None = None,
    ) -> StepResult:
        """Run the export step once, in a fresh checkout state (no earlier export folder)."""
        shutil.rmtree(self.path / "exports", ignore_errors=True)
        output, summary = self.runner_temp / "output", self.runner_temp / "summary"
        for path in (output, summary):
            path.write_text("", encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("INPUT_", "GITHUB_", "RUNNER_"))}
        env.update(
            PYTHONPATH=str(REPO_ROOT),  # action.yml pip-installs the project; here it runs from source
            GITHUB_ACTIONS="true",
            GITHUB_ACTION_PATH=str(REPO_ROOT),
            GITHUB_WORKSPACE=str(self.path),
            GITHUB_REPOSITORY=REPO,
            GITHUB_API_URL=fake.url,
            GITHUB_SERVER_URL="https://github.com",
            GITHUB_OUTPUT=str(output),
            GITHUB_STEP_SUMMARY=str(summary),
            GITHUB_SHA=sha,
            GITHUB_REF="refs/heads/main",
            GITHUB_REF_NAME="main",
            GITHUB_REF_TYPE="branch",
            GITHUB_EVENT_NAME="push",
            RUNNER_TEMP=str(self.runner_temp),
        )
        env.update(step_env({"model": MODEL, **(inputs or {})}, fake.token))
        env.update(extra_env or {})
        script = self.runner_temp / "step.sh"
        script.write_text(EXPORT_STEP["run"], encoding="utf-8")
        process = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
            cwd=self.path,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        return StepResult(
            process.returncode,
            process.stdout,
            process.stderr,
            read_outputs(output),
            summary.read_text(encoding="utf-8"),
            env,
        )


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    with FakeGitHub() as server:
        yield server
        assert server.errors == [], server.errors[0]


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path)


def exported(fake: FakeGitHub, ref: str) -> dict[str, bytes]:
    return {path: data for path, data in fake.tree_files(REPO, ref).items() if path.startswith("exports/")}


# -- end to end: real exporter, real PyGithub, fake GitHub ------------------------------------------
@pytest.mark.slow
def test_opens_then_updates_one_pull_request_and_skips_unchanged(workspace: Workspace, fake: FakeGitHub) -> None:
    base1 = fake.create_repo(REPO, {"README.md": b"# models\n", **workspace.checkpoint_files()})

    first = workspace.run(fake, base1)
    assert first.returncode == 0, first.log
    report_path = workspace.export_dir / "report.json"
    assert first.outputs == {
        "status": "passed",
        "report-path": str(report_path),
        "pr-url": "https://github.com/octo/models/pull/1",
        "pr-number": "1",
    }
    [pull] = fake.pulls(REPO)
    assert (pull.head, pull.base, pull.state) == (BRANCH, "main", "open")
    assert pull.title == f"Export {MODEL} to ONNX and TorchScript"
    report_md = (workspace.export_dir / "report.md").read_text(encoding="utf-8")
    assert pull.body is not None and pull.body.startswith(report_md.rstrip())
    assert f'torch.jit.load("{EXPORT_DIR}/model.pt")' in pull.body
    assert f'ort.InferenceSession("{EXPORT_DIR}/model.onnx")' in pull.body
    assert report_md in first.summary and "Pull request [#1]" in first.summary
    files = exported(fake, BRANCH)
    assert sorted(files) == [f"{EXPORT_DIR}/model.onnx", f"{EXPORT_DIR}/model.pt", f"{EXPORT_DIR}/report.md"]
    assert files[f"{EXPORT_DIR}/model.onnx"] == (workspace.export_dir / "model.onnx").read_bytes()
    assert fake.tree_files(REPO, BRANCH)["README.md"] == b"# models\n"
    head1 = fake.ref(REPO, BRANCH)
    assert head1 is not None and fake.commit(REPO, head1).parents == [base1]
    old_onnx = files[f"{EXPORT_DIR}/model.onnx"]

    # A push retrains the checkpoint: the same pull request gets a second commit and a new body.
    workspace.build_checkpoint(seed=1)
    base2 = fake.push(REPO, "main", workspace.checkpoint_files(), "Retrain")
    second = workspace.run(fake, base2)
    assert second.returncode == 0, second.log
    assert second.outputs["pr-number"] == "1"
    [pull] = fake.pulls(REPO)
    head2 = fake.ref(REPO, BRANCH)
    assert head2 is not None and head2 != head1
    assert fake.commit(REPO, head2).parents == [head1, base2]  # history kept, new base merged in
    assert fake.history(REPO, BRANCH)[:3] == [head2, head1, base1]
    new_onnx = exported(fake, BRANCH)[f"{EXPORT_DIR}/model.onnx"]
    assert new_onnx != old_onnx and new_onnx == (workspace.export_dir / "model.onnx").read_bytes()
    assert pull.body is not None and (workspace.export_dir / "report.md").read_text().rstrip() in pull.body

    # The same commit again: identical tree, so no blob, commit, ref or pull request write.
    writes_before = len(fake.writes())
    third = workspace.run(fake, base2)
    assert third.returncode == 0, third.log
    assert third.outputs["pr-number"] == "1"
    assert fake.ref(REPO, BRANCH) == head2
    assert [w for w in fake.writes()[writes_before:] if not w[1].endswith("/git/trees")] == []
    assert len(fake.pulls(REPO)) == 1


@pytest.mark.slow
def test_failed_validation_fails_the_step_without_a_pull_request(
    workspace: Workspace, fake: FakeGitHub, tmp_path: Path
) -> None:
    base = fake.create_repo(REPO, workspace.checkpoint_files())
    result = workspace.run(fake, base, {"atol": "0", "formats": "onnx"})
    assert result.returncode == 1, result.log
    assert result.outputs == {
        "status": "failed",
        "report-path": str(workspace.export_dir / "report.json"),
        "pr-url": "",
        "pr-number": "",
    }
    assert "Export failed" in result.summary
    assert (
        "::error title=hub-exporter (ValidationFailedError%2C exit 1)::validation failed, no pull request opened"
        in result.stderr
    )
    assert fake.requests == []  # GitHub was never called
    assert fake.ref(REPO, BRANCH) is None

    # The same report with fail-on-validation-error: false passes the step, still without a PR.
    output = tmp_path / "lenient-output"
    env = {**result.env, "INPUT_FAIL_ON_VALIDATION_ERROR": "false", "GITHUB_OUTPUT": str(output)}
    outcome = conclude(ActionConfig.from_env(env), read_result(workspace.export_dir, exit_code=1))
    assert outcome.pull_request is None and outcome.export.status == "failed"
    assert read_outputs(output)["status"] == "failed"
    assert fake.requests == []


@pytest.mark.slow
def test_file_above_the_limit_stops_before_any_upload(workspace: Workspace, fake: FakeGitHub) -> None:
    base = fake.create_repo(REPO, workspace.checkpoint_files())
    result = workspace.run(fake, base, {"formats": "onnx"}, {"EXPORT_ACTION_MAX_FILE_BYTES": "100000"})
    assert result.returncode == FileTooLargeError.exit_code == 10, result.log
    [error] = [line for line in result.stderr.splitlines() if line.startswith("::error")]
    assert re.search(rf"::{EXPORT_DIR}/model.onnx is [0-9.]+ KiB, above GitHub's 97.7 KiB file limit; ", error)
    assert "Hugging Face Hub" in error and "Git LFS" in error
    assert fake.requests == []
    assert result.outputs["status"] == "passed" and "Export passed" in result.summary


# -- action.yml and the workflows --------------------------------------------------------------------
def test_action_yml_passes_every_input_through_env_only() -> None:
    assert ACTION["runs"]["using"] == "composite"
    assert {"icon", "color"} <= set(ACTION["branding"])
    expected = {f"INPUT_{name.upper().replace('-', '_')}": f"${{{{ inputs.{name} }}}}" for name in ACTION["inputs"]}
    assert {key: value for key, value in EXPORT_STEP["env"].items() if key.startswith("INPUT_")} == expected
    assert ACTION["inputs"]["github-token"]["default"] == "${{ github.token }}"
    assert set(ACTION["outputs"]) == {"status", "report-path", "pr-url", "pr-number"}
    for name, output in ACTION["outputs"].items():
        assert output["value"] == f"${{{{ steps.export.outputs.{name} }}}}"
    workflow = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    for steps in [ACTION["runs"]["steps"], *(job["steps"] for job in workflow["jobs"].values())]:
        for step in steps:
            assert "${{" not in step.get("run", ""), step


def test_action_yml_inputs_are_the_ones_the_code_reads() -> None:
    source = "\n".join(p.read_text(encoding="utf-8") for p in (REPO_ROOT / "export_action").glob("*.py"))
    read = set(re.findall(r'"(INPUT_[A-Z_]+)"', source))
    assert read == {key for key in EXPORT_STEP["env"] if key.startswith("INPUT_")}


def test_selftest_workflow_uses_the_local_action_with_write_permissions() -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    [job] = workflow["jobs"].values()
    assert job["permissions"] == {"contents": "write", "pull-requests": "write"}
    assert any(step.get("uses") == "./" for step in job["steps"])
    assert "build_sample_checkpoint" in "\n".join(step.get("run", "") for step in job["steps"])


def test_zizmor_finds_nothing_in_the_action_and_workflow() -> None:
    zizmor = shutil.which("zizmor", path=str(Path(sys.executable).parent)) or shutil.which("zizmor")
    assert zizmor, "zizmor is a dev dependency: pip install zizmor"
    process = subprocess.run(
        [zizmor, "--offline", "action.yml", str(WORKFLOW.relative_to(REPO_ROOT))],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert process.returncode == 0, process.stdout + process.stderr


# -- input parsing -----------------------------------------------------------------------------------
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
    assert (config.base_branch, config.max_file_bytes) == ("main", GITHUB_MAX_FILE_BYTES)
    assert "token" not in repr(config) and "hf_x" not in repr(config)


def test_hub_ids_and_explicit_values(runner_env: dict[str, str]) -> None:
    config = ActionConfig.from_env(
        {
            **runner_env,
            "INPUT_MODEL": "google-bert/bert-base-uncased",
            "INPUT_REVISION": "v1.0",
            "INPUT_OPSET": "17",
            "INPUT_ATOL": "1e-3",
            "INPUT_FORMATS": "torchscript, onnx, onnx",
            "INPUT_OPEN_PR": "False",
            "INPUT_FAIL_ON_VALIDATION_ERROR": "FALSE",
            "GITHUB_REF_TYPE": "tag",
        }
    )
    assert (config.model, config.model_is_local, config.revision) == (
        "google-bert/bert-base-uncased",
        False,
        "v1.0",
    )
    assert (config.opset, config.atol, config.formats) == (17, 1e-3, ("torchscript", "onnx"))
    assert (config.open_pr, config.fail_on_validation_error, config.base_branch) == (False, False, None)
    assert config.pr_branch == "exporter/google-bert-bert-base-uncased"
    command = exporter_command(config)
    assert command[1:] == [
        "-m", "exporter", "export", "--model", "google-bert/bert-base-uncased", "--revision", "v1.0",
        "--opset", "17", "--atol", "0.001", "--formats", "torchscript,onnx", str(config.output_dir),
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
        ({"INPUT_FORMATS": "onnx,tflite"}, "input 'formats': 'onnx,tflite' must be a comma-separated subset"),
        ({"INPUT_OPEN_PR": "yes"}, "input 'open-pr': 'yes' is not a boolean; use true or false"),
        ({"INPUT_FAIL_ON_VALIDATION_ERROR": "0"}, "input 'fail-on-validation-error': '0' is not a boolean"),
        ({"INPUT_PR_BRANCH": "feature..x"}, "input 'pr-branch': 'feature..x' is not a valid git branch name"),
        ({"INPUT_PR_BRANCH": "a b"}, "is not a valid git branch name"),
        ({"INPUT_PR_BRANCH": "x.lock"}, "is not a valid git branch name"),
        ({"INPUT_OUTPUT_DIR": "../elsewhere"}, "must be a folder inside the workspace"),
        ({"INPUT_OUTPUT_DIR": "."}, "must be a folder inside the workspace"),
        ({"INPUT_GITHUB_TOKEN": ""}, "input 'github-token' is empty"),
        ({"GITHUB_REPOSITORY": ""}, "GITHUB_REPOSITORY must be 'owner/name'"),
        ({"GITHUB_SHA": "main"}, "GITHUB_SHA must be a 40-character commit sha"),
        (
            {"EXPORT_ACTION_MAX_FILE_BYTES": "100MB"},
            "EXPORT_ACTION_MAX_FILE_BYTES: '100MB' must be a positive",
        ),
    ],
)
def test_bad_inputs_are_rejected(runner_env: dict[str, str], overrides: dict[str, str], message: str) -> None:
    with pytest.raises(InputError, match=re.escape(message)) as caught:
        ActionConfig.from_env({**runner_env, **overrides})
    assert caught.value.exit_code == 2


def test_without_open_pr_no_token_or_repository_is_needed(runner_env: dict[str, str]) -> None:
    env = {**runner_env, "INPUT_OPEN_PR": "false", "INPUT_GITHUB_TOKEN": "", "GITHUB_REPOSITORY": ""}
    assert ActionConfig.from_env(env).github_token is None


def test_bad_input_fails_the_step_with_one_annotation(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INPUT_", "GITHUB_"))}
    output = tmp_path / "output"
    output.touch()
    env.update(
        PYTHONPATH=str(REPO_ROOT),
        GITHUB_WORKSPACE=str(tmp_path),
        GITHUB_OUTPUT=str(output),
        INPUT_MODEL="org/model",
        INPUT_OPEN_PR="yes",
    )
    process = subprocess.run(
        [sys.executable, "-m", "export_action", "run"], env=env, capture_output=True, text=True, timeout=120
    )
    assert process.returncode == 2
    assert process.stderr.strip() == (
        "::error title=hub-exporter (InputError%2C exit 2)::input 'open-pr': 'yes' is not a boolean; use true or false"
    )
    assert output.read_text() == ""


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


# -- the GitHub side alone (dummy files), real PyGithub against the fake ----------------------------
def _request(files: dict[str, Path], **overrides: Any) -> PublishRequest:
    fields: dict[str, Any] = {
        "repository": REPO,
        "base_branch": None,
        "base_sha": None,
        "branch": "exporter/tiny",
        "title": "Export tiny",
        "body": "report",
        "message": "Export tiny",
        "directory": "exports/tiny",
        "files": files,
        **overrides,
    }
    return PublishRequest(**fields)


def test_publish_replaces_the_folder_and_resets_an_abandoned_branch(tmp_path: Path, fake: FakeGitHub) -> None:
    model = tmp_path / "model.onnx"
    model.write_bytes(b"new model")
    base = fake.create_repo(REPO, {"README.md": b"hi", "exports/tiny/old.bin": b"stale"})
    stale_head = fake.push(REPO, "main", {"x": b"y"})
    fake.repo(REPO).refs["refs/heads/exporter/tiny"] = stale_head  # a branch whose pull request was closed
    fake.repo(REPO).refs["refs/heads/main"] = base

    result = publish(connect(fake.url, fake.token), _request({"exports/tiny/model.onnx": model}))

    assert result is not None and (result.number, result.operation) == (1, "created")
    assert fake.tree_files(REPO, "exporter/tiny") == {
        "README.md": b"hi",
        "exports/tiny/model.onnx": b"new model",
    }
    assert fake.commit(REPO, result.commit_sha).parents == [base]  # reset onto the base, not on the old head
    assert (
        git_blob_sha(model)
        == fake.repo(REPO).flatten(fake.commit(REPO, result.commit_sha).tree)["exports/tiny/model.onnx"]
    )


def test_read_only_token_gets_a_clear_error(tmp_path: Path, fake: FakeGitHub) -> None:
    model = tmp_path / "model.onnx"
    model.write_bytes(b"m")
    fake.create_repo(REPO, {"README.md": b"hi"})
    fake.add_token("read-only", write=False)
    with pytest.raises(GitHubError, match="403 Resource not accessible by integration") as caught:
        publish(connect(fake.url, "read-only"), _request({"exports/tiny/model.onnx": model}))
    assert "permissions: contents: write" in str(caught.value) and caught.value.exit_code == 11
    assert fake.ref(REPO, "exporter/tiny") is None


def test_pull_request_creation_disabled_for_actions(tmp_path: Path, fake: FakeGitHub) -> None:
    model = tmp_path / "model.onnx"
    model.write_bytes(b"m")
    fake.create_repo(REPO, {"README.md": b"hi"})
    fake.allow_pull_request_creation = False
    with pytest.raises(GitHubError, match="while opening the pull request: 403 GitHub Actions is not permitted"):
        publish(connect(fake.url, fake.token), _request({"exports/tiny/model.onnx": model}))


def test_size_check_names_the_file_and_the_ways_out(tmp_path: Path) -> None:
    small, big = tmp_path / "small", tmp_path / "big"
    small.write_bytes(b"x" * 10)
    big.write_bytes(b"x" * 2048)
    check_file_sizes({"a/small": small}, 1024)
    with pytest.raises(FileTooLargeError) as caught:
        check_file_sizes({"a/small": small, "a/model.onnx.data": big}, 1024)
    message = str(caught.value)
    assert message.startswith("a/model.onnx.data is 2.0 KiB, above GitHub's 1.0 KiB file limit")
    assert "\n" not in message and "Hugging Face Hub" in message and "Git LFS" in message


def test_readme_example_has_the_selftest_workflow_structure() -> None:
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    [block] = re.findall(r"```yaml\n(# \.github/workflows/.*?)```", text, flags=re.DOTALL)
    example, selftest = yaml.safe_load(block), yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    [example_job], [selftest_job] = example["jobs"].values(), selftest["jobs"].values()
    for workflow in (example, selftest):
        assert {"**/*.safetensors", "**/config.json"} <= set(workflow[True]["push"]["paths"])  # `on:` parses as True
        assert workflow["permissions"] == {}
    assert example_job["permissions"] == selftest_job["permissions"] == {"contents": "write", "pull-requests": "write"}
    assert example_job["steps"][0]["uses"] == selftest_job["steps"][0]["uses"]
    assert example_job["steps"][0]["with"]["persist-credentials"] is False
    [example_step] = [s for s in example_job["steps"] if s.get("id") == "export"]
    [selftest_step] = [s for s in selftest_job["steps"] if s.get("id") == "export"]
    assert example_step["uses"].split("@")[0].endswith("/hub-exporter") and selftest_step["uses"] == "./"
    assert set(example_step["with"]) == {"model"} and "model" in selftest_step["with"]
    for step in example_job["steps"]:
        assert "${{" not in step.get("run", "")


def test_environment_cache_key_depends_on_the_action_only(tmp_path: Path) -> None:
    [step] = [s for s in ACTION["runs"]["steps"] if s.get("id") == "venv"]
    assert set(step["env"]) == {"EXPORTER_PYTHON"}
    output = tmp_path / "output"
    output.touch()
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path / "home"),
        "EXPORTER_PYTHON": sys.executable,
        "GITHUB_ACTION_PATH": str(REPO_ROOT),
        "GITHUB_OUTPUT": str(output),
        "RUNNER_OS": "Linux",
        "RUNNER_ARCH": "X64",
    }
    script = tmp_path / "step.sh"
    script.write_text(step["run"], encoding="utf-8")
    subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)], env=env, check=True, cwd=tmp_path)
    outputs = read_outputs(output)
    digest = hashlib.sha256((REPO_ROOT / "pyproject.toml").read_bytes()).hexdigest()[:16]
    version = ".".join(map(str, sys.version_info[:3]))
    assert outputs["key"] == f"hub-exporter-action-Linux-X64-py{version}-{digest}"
    assert outputs["path"] == str(
        tmp_path / "home" / ".cache" / "hub-exporter-action" / outputs["key"].removeprefix("hub-exporter-action-")
    )


def test_publish_opens_nothing_when_the_base_already_has_the_files(tmp_path: Path, fake: FakeGitHub) -> None:
    model = tmp_path / "model.onnx"
    model.write_bytes(b"merged earlier")
    fake.create_repo(REPO, {"README.md": b"hi", "exports/tiny/model.onnx": b"merged earlier"})
    assert publish(connect(fake.url, fake.token), _request({"exports/tiny/model.onnx": model})) is None
    assert fake.writes() == [("POST", f"/repos/{REPO}/git/trees")]
    assert fake.ref(REPO, "exporter/tiny") is None and fake.pulls(REPO) == []
