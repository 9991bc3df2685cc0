"""A GitHub Actions runner, emulated for ``action.yml``: every step of the composite action, in order.

What it does the way a runner does:

- parses ``action.yml`` and evaluates ``${{ }}`` in ``with:``, ``env:``, ``if:`` and the action's
  ``outputs:`` over the ``inputs``, ``steps.<id>.outputs`` / ``.outcome``, ``github`` and ``runner``
  contexts (the subset of the expression language the action uses: literals, context paths, ``==``,
  ``!=`` (strings compared case-insensitively, as GitHub does), ``&&``, ``||``, ``!``, parentheses,
  ``always()``, ``success()``, ``failure()``, ``format()``); a step's ``if:`` without a status
  function means ``success() && (…)``;
- runs each ``run:`` step (``shell: bash`` only) as ``bash --noprofile --norc -eo pipefail FILE``
  with the job's environment plus the step's ``env:``, in the workspace, with a fresh
  ``$GITHUB_OUTPUT`` per step (parsed into ``steps.<id>.outputs``) and ``$GITHUB_STEP_SUMMARY``
  appended to the job summary; a failing step makes the later default steps ``skipped``.

What it emulates minimally (``uses:`` steps):

- ``actions/setup-python``: outputs ``python-path`` of this machine's CPython, which must be the
  version asked for; nothing is installed or put on ``PATH`` (the action asks for
  ``update-environment: false``);
- ``actions/cache/restore`` and ``actions/cache/save``: a local folder stands for the cache service.
  As in actions/cache, a key is immutable once saved, the ``path`` is part of the cache version
  (another path misses), an exact key sets ``cache-hit``, ``restore-keys`` prefixes restore the newest
  match; a restore writes every file over the path and removes nothing, as untarring does. Files
  are hard-linked, not tarred and uploaded.

What it does not cover: the JavaScript of those actions and the real cache service (its size
limits, eviction, scopes between branches); Windows and macOS runners; secret masking in logs;
``GITHUB_ENV`` / ``GITHUB_PATH`` (the action uses neither). One value of ``action.yml`` is replaced:
the install step's ``TORCH_INDEX_URL`` points at a loopback index serving the very wheel file the
CPU index serves (same name, same sha256, which ``--require-hashes`` checks), because PyTorch's index
is not reachable from the test machines; PyPI is reached as on a runner, through uv's download cache.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[3]
ACTION_YML = REPO_ROOT / "action.yml"
_EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}", re.DOTALL)
_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>\d+(?:\.\d+)?)|(?P<op>==|!=|&&|\|\||!|\(|\)|,)|(?P<id>[A-Za-z_][\w.\-]*))"
)
_STATUS_FUNCTIONS = ("always(", "success(", "failure(", "cancelled(")


def load_action() -> dict[str, Any]:
    return yaml.safe_load(ACTION_YML.read_text(encoding="utf-8"))


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
        elif line:
            key, _, value = line.partition("=")
            outputs[key] = value
    return outputs


# -- expressions ---------------------------------------------------------------------------------------
class Expression:
    """A parsed ``${{ }}`` expression over a context lookup and the status functions."""

    def __init__(self, text: str, lookup: Callable[[str], Any], failed: bool) -> None:
        self.tokens = [
            (kind, value) for match in _TOKEN.finditer(text) for kind, value in match.groupdict().items() if value
        ]
        assert "".join(v for _, v in self.tokens).replace(" ", "") == re.sub(r"\s", "", text), f"cannot parse {text!r}"
        self.lookup, self.failed, self.pos = lookup, failed, 0

    def evaluate(self) -> Any:
        value = self._or()
        assert self.pos == len(self.tokens), f"trailing tokens in expression: {self.tokens[self.pos :]}"
        return value

    def _peek(self) -> str | None:
        return self.tokens[self.pos][1] if self.pos < len(self.tokens) else None

    def _take(self) -> tuple[str, str]:
        self.pos += 1
        return self.tokens[self.pos - 1]

    def _or(self) -> Any:
        value = self._and()
        while self._peek() == "||":
            self._take()
            right = self._and()
            value = value if truthy(value) else right
        return value

    def _and(self) -> Any:
        value = self._not()
        while self._peek() == "&&":
            self._take()
            right = self._not()
            value = right if truthy(value) else value
        return value

    def _not(self) -> Any:
        if self._peek() == "!":
            self._take()
            return not truthy(self._not())
        return self._compare()

    def _compare(self) -> Any:
        left = self._primary()
        if self._peek() in ("==", "!="):
            op = self._take()[1]
            equal = _loose_equal(left, self._primary())
            return equal if op == "==" else not equal
        return left

    def _primary(self) -> Any:
        kind, value = self._take()
        if kind == "str":
            return value[1:-1].replace("''", "'")
        if kind == "num":
            return float(value)
        if value == "(":
            inner = self._or()
            assert self._take()[1] == ")"
            return inner
        if kind == "id" and self._peek() == "(":
            self._take()
            args: list[Any] = []
            while self._peek() != ")":
                args.append(self._or())
                if self._peek() == ",":
                    self._take()
            self._take()
            return self._call(value, args)
        if value in ("true", "false"):
            return value == "true"
        if value == "null":
            return None
        return self.lookup(value)

    def _call(self, name: str, args: list[Any]) -> Any:
        if name == "always":
            return True
        if name == "success":
            return not self.failed
        if name == "failure":
            return self.failed
        if name == "cancelled":
            return False
        if name == "format":
            text = str(args[0])
            for index, arg in enumerate(args[1:]):
                text = text.replace(f"{{{index}}}", to_string(arg))
            return text
        raise AssertionError(f"expression function {name}() is not emulated")


def truthy(value: Any) -> bool:
    return value not in (None, False, "", 0, 0.0)


def to_string(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _loose_equal(left: Any, right: Any) -> bool:
    if isinstance(left, str) and isinstance(right, str):
        return left.lower() == right.lower()
    return to_string(left).lower() == to_string(right).lower()


# -- the cache service ---------------------------------------------------------------------------------
class CacheService:
    """actions/cache's server side, on disk: ``root/<key>/`` holds the saved path and its files."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.saves: list[str] = []

    def restore(self, path: str, key: str, restore_keys: list[str]) -> tuple[bool, str]:
        """Returns (exact hit, matched key or '')."""
        entries = [e for e in self.root.iterdir() if (e / "path").read_text() == path]  # the version includes path
        exact = [e for e in entries if e.name == key]
        candidates = exact or sorted(
            (e for e in entries if any(e.name.startswith(prefix) for prefix in restore_keys)),
            key=lambda e: (e / "path").stat().st_mtime,
            reverse=True,
        )
        if not candidates:
            return False, ""
        _extract(candidates[0] / "files", Path(path))
        return bool(exact), candidates[0].name

    def save(self, path: str, key: str) -> bool:
        entry = self.root / key
        if entry.exists() or not Path(path).exists():
            return False  # "Unable to reserve cache … another job may be creating this cache" / nothing to save
        shutil.copytree(path, entry / "files", symlinks=True, copy_function=os.link)
        (entry / "path").write_text(path)
        self.saves.append(key)
        return True


