"""Whole runs of the Action: every step of ``action.yml`` on the emulated runner (see ``runner.py``).

setup-python → locate → cache restore → install (the locked dependencies, really installed into a
fresh venv by the session's first run, restored from the emulated cache after) → export (the real
exporter in that venv) → cache save, against :class:`tests.fakes.github.FakeGitHub` over loopback
with the real PyGithub and the action's Git LFS client. The workspace is hostile: it holds its own
``exporter/``, ``export_action/`` and ``platform.py``, which must never run.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

import pytest

from export_action.manifest import MANIFEST_NAME, Manifest
from tests.e2e.action.runner import ActionRun, Runner
from tests.fakes.github import FakeGitHub

#: Every test here runs the whole action, whose install step really installs the locked
#: dependencies (torch included) on the session's first run: minutes, so CI only (``-m heavy``).
pytestmark = pytest.mark.heavy

REPO = "octo/models"
MODEL = "models/tiny-bert"
BRANCH = "exporter/models-tiny-bert"
EXPORT_DIR = "exports/models-tiny-bert"
PWNED = "PWNED: the workspace's code ran"
#: Files a hostile repository holds to shadow the action's code (each prints PWNED and the token).
HOSTILE = {
    "exporter/__init__.py": "",
    "exporter/__main__.py": f"import os, sys\nprint({PWNED!r}, os.environ.get('INPUT_GITHUB_TOKEN'))\nsys.exit(0)\n",
    "export_action/__init__.py": "",
    "export_action/__main__.py": f"import os, sys\nprint({PWNED!r}, os.environ.get('INPUT_GITHUB_TOKEN'))\nsys.exit(0)\n",
    "platform.py": f"import os\nprint({PWNED!r}, os.environ.get('INPUT_GITHUB_TOKEN'))\nraise SystemExit(0)\n",
}


class Workspace:
    """A checked-out repository: the checkpoint in ``models/tiny-bert`` and the hostile files."""

    def __init__(self, root: Path) -> None:
        self.path = root / "workspace"
        self.model_dir = self.path / MODEL
        self.export_dir = self.path / EXPORT_DIR
        for name, text in HOSTILE.items():
            (self.path / name).parent.mkdir(parents=True, exist_ok=True)
            (self.path / name).write_text(text, encoding="utf-8")
        self.build_checkpoint(seed=0)

    def build_checkpoint(self, seed: int) -> None:
        from exporter.sample import build_sample_checkpoint

        shutil.rmtree(self.model_dir, ignore_errors=True)
        build_sample_checkpoint(self.model_dir, "bert", "sequence-classification", seed=seed)

    def files(self) -> dict[str, bytes]:
        """Every file of the checkout, as a repository's tree holds them."""
        return {
            p.relative_to(self.path).as_posix(): p.read_bytes()
            for p in sorted(self.path.rglob("*"))
            if p.is_file()
            and "__pycache__" not in p.parts
            and not p.relative_to(self.path).as_posix().startswith("exports/")
        }

    def run(
        self,
        runner: Runner,
        fake: FakeGitHub,
        sha: str,
        inputs: Mapping[str, str] | None = None,
        env: Mapping[str, str] | None = None,
        *,
        fresh_machine: bool = False,
    ) -> ActionRun:
        """One job: a fresh checkout state (no earlier export folder), then every step of the action."""
        shutil.rmtree(self.path / "exports", ignore_errors=True)
        github = {
            "GITHUB_REPOSITORY": REPO,
            "GITHUB_API_URL": fake.url,
            "GITHUB_SERVER_URL": fake.url,
            "GITHUB_SHA": sha,
            "GITHUB_REF": "refs/heads/main",
            "GITHUB_REF_NAME": "main",
            "GITHUB_REF_TYPE": "branch",
            "GITHUB_EVENT_NAME": "push",
            "GITHUB_RUN_ID": "1",
            **(env or {}),
        }
        run = runner.run(
            self.path, {"model": MODEL, **(inputs or {})}, github, token=fake.token, fresh_machine=fresh_machine
        )
        assert PWNED not in run.log and fake.token not in run.log, run.log
        return run


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path)


