"""Bot settings from environment variables, optionally a YAML settings file, then defaults.

Environment variables win over the file. Names: ``EXPORT_BOT_<FIELD>`` (e.g.
``EXPORT_BOT_WEBHOOK_SECRET``, ``EXPORT_BOT_SANDBOX``), except the Hub's own ``HF_TOKEN`` and
``HF_ENDPOINT``. The file is named by ``EXPORT_BOT_SETTINGS_FILE`` (or ``--settings``).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

SETTINGS_FILE_ENV = "EXPORT_BOT_SETTINGS_FILE"
SandboxBackend = Literal["bwrap", "container", "docker", "process"]
GiB = 1 << 30


class BotSettings(BaseSettings):
    """Everything an operator can set. Secrets are ``SecretStr`` so they never print."""

    model_config = SettingsConfigDict(env_prefix="EXPORT_BOT_", extra="forbid", frozen=True)

    webhook_secret: SecretStr | None = None
    # Operators' pages (/, /jobs, /metrics): with a token, anyone who sends it as a bearer token;
    # without one, only direct loopback clients, and private repos never show (bot.web.operators).
    operator_token: SecretStr | None = None
    hf_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("HF_TOKEN", "EXPORT_BOT_HF_TOKEN", "hf_token")
    )
    hf_endpoint: str = Field(
        default="https://huggingface.co",
        validation_alias=AliasChoices("HF_ENDPOINT", "EXPORT_BOT_HF_ENDPOINT", "hf_endpoint"),
    )
    bot_user: str = "export-bot"
    store_url: str = "sqlite:///./export-bot.sqlite3"
    work_dir: Path = Path("./export-bot-work")
    watched_branch: str = "main"

    sandbox: SandboxBackend = "bwrap"
    # The container backend ("container", or its alias "docker"): the image, and the engine's command
    # with its global flags, e.g. "podman --runtime runc --cgroup-manager=cgroupfs" (docs/sandbox.md).
    container_image: str = Field(
        default="hub-exporter-bot:latest",
        validation_alias=AliasChoices(
            "EXPORT_BOT_CONTAINER_IMAGE", "EXPORT_BOT_DOCKER_IMAGE", "container_image", "docker_image"
        ),
    )
    container_cli: str = "docker"
    max_checkpoint_bytes: int = Field(default=4 * GiB, gt=0)
    export_timeout: float = Field(default=1800.0, gt=0)
    memory_bytes: int = Field(default=16 * GiB, gt=0)
    sandbox_threads: int = Field(default=2, ge=1)
    # Processes and threads at once in one export, and the size of its private /tmp (docs/sandbox.md).
    sandbox_max_processes: int = Field(default=512, ge=16)
    sandbox_tmp_bytes: int = Field(default=1 * GiB, gt=0)

    hub_timeout: float = Field(default=60.0, gt=0)
    max_body_bytes: int = Field(default=256 * 1024, gt=0)
    body_timeout_seconds: float = Field(default=10.0, gt=0)  # the whole webhook body, or 408
    lease_seconds: float = Field(default=60.0, gt=0)
    # Transient errors (Hub 5xx, timeouts, network) are retried this long after the first one;
    # other errors (bugs, a worker that died) at most max_attempts times.
    retry_window_seconds: float = Field(default=24 * 3600.0, ge=0)
    max_attempts: int = Field(default=5, ge=1)
    backoff_seconds: float = Field(default=30.0, ge=0)
    backoff_max_seconds: float = Field(default=600.0, ge=0)
    poll_seconds: float = Field(default=1.0, gt=0)
    # SIGTERM: a running job gets this long to finish, then it is handed back (attempt not counted).
    stop_grace_seconds: float = Field(default=5.0, ge=0)
    # Checked exports kept on disk for a retry of the publish step only, all jobs together.
    keep_outputs_bytes: int = Field(default=32 * GiB, ge=0)
    # A Hub discussion on the repo for each commit whose export failed (repos opt out in .export-bot.yaml).
    failure_discussions: bool = True
    # Redis mode: a queued job nobody claimed this long after it was due (or a running job whose lease
    # ran out) gets its message sent again by the sweeper in every worker process.
    redispatch_seconds: float = Field(default=300.0, gt=0)
    keep_work_dirs: bool = False
    # Graphs of earlier exports, one folder per repo, reused when a commit changes only the weights
    # (exporter/graph_cache.py); default: <work_dir>/graph-cache. Least recently used entries are
    # evicted after each job above max bytes; 0 turns the cache off.
    graph_cache_dir: Path | None = None
    graph_cache_max_bytes: int = Field(default=8 * GiB, ge=0)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = os.environ.get(SETTINGS_FILE_ENV)
        if path:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=path))
        return tuple(sources)

    def export_fingerprint(self) -> str:
        """What, besides repo and sha, changes the export: part of the dedup key."""
        data = {"sandbox_limits": [self.memory_bytes, self.export_timeout], "layout": 1}
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]

    def graph_cache_root(self) -> Path | None:
        """Where the graph cache lives, or ``None`` when it is off."""
        if self.graph_cache_max_bytes == 0:
            return None
        return self.graph_cache_dir if self.graph_cache_dir is not None else Path(self.work_dir) / "graph-cache"

    def token(self) -> str | None:
        return self.hf_token.get_secret_value() if self.hf_token else None