def _extract(source: Path, target: Path) -> None:
    """Like untarring the cache over ``target``: every file written (hard-linked), nothing else removed.

    A file already linked to the same cache entry is left as it is (same content, no work).
    """
    for folder, dirs, files in os.walk(source):
        relative = Path(folder).relative_to(source)
        (target / relative).mkdir(parents=True, exist_ok=True)
        for name in [*files, *(d for d in dirs if (Path(folder) / d).is_symlink())]:
            src, dst = Path(folder) / name, target / relative / name
            if src.is_symlink():
                if not dst.is_symlink() or os.readlink(dst) != os.readlink(src):
                    dst.unlink(missing_ok=True)
                    dst.symlink_to(os.readlink(src))
            elif not (dst.exists() and os.path.samefile(src, dst)):
                dst.unlink(missing_ok=True)
                os.link(src, dst)


# -- runs ----------------------------------------------------------------------------------------------
@dataclass
class StepRun:
    id: str | None
    name: str
    outcome: str  # success, failure, skipped
    returncode: int | None = None
    stdout: str = ""
    stderr: str = ""
    outputs: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass
class ActionRun:
    steps: list[StepRun]
    outputs: dict[str, str]
    summary: str
    env: dict[str, str]

    @property
    def returncode(self) -> int:
        """The first failed step's exit code (the job's result), 0 when every step succeeded."""
        return next((s.returncode or 1 for s in self.steps if s.outcome == "failure"), 0)

    @property
    def stderr(self) -> str:
        return "".join(s.stderr for s in self.steps)

    def step(self, step_id: str) -> StepRun:
        return next(s for s in self.steps if s.id == step_id)

    @property
    def log(self) -> str:
        parts = [
            f"--- {s.name} [{s.outcome}, exit {s.returncode}, {s.seconds:.1f}s]\n{s.stdout[-4000:]}{s.stderr[-4000:]}"
            for s in self.steps
        ]
        return "\n".join(parts)


