"""Bot settings (env + YAML file) and the repo's ``.export-bot.yaml``."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.errors import ConfigError
from bot.pipeline.repo_config import RepoConfig, load_repo_config
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


def test_repo_config_defaults_when_absent(tmp_path: Path) -> None:
    config = load_repo_config(tmp_path)
    assert config == RepoConfig() and config.enabled and config.formats == ["onnx", "torchscript"]
    assert exporter_args(config, None) == (
        "-m",
        "exporter",
        "export",
        "--model",
        SNAPSHOT,
        "--formats",
        "onnx,torchscript",
        "--quiet",
        OUTPUT,
    )


def test_repo_config_values_reach_the_exporter(tmp_path: Path) -> None:
    (tmp_path / ".export-bot.yaml").write_text("tasks: [feature-extraction]\nopset: 17\natol: 0.001\nformats: [onnx]\n")
    config = load_repo_config(tmp_path)
    args = exporter_args(config, config.task_list()[0])
    assert args[args.index("--task") + 1] == "feature-extraction"
    assert args[args.index("--opset") + 1] == "17" and args[args.index("--atol") + 1] == "0.001"
    assert args[args.index("--formats") + 1] == "onnx"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("enabled: maybe\n", "enabled"),
        ("formats: [tflite]\n", "formats"),
        ("atol: -1\n", "atol"),
        ("tasks: ['; rm -rf /']\n", "tasks"),
        ("surprise: 1\n", "surprise"),
        ("tasks: [a\n", "not valid YAML"),
        ("- just\n- a list\n", "invalid"),
    ],
)
def test_invalid_repo_config(tmp_path: Path, text: str, problem: str) -> None:
    (tmp_path / ".export-bot.yaml").write_text(text)
    with pytest.raises(ConfigError, match=problem):
        load_repo_config(tmp_path)
