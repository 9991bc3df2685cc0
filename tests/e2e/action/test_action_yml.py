"""``action.yml``, its lock files and the workflows: structure, pins, and zizmor over all of them."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from tests.e2e.action.conftest import TORCH_WHEELS
from tests.e2e.action.runner import REPO_ROOT, Expression, load_action, read_outputs, truthy

ACTION = load_action()
STEPS = {step.get("id") or step["name"]: step for step in ACTION["runs"]["steps"]}
WORKFLOWS = sorted((REPO_ROOT / ".github" / "workflows").glob("*.yml"))
SELFTEST = REPO_ROOT / ".github" / "workflows" / "action-selftest.yml"
LOCK = REPO_ROOT / "export_action" / "lock"
README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
_REQUIREMENT = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+) \\$")


def _all_steps() -> list[dict]:
    steps = list(ACTION["runs"]["steps"])
    for path in WORKFLOWS:
        steps += [s for job in yaml.safe_load(path.read_text())["jobs"].values() for s in job["steps"]]
    return steps


def test_every_input_reaches_the_code_through_env_only() -> None:
    export = STEPS["export"]
    expected = {f"INPUT_{name.upper().replace('-', '_')}": f"${{{{ inputs.{name} }}}}" for name in ACTION["inputs"]}
    assert {key: value for key, value in export["env"].items() if key.startswith("INPUT_")} == expected
    assert ACTION["inputs"]["github-token"]["default"] == "${{ github.token }}"
    for step in _all_steps():
        assert "${{" not in step.get("run", ""), step  # no expression is spliced into a script
    source = "\n".join(p.read_text(encoding="utf-8") for p in (REPO_ROOT / "export_action").glob("*.py"))
    assert set(re.findall(r'"(INPUT_[A-Z_]+)"', source)) == set(expected)


def test_outputs_come_from_the_export_step() -> None:
    assert set(ACTION["outputs"]) == {"status", "report-path", "pr-url", "pr-number", "operation", "head-sha"}
    for name, output in ACTION["outputs"].items():
        assert output["value"] == f"${{{{ steps.export.outputs.{name} }}}}"


def test_every_action_is_pinned_by_commit_sha() -> None:
    for step in _all_steps():
        uses = step.get("uses")
        if uses and uses != "./":
            assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", uses), uses


def test_every_python_call_is_isolated_from_the_workspace() -> None:
    for step in ACTION["runs"]["steps"]:
        for call in re.findall(r'^\s*"\$(?:EXPORTER_PYTHON|python)"[^\n]*', step.get("run", ""), flags=re.MULTILINE):
            assert call.split(None, 1)[1].startswith("-I"), call


def test_caches_are_restored_and_saved_in_separate_guarded_steps() -> None:
    assert STEPS["cache"]["uses"].startswith("actions/cache/restore@")
    assert STEPS["hf-cache"]["uses"].startswith("actions/cache/restore@")
    saves = [s for s in ACTION["runs"]["steps"] if s.get("uses", "").startswith("actions/cache/save@")]
    assert len(saves) == 2
    for save in saves:
        assert save["if"].startswith("always() && "), save  # a failed export still keeps the environment
    assert "steps.install.outcome == 'success'" in saves[0]["if"]
    assert "cache-hit != 'true'" in saves[0]["if"]
    assert not any(s.get("uses", "").startswith("actions/cache@") for s in ACTION["runs"]["steps"])


def test_install_keeps_the_two_indexes_apart_and_requires_hashes() -> None:
    script = STEPS["install"]["run"]
    installs = re.findall(r"pip install[^\n]*(?:\\\n[^\n]*)*", script)
    assert len(installs) == 2  # pip (uv itself), then uv pip install, called twice
    assert '"${uv[@]}" --no-deps --index-url "$TORCH_INDEX_URL" -r "$lock/torch.txt"' in script
    assert '"${uv[@]}" --index-url "$PYPI_INDEX_URL" -r "$lock/requirements.txt"' in script
    assert all("--require-hashes" in call for call in installs) and "--no-config" in script
    env = STEPS["install"]["env"]
    assert (env["TORCH_INDEX_URL"], env["PYPI_INDEX_URL"]) == (
        "https://download.pytorch.org/whl/cpu",
        "https://pypi.org/simple",
    )
    assert "EXTRA_INDEX" not in (REPO_ROOT / "action.yml").read_text() + SELFTEST.read_text()


def _requirements(path: Path) -> dict[str, tuple[str, list[str]]]:
    """``{name: (version, [sha256, ...])}`` of a hashed requirements file."""
    pins: dict[str, tuple[str, list[str]]] = {}
    name = None
    for line in path.read_text().splitlines():
        if match := _REQUIREMENT.match(line):
            name = match.group(1).lower().replace("_", "-")
            pins[name] = (match.group(2), [])
        elif (hash_ := re.match(r"^\s+--hash=sha256:([0-9a-f]{64})", line)) and name:
            pins[name][1].append(hash_.group(1))
        elif line.strip() and not line.lstrip().startswith("#"):
            raise AssertionError(f"{path.name}: unexpected line {line!r}")
    return pins


def test_lock_files_pin_every_package_with_hashes() -> None:
    torch, uv, rest = (_requirements(LOCK / name) for name in ("torch.txt", "uv.txt", "requirements.txt"))
    assert list(torch) == ["torch"] and torch["torch"][0] == "2.13.0+cpu" and len(torch["torch"][1]) == 1
    assert list(uv) == ["uv"] and "torch" not in rest
    assert all(hashes for _, hashes in [*uv.values(), *rest.values()])
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    wanted = [*project["dependencies"], *project["optional-dependencies"]["action"]]
    names = {re.split(r"[<>=\[ ]", spec, maxsplit=1)[0].lower().replace("_", "-") for spec in wanted}
    assert names - {"torch"} <= set(rest)  # every dependency is locked (transitive ones too: uv checks)


def test_torch_hash_is_the_cpu_wheel_on_this_machine() -> None:
    wheel = TORCH_WHEELS / "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl"
    if not wheel.is_file():
        pytest.skip(f"{wheel} is not on this machine")
    [digest] = _requirements(LOCK / "torch.txt")["torch"][1]
    assert hashlib.sha256(wheel.read_bytes()).hexdigest() == digest


def _locate(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """The locate step's script, run as the runner would, with ``env`` on top of a Linux runner's."""
    (tmp_path / "temp").mkdir(exist_ok=True)
    (tmp_path / "workspace" / "models" / "bert").mkdir(parents=True, exist_ok=True)
    (tmp_path / "workspace" / "platform.py").write_text("raise SystemExit('PWNED')\n")
    output = tmp_path / "output"
    output.write_text("")
    script = tmp_path / "locate.sh"
    script.write_text(STEPS["locate"]["run"])
    full_env = {
        "PATH": os.environ["PATH"],
        "EXPORTER_PYTHON": sys.executable,
        "INPUT_MODEL": "models/bert",
        "GITHUB_ACTION_PATH": str(REPO_ROOT),
        "GITHUB_WORKSPACE": str(tmp_path / "workspace"),
        "GITHUB_OUTPUT": str(output),
        "RUNNER_OS": "Linux",
        "RUNNER_ARCH": "X64",
        "RUNNER_TEMP": str(tmp_path / "temp"),
        "RUNNER_TOOL_CACHE": str(tmp_path / "toolcache"),
        **env,
    }
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
        env=full_env,
        cwd=tmp_path / "workspace",
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_environment_key_depends_on_the_lock_runner_and_python_only(tmp_path: Path) -> None:
    process = _locate(tmp_path)
    assert process.returncode == 0, process.stderr
    outputs = read_outputs(tmp_path / "output")
    digest = hashlib.sha256(b"".join((LOCK / n).read_bytes() for n in ("uv.txt", "torch.txt", "requirements.txt")))
    tag = f"Linux-X64-py{'.'.join(map(str, sys.version_info[:3]))}-{digest.hexdigest()[:16]}"
    assert outputs["key"] == f"hub-exporter-action-{tag}"
    assert outputs["venv"] == str(tmp_path / "toolcache" / "hub-exporter-action" / tag)
    assert (outputs["hub-model"], outputs["hf-home"]) == ("false", str(tmp_path / "temp" / "hub-exporter-hf"))
    _locate(tmp_path, INPUT_MODEL="org/name")
    assert read_outputs(tmp_path / "output")["hub-model"] == "true"


def test_other_runners_are_refused_with_one_line(tmp_path: Path) -> None:
    process = _locate(tmp_path, RUNNER_OS="macOS", RUNNER_ARCH="ARM64")
    assert process.returncode == 2
    assert process.stdout.strip() == (
        "::error title=hub-exporter (unsupported runner%2C exit 2)::hub-exporter runs on Linux x64 runners only; "
        "its lock holds CPU torch for manylinux x86_64, and this runner is macOS ARM64"
    )


def test_zizmor_finds_nothing_in_the_action_and_every_workflow() -> None:
    zizmor = shutil.which("zizmor", path=str(Path(sys.executable).parent)) or shutil.which("zizmor")
    assert zizmor, "zizmor is a dev dependency: pip install zizmor"
    targets = ["action.yml", *(str(p.relative_to(REPO_ROOT)) for p in WORKFLOWS)]
    assert ".github/workflows/ci.yml" in targets and ".github/workflows/release.yml" in targets
    process = subprocess.run(
        [zizmor, "--offline", *targets], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert process.returncode == 0, process.stdout + process.stderr


def test_selftest_workflow_uses_the_local_action_with_write_permissions() -> None:
    workflow = yaml.safe_load(SELFTEST.read_text(encoding="utf-8"))
    [job] = workflow["jobs"].values()
    assert job["permissions"] == {"contents": "write", "pull-requests": "write"}
    assert any(step.get("uses") == "./" for step in job["steps"])
    assert "build_sample_checkpoint" in "\n".join(step.get("run", "") for step in job["steps"])
    assert "docs/github-action.md" in SELFTEST.read_text() and (REPO_ROOT / "docs" / "github-action.md").is_file()


def test_release_workflow_moves_the_major_tag_from_a_version_tag() -> None:
    workflow = yaml.safe_load((REPO_ROOT / ".github" / "workflows" / "release.yml").read_text())
    assert workflow[True]["push"]["tags"] == ["v[0-9]+.[0-9]+.[0-9]+"]  # `on:` parses as True
    [job] = workflow["jobs"].values()
    assert job["permissions"] == {"contents": "write"} and workflow["permissions"] == {}
    script = "\n".join(step.get("run", "") for step in job["steps"])
    assert 'major="${TAG%%.*}"' in script and "push --force" in script and "pyproject.toml" in script


def test_readme_example_has_the_selftest_workflow_structure() -> None:
    [block] = re.findall(r"```yaml\n(# \.github/workflows/.*?)```", README, flags=re.DOTALL)
    example, selftest = yaml.safe_load(block), yaml.safe_load(SELFTEST.read_text(encoding="utf-8"))
    [example_job], [selftest_job] = example["jobs"].values(), selftest["jobs"].values()
    for workflow in (example, selftest):
        assert {"**/*.safetensors", "**/config.json"} <= set(workflow[True]["push"]["paths"])
        assert workflow["permissions"] == {}
        assert workflow["concurrency"]["cancel-in-progress"] is False
    # One run at a time per export branch, whatever ref started it (two refs race on one branch).
    assert example["concurrency"]["group"] == "hub-exporter-exporter/models-my-bert"
    assert selftest["concurrency"]["group"] == "hub-exporter-exporter/selftest-tiny-bert"
    assert example_job["permissions"] == selftest_job["permissions"] == {"contents": "write", "pull-requests": "write"}
    assert example_job["steps"][0]["uses"] == selftest_job["steps"][0]["uses"]
    assert example_job["steps"][0]["with"]["persist-credentials"] is False
    [example_step] = [s for s in example_job["steps"] if s.get("id") == "export"]
    assert example_step["uses"].split("@")[0].endswith("/hub-exporter") and set(example_step["with"]) == {"model"}
    for step in example_job["steps"]:
        assert "${{" not in step.get("run", "")


def test_readme_tables_list_every_input_output_and_exit_code() -> None:
    section = README.split("## Use it in GitHub Actions", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    for name in (*ACTION["inputs"], *ACTION["outputs"]):
        assert any(f"`{name}`" in row.split(" | ")[0] for row in rows), name
    from export_action import errors

    codes = {cls.exit_code for cls in vars(errors).values() if isinstance(cls, type) and hasattr(cls, "exit_code")}
    for code in codes - {70}:
        assert re.search(rf"^\| {code} ", section, flags=re.MULTILINE), code


@pytest.mark.parametrize(
    ("outputs", "runs"),
    [
        ({"export.hub-revision": ""}, False),  # a local checkpoint, or the export stopped early
        ({"export.hub-revision": "c" * 40, "hf-cache.cache-matched-key": ""}, True),  # first download
        ({"export.hub-revision": "c" * 40, "hf-cache.cache-matched-key": "k-" + "d" * 40}, True),  # new commit
        ({"export.hub-revision": "c" * 40, "hf-cache.cache-matched-key": "k-" + "c" * 40}, False),  # cached
    ],
)
def test_hugging_face_cache_is_saved_once_per_commit(outputs: dict[str, str], runs: bool) -> None:
    [save] = [s for s in ACTION["runs"]["steps"] if s["name"] == "Save the Hugging Face cache"]
    values = {f"steps.{key.split('.')[0]}.outputs.{key.split('.')[1]}": value for key, value in outputs.items()}
    values["steps.locate.outputs.hf-key"] = "k"
    condition = Expression(save["if"], lambda path: values.get(path, ""), failed=True)  # even after a failure
    assert truthy(condition.evaluate()) is runs