@dataclass
class Runner:
    """One self-contained runner machine: a home, a tool cache, and the cache service it talks to."""

    root: Path
    cache: CacheService
    #: ``{(step id, env name): value}``: the values of ``action.yml`` this emulation replaces (see above).
    overrides: Mapping[tuple[str, str], str] = field(default_factory=dict)
    #: Variables that persist between runs on the test machine (uv's download cache), not a runner's.
    machine_env: Mapping[str, str] = field(default_factory=dict)
    action: dict[str, Any] = field(default_factory=load_action)

    def run(
        self,
        workspace: Path,
        inputs: Mapping[str, str],
        github: Mapping[str, str],
        *,
        token: str = "",
        fresh_machine: bool = False,
    ) -> ActionRun:
        """Run the composite action once, as one job.

        ``fresh_machine``: a new hosted runner (empty tool cache and home); otherwise the same machine
        again, as a self-hosted runner (tool cache kept). ``$RUNNER_TEMP`` is always emptied.
        """
        temp, tool_cache, home = self.root / "temp", self.root / "toolcache", self.root / "home"
        for folder in (temp, *((tool_cache, home) if fresh_machine else ())):
            shutil.rmtree(folder, ignore_errors=True)
        for folder in (temp, tool_cache, home):
            folder.mkdir(parents=True, exist_ok=True)
        job_env = {
            "PATH": os.environ["PATH"],
            "HOME": str(home),
            "LANG": "C.UTF-8",
            "CI": "true",
            "GITHUB_ACTIONS": "true",
            "GITHUB_ACTION_PATH": str(REPO_ROOT),
            "GITHUB_WORKSPACE": str(workspace),
            "RUNNER_OS": "Linux",
            "RUNNER_ARCH": "X64",
            "RUNNER_TEMP": str(temp),
            "RUNNER_TOOL_CACHE": str(tool_cache),
            "OMP_NUM_THREADS": "1",
            "HF_ENDPOINT": os.environ.get("HF_ENDPOINT", "http://127.0.0.1:9"),  # no test reaches the real Hub
            **self.machine_env,
            **github,
        }
        values = {name: str(spec.get("default", "")) for name, spec in self.action["inputs"].items()}
        unknown = set(inputs) - set(values)
        assert not unknown, f"not inputs of action.yml: {unknown}"
        values.update(inputs)
        contexts = {"github.token": token, "github.run_id": github.get("GITHUB_RUN_ID", "1")}
        contexts |= {"github.action_path": str(REPO_ROOT), "runner.os": "Linux", "runner.temp": str(temp)}
        steps: dict[str, dict[str, Any]] = {}
        runs: list[StepRun] = []
        summary = ""

        def lookup(path: str) -> Any:
            if path.startswith("inputs."):
                return render(values[path.removeprefix("inputs.")])
            if path.startswith("steps."):
                _, step_id, kind, *rest = [*path.split(".", 3), ""]
                step = steps.get(step_id, {})
                return step.get("outputs", {}).get(rest[0], "") if kind == "outputs" else step.get(kind, "")
            assert path in contexts, f"context {path} is not emulated"
            return contexts[path]

        def render(value: Any) -> str:
            failed = any(r.outcome == "failure" for r in runs)
            return _EXPRESSION.sub(
                lambda m: to_string(Expression(m.group(1), lookup, failed).evaluate()), to_string(value)
            )

        for spec in self.action["runs"]["steps"]:
            step_id, name = spec.get("id"), spec.get("name", spec.get("uses", "run"))
            failed = any(r.outcome == "failure" for r in runs)
            condition = _EXPRESSION.sub(r"\1", str(spec.get("if", "success()"))).strip()
            if not any(f in condition for f in _STATUS_FUNCTIONS):
                condition = f"success() && ({condition})"
            if not truthy(Expression(condition, lookup, failed).evaluate()):
                runs.append(StepRun(step_id, name, "skipped"))
            else:
                started = time.monotonic()
                env = {key: render(value) for key, value in (spec.get("env") or {}).items()}
                for (override_step, key), value in self.overrides.items():
                    if override_step == step_id:
                        assert key in env, f"action.yml step {step_id} has no env {key} to override"
                        env[key] = value
                with_ = {key: render(value) for key, value in (spec.get("with") or {}).items()}
                if "run" in spec:
                    run, step_summary = self._run_step(spec, step_id or "step", name, {**job_env, **env}, workspace)
                    summary += step_summary
                else:
                    run = self._uses_step(spec["uses"], step_id, name, with_)
                run.seconds = time.monotonic() - started
                runs.append(run)
            if step_id:
                steps[step_id] = {"outputs": runs[-1].outputs, "outcome": runs[-1].outcome}
        outputs = {name: render(spec["value"]) for name, spec in self.action["outputs"].items()}
        return ActionRun(runs, outputs, summary, job_env)

    def _run_step(
        self, spec: dict[str, Any], step_id: str, name: str, env: dict[str, str], workspace: Path
    ) -> tuple[StepRun, str]:
        assert spec.get("shell") == "bash", f"step {name}: only shell: bash is emulated"
        temp = Path(env["RUNNER_TEMP"])
        output, summary, script = temp / f"{step_id}.output", temp / f"{step_id}.summary", temp / f"{step_id}.sh"
        output.write_text("", encoding="utf-8")
        summary.write_text("", encoding="utf-8")
        script.write_text(spec["run"], encoding="utf-8")
        process = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
            cwd=workspace,
            env={**env, "GITHUB_OUTPUT": str(output), "GITHUB_STEP_SUMMARY": str(summary)},
            capture_output=True,
            text=True,
            timeout=900,
        )
        outcome = "success" if process.returncode == 0 else "failure"
        run = StepRun(spec.get("id"), name, outcome, process.returncode, process.stdout, process.stderr)
        run.outputs = read_outputs(output)
        return run, summary.read_text(encoding="utf-8")

    def _uses_step(self, uses: str, step_id: str | None, name: str, with_: dict[str, str]) -> StepRun:
        action, _, ref = uses.partition("@")
        assert re.fullmatch(r"[0-9a-f]{40}", ref), f"{uses}: actions are pinned by commit sha"
        run = StepRun(step_id, name, "success")
        if action == "actions/setup-python":
            version = ".".join(map(str, sys.version_info[:2]))
            assert with_["python-version"] == version, f"this machine's CPython is {version}"
            assert with_.get("update-environment") == "false"
            run.outputs = {"python-path": _base_python(), "python-version": ".".join(map(str, sys.version_info[:3]))}
        elif action == "actions/cache/restore":
            restore_keys = [k.strip() for k in with_.get("restore-keys", "").splitlines() if k.strip()]
            hit, matched = self.cache.restore(with_["path"], with_["key"], restore_keys)
            run.outputs = {"cache-hit": "true" if hit else "false", "cache-primary-key": with_["key"]}
            run.outputs["cache-matched-key"] = matched
        elif action == "actions/cache/save":
            run.stdout = "saved\n" if self.cache.save(with_["path"], with_["key"]) else "not saved\n"
        else:
            raise AssertionError(f"{uses} is not emulated")
        return run


def _base_python() -> str:
    """This machine's CPython outside any venv (what setup-python puts in the tool cache)."""
    return str(Path(getattr(sys, "_base_executable", sys.executable)).resolve())