def exported(fake: FakeGitHub, ref: str) -> dict[str, bytes]:
    return {path: data for path, data in fake.tree_files(REPO, ref).items() if path.startswith("exports/")}


@pytest.mark.slow
def test_install_export_and_one_pull_request_through_git_lfs(
    runner: Runner, workspace: Workspace, fake: FakeGitHub
) -> None:
    """First run of the session installs for real; later ones restore; weights go through Git LFS."""
    base1 = fake.create_repo(REPO, {"README.md": b"# models\n", **workspace.files()})
    lfs_everything = {"EXPORT_ACTION_LFS_THRESHOLD_BYTES": "0"}  # tiny files take the large-file path

    first = workspace.run(runner, fake, base1, env=lfs_everything)
    assert first.returncode == 0, first.log
    install, key = first.step("install"), first.step("locate").outputs["key"]
    assert first.step("cache").outputs["cache-primary-key"] == key
    if first.step("cache").outputs["cache-hit"] == "false":  # the session's first run: a real install
        assert (
            "Install the locked dependencies" in install.stdout
            and "+ torch==2.13.0+cpu" in install.stderr + install.stdout
        )
        assert first.steps[-2].outcome == "success" and runner.cache.saves == [key]
    else:  # another test ran first and built it
        assert "Restored" in install.stdout and first.steps[-2].outcome == "skipped"
    venv_python = install.outputs["python"]
    torch_version = subprocess.run(
        [venv_python, "-I", "-c", "import torch, exporter; print(torch.__version__, exporter.__file__)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert torch_version[0] == "2.13.0+cpu" and not torch_version[1].startswith(str(workspace.path))
    head1 = fake.ref(REPO, BRANCH)
    assert head1 is not None
    assert first.outputs == {
        "status": "passed",
        "report-path": str(workspace.export_dir / "report.json"),
        "pr-url": "https://github.com/octo/models/pull/1",
        "pr-number": "1",
        "operation": "created",
        "head-sha": head1,
    }
    [pull] = fake.pulls(REPO)
    assert (pull.head, pull.base, pull.title) == (BRANCH, "main", f"Export {MODEL} to ONNX and TorchScript")
    report_md = (workspace.export_dir / "report.md").read_text(encoding="utf-8")
    assert pull.body is not None and pull.body.startswith(report_md.rstrip())
    assert report_md in first.summary and "Pull request [#1]" in first.summary
    tree = fake.tree_files(REPO, BRANCH)
    assert {p: d for p, d in tree.items() if not p.startswith("exports/")} == {
        p: d for p, d in fake.tree_files(REPO, base1).items()
    }  # the checkpoint, the README and every other file untouched
    files = exported(fake, BRANCH)
    assert sorted(files) == [
        f"{EXPORT_DIR}/.gitattributes",
        f"{EXPORT_DIR}/{MANIFEST_NAME}",
        f"{EXPORT_DIR}/model.onnx",
        f"{EXPORT_DIR}/model.pt",
        f"{EXPORT_DIR}/report.md",
    ]
    manifest = Manifest.from_json(files[f"{EXPORT_DIR}/{MANIFEST_NAME}"])
    assert manifest is not None and all(manifest.files[name].lfs for name in ("model.onnx", "model.pt", "report.md"))
    onnx_bytes = (workspace.export_dir / "model.onnx").read_bytes()
    pointer = files[f"{EXPORT_DIR}/model.onnx"].decode()
    assert pointer.startswith("version https://git-lfs.github.com/spec/v1\noid sha256:")
    oid = re.search(r"oid sha256:([0-9a-f]{64})", pointer)
    assert oid is not None and fake.lfs.path(REPO, oid.group(1)).read_bytes() == onnx_bytes
    assert b"/model.onnx filter=lfs diff=lfs merge=lfs -text" in files[f"{EXPORT_DIR}/.gitattributes"]
    assert (workspace.export_dir / MANIFEST_NAME).read_bytes() == files[f"{EXPORT_DIR}/{MANIFEST_NAME}"]

    # A push retrains the checkpoint: the same pull request gets one more commit, on its own head.
    workspace.build_checkpoint(seed=1)
    base2 = fake.push(REPO, "main", workspace.files(), "Retrain")
    second = workspace.run(runner, fake, base2, env=lfs_everything, fresh_machine=True)  # from the cache service
    assert second.returncode == 0, second.log
    assert second.step("cache").outputs["cache-hit"] == "true" and "Restored" in second.step("install").stdout
    assert second.step("install").seconds < 30
    head2 = fake.ref(REPO, BRANCH)
    assert (second.outputs["operation"], second.outputs["pr-number"], second.outputs["head-sha"]) == (
        "updated",
        "1",
        head2,
    )
    assert head2 is not None and fake.commit(REPO, head2).parents == [head1]
    assert fake.commit(REPO, head2).message.endswith(f"Exported-From: {base2}\n")
    assert exported(fake, BRANCH)[f"{EXPORT_DIR}/model.onnx"] != files[f"{EXPORT_DIR}/model.onnx"]

    # The same commit again: identical bytes (no install path inside them), so no commit, no upload.
    uploads, writes = len(fake.lfs.uploads), len(fake.writes())
    third = workspace.run(runner, fake, base2, env=lfs_everything)
    assert third.returncode == 0, third.log
    assert (third.outputs["operation"], third.outputs["head-sha"]) == ("unchanged", head2)
    assert fake.ref(REPO, BRANCH) == head2 and len(fake.lfs.uploads) == uploads
    assert [w for w in fake.writes()[writes:] if not w[1].endswith(("/git/trees", "/objects/batch"))] == []
    assert len(fake.pulls(REPO)) == 1
    for name, run in (("cold", first), ("restored", second), ("unchanged", third)):  # shown with -s
        print(name, ", ".join(f"{s.id or s.name}={s.seconds:.1f}s" for s in run.steps if s.outcome != "skipped"))


@pytest.mark.slow
def test_failed_validation_fails_the_step_without_a_pull_request(
    runner: Runner, workspace: Workspace, fake: FakeGitHub
) -> None:
    base = fake.create_repo(REPO, workspace.files())
    result = workspace.run(runner, fake, base, {"atol": "0", "rtol": "0", "formats": "onnx"})
    assert result.returncode == 1, result.log
    assert result.outputs == {
        "status": "failed",
        "report-path": str(workspace.export_dir / "report.json"),
        "pr-url": "",
        "pr-number": "",
        "operation": "none",
        "head-sha": "",
    }
    assert "Export failed" in result.summary
    assert "**hub-exporter failed: no pull request was opened or updated.** (ValidationGateError, exit 1" in (
        result.summary
    )
    assert "::error title=hub-exporter (ValidationGateError%2C exit 1)::validation failed" in result.stderr
    assert fake.requests == [] and fake.ref(REPO, BRANCH) is None
    saved = "skipped" if result.step("cache").outputs["cache-hit"] == "true" else "success"
    assert [s.outcome for s in result.steps][-2:] == [saved, "skipped"]  # the environment is saved even so


@pytest.mark.parametrize("output_dir", [MODEL, "models"])
def test_output_folder_holding_the_checkpoint_is_refused(
    runner: Runner, workspace: Workspace, fake: FakeGitHub, output_dir: str
) -> None:
    base = fake.create_repo(REPO, workspace.files())
    before = workspace.files()
    result = workspace.run(runner, fake, base, {"output-dir": output_dir})
    assert result.returncode == 2, result.log
    assert f"overlaps the checkpoint folder {workspace.model_dir}" in result.stderr
    assert "no pull request was opened or updated" in result.summary
    assert workspace.files() == before and fake.requests == []


def test_output_folder_with_other_files_is_refused_before_the_export(
    runner: Runner, workspace: Workspace, fake: FakeGitHub
) -> None:
    (workspace.path / "docs").mkdir()
    (workspace.path / "docs" / "model.onnx").write_bytes(b"the user's own file")
    base = fake.create_repo(REPO, workspace.files())
    result = workspace.run(runner, fake, base, {"output-dir": "docs"})
    assert result.returncode == 12, result.log
    assert "output folder docs (in the workspace) holds files the action did not write (model.onnx)" in result.stderr
    assert (workspace.path / "docs" / "model.onnx").read_bytes() == b"the user's own file"  # the exporter never ran
    assert fake.requests == []
