"""The job's work folder: checked outputs kept for a publish-only retry, checked again, bounded, pruned."""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace
from pathlib import Path

import pytest

from bot.jobs.model import Job
from bot.pipeline.repo_config import RepoConfig
from bot.pipeline.workdir import Failure, JobFolder, kept_bytes, prune
from tests.support.outputs import write_output

CONFIG = RepoConfig()
JOB = Job(
    id="0123456789abcdef0123456789abcdef",
    key="k",
    repo="alice/tiny",
    sha="a" * 40,
    settings="s",
    status="running",
    attempts=1,
    reason=None,
    pr_url=None,
    created_at=0,
    updated_at=0,
    started_at=0,
    finished_at=None,
    not_before=0,
    lease_owner="w",
    lease_expires=60,
)


def exported(work_dir: Path, job: Job = JOB, pt: bytes = b"pt-bytes") -> JobFolder:
    """Attempt ``job.attempts`` of ``job`` with one passing output, kept as checked."""
    folder = JobFolder(work_dir, job)
    folder.open()
    output = folder.begin() / "output-0"
    write_output(output, pt=pt)
    result = folder.keep_outputs([output], CONFIG, "bert", 1 << 20)
    assert set(result.outputs[0].files) == {"onnx/model.onnx", "torchscript/model.pt"}
    assert not output.exists() and (folder.checked / "output-0" / "model.pt").is_file()
    return folder


def retry(work_dir: Path, attempts: int = 2) -> JobFolder:
    return JobFolder(work_dir, replace(JOB, attempts=attempts))


def test_kept_outputs_are_reused_by_a_retry_only(tmp_path: Path) -> None:
    exported(tmp_path).after_transient(budget=1 << 20, prune_after=3600)
    again = retry(tmp_path).kept_outputs(1 << 20)
    assert again is not None and again.model_type == "bert" and again.config == CONFIG
    assert again.outputs[0].files["torchscript/model.pt"].read_bytes() == b"pt-bytes"
    assert kept_bytes(tmp_path / JOB.id) == len(b"onnx-bytes") + len(b"pt-bytes")
    first_again = JobFolder(tmp_path, replace(JOB, attempts=1))  # an operator's retry starts over
    assert first_again.kept_outputs(1 << 20) is None
    first_again.open()
    assert not (tmp_path / JOB.id).exists()


def test_a_changed_file_is_not_uploaded(tmp_path: Path) -> None:
    exported(tmp_path).after_transient(budget=1 << 20, prune_after=3600)
    with open(tmp_path / JOB.id / "checked" / "output-0" / "model.pt", "ab") as handle:
        handle.write(b"!")
    assert retry(tmp_path).kept_outputs(1 << 20) is None
    assert not (tmp_path / JOB.id / "checked").exists()  # dropped: the retry exports again


def test_a_rewritten_report_is_not_trusted(tmp_path: Path) -> None:
    """Files and report changed together (consistent with each other): the bot's manifest still catches it."""
    exported(tmp_path).after_transient(budget=1 << 20, prune_after=3600)
    write_output(tmp_path / JOB.id / "checked" / "output-0", pt=b"other weights")
    assert retry(tmp_path).kept_outputs(1 << 20) is None


def test_outputs_of_another_job_are_not_used(tmp_path: Path) -> None:
    folder = exported(tmp_path)
    manifest = folder.checked / "manifest.json"
    data = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**data, "sha": "b" * 40}))
    assert retry(tmp_path).kept_outputs(1 << 20) is None


def test_kept_outputs_stay_within_the_budget(tmp_path: Path) -> None:
    size = len(b"onnx-bytes") + len(b"pt-bytes")
    other = replace(JOB, id="f" * 32)
    exported(tmp_path, other).after_transient(budget=size, prune_after=3600)  # fits alone
    assert kept_bytes(tmp_path / other.id) == size
    folder = exported(tmp_path)
    folder.after_transient(budget=2 * size - 1, prune_after=3600)  # both do not fit: the newcomer keeps nothing
    assert kept_bytes(tmp_path / JOB.id) == 0 and not folder.checked.exists()
    assert kept_bytes(tmp_path / other.id) == size
    assert not list((tmp_path / JOB.id).glob("attempt-*"))


def test_nothing_checked_nothing_kept(tmp_path: Path) -> None:
    folder = JobFolder(tmp_path, JOB)
    folder.open()
    (folder.begin() / "snapshot").mkdir()  # a download that failed half-way
    folder.after_transient(budget=1 << 30, prune_after=3600)
    assert list((tmp_path / JOB.id).iterdir()) == []


def test_a_failure_is_kept_for_the_retry(tmp_path: Path) -> None:
    folder = JobFolder(tmp_path, JOB)
    folder.open()
    folder.save_failure(Failure("failed", "validation failed: …", "### report"))
    folder.after_transient(budget=0, prune_after=3600)
    kept = retry(tmp_path).kept_failure()
    assert kept == Failure("failed", "validation failed: …", "### report")
    error = kept.error()
    assert error.reason == "validation failed: …" and error.details == "### report"
    assert JobFolder(tmp_path, JOB).kept_failure() is None  # attempt 1 never reads what was kept


@pytest.mark.parametrize("age", [10, 10_000])
def test_prune_removes_only_old_job_folders(tmp_path: Path, age: float) -> None:
    now = time.time()
    exported(tmp_path)
    legacy = tmp_path / f"{'e' * 32}.3"  # the layout before job folders: <id>.<attempt>
    legacy.mkdir()
    unrelated = tmp_path / "not-a-job"
    unrelated.mkdir()
    for folder in (tmp_path / JOB.id, legacy, unrelated, *(tmp_path / JOB.id).iterdir()):
        os.utime(folder, (now - age, now - age))
    removed = prune(tmp_path, 3600, now=now)
    if age > 3600:
        assert sorted(removed) == sorted([JOB.id, legacy.name]) and unrelated.exists()
    else:
        assert removed == [] and (tmp_path / JOB.id).exists()
    assert prune(tmp_path, 0, keep=JOB.id, now=now + 1) == ([] if age > 3600 else [legacy.name])
