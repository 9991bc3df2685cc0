"""Bot settings (env + YAML file) and the repo's ``.export-bot.yaml``."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.errors import RepoConfigError
from bot.pipeline.repo_config import RepoConfig, parse_repo_config
from bot.pipeline.sandboxed_export import exporter_args
from bot.sandbox import OUTPUT, SNAPSHOT
from bot.settings import BotSettings


def test_settings_from_env_and_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = tmp_path / "bot.yaml"
    file.write_text("bot_user: my-bot\nsandbox: docker\nwatched_branch: release\n")
    monkeypatch.setenv("EXPORT_BOT_SETTINGS_FILE", str(file))
    monkeypatch.setenv("EXPORT_BOT_SANDBOX", "process")  # the environment wins over the file
    monkeypatch.setenv("HF_TOKEN", "hf_abc")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:1")
    monkeypatch.setenv("EXPORT_BOT_WEBHOOK_SECRET", "s")
    settings = BotSettings()
    assert (settings.bot_user, settings.sandbox, settings.watched_branch) == ("my-bot", "process", "release")
    assert settings.token() == "hf_abc" and settings.hf_endpoint == "http://127.0.0.1:1"
    assert "hf_abc" not in repr(settings) and "hf_abc" not in str(settings.model_dump())
    assert settings.store_url == "sqlite:///./export-bot.sqlite3"


def test_bad_settings_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXPORT_BOT_SANDBOX", "chroot")
    with pytest.raises(ValueError, match="sandbox"):
        BotSettings()


def test_repo_config_defaults_when_absent() -> None:
    config = parse_repo_config(None)
    assert config == RepoConfig() and config.enabled and config.formats == ["onnx", "torchscript"]
    assert config.notify_failures
    assert exporter_args(config, None) == (
        "-m",
        "exporter",
        "export",
        "--model",
        SNAPSHOT,
        "--formats",
        "onnx,torchscript",
        "--quiet",
        "--dtypes",
        "fp32,q8",
        OUTPUT,
    )


def test_the_report_names_the_repo_and_commit_not_the_sandbox_path() -> None:
    args = exporter_args(RepoConfig(), None, "alice/tiny", "0" * 40)
    assert args[args.index("--source-repo") + 1] == "alice/tiny"
    assert args[args.index("--source-revision") + 1] == "0" * 40


def test_repo_config_values_reach_the_exporter() -> None:
    config = parse_repo_config(b"tasks: [feature-extraction]\nopset: 17\natol: 0.001\nrtol: 0.01\nformats: [onnx]\n")
    args = exporter_args(config, config.task_list()[0])
    assert args[args.index("--task") + 1] == "feature-extraction"
    assert args[args.index("--opset") + 1] == "17" and args[args.index("--atol") + 1] == "0.001"
    assert args[args.index("--rtol") + 1] == "0.01"
    assert args[args.index("--dtypes") + 1] == "fp32,q8"  # the bot's default set
    assert args[args.index("--formats") + 1] == "onnx"


def test_repo_config_dtypes() -> None:
    config = parse_repo_config(b"dtypes: [q4, fp16]\n")
    args = exporter_args(config, None)
    assert args[args.index("--dtypes") + 1] == "q4,fp16"
    assert "--dtypes" not in exporter_args(parse_repo_config(b"formats: [torchscript]\n"), None)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("enabled: maybe\n", "enabled"),
        ("formats: [tflite]\n", "formats"),
        ("atol: -1\n", "atol"),
        ("rtol: 2\n", "rtol"),
        ("dtypes: [int3]\n", "dtypes"),
        ("tasks: ['; rm -rf /']\n", "tasks"),
        ("surprise: 1\n", "surprise"),
        ("tasks: [a\n", "not valid YAML"),
        ("- just\n- a list\n", "invalid"),
    ],
)
def test_invalid_repo_config(text: str, problem: str) -> None:
    with pytest.raises(RepoConfigError, match=problem) as error:
        parse_repo_config(text.encode())
    assert error.value.notify  # the author did not say otherwise


def test_invalid_repo_config_still_honours_notify_failures() -> None:
    with pytest.raises(RepoConfigError, match="surprise") as error:
        parse_repo_config(b"notify_failures: false\nsurprise: 1\n")
    assert not error.value.notify


def test_repo_config_over_64_kb() -> None:
    with pytest.raises(RepoConfigError, match="larger than 65536 bytes"):
        parse_repo_config(b"#" * 70_000)
