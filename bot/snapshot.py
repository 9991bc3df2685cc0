"""Step 1: choose the files an export needs, check their sizes, download them at the exact commit."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from bot.errors import CheckpointRejectedError, SkipJob
from bot.hub import HubClient
from bot.repo_config import FILENAME as REPO_CONFIG

CONFIG_MAX_BYTES = 1 << 20
SIDE_FILES = frozenset(
    {
        "config.json",
        "generation_config.json",
        REPO_CONFIG,
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "vocab.txt",
        "vocab.json",
        "merges.txt",
        "spiece.model",
        "sentencepiece.bpe.model",
        "preprocessor_config.json",
    }
)


def needed_files(sizes: dict[str, int | None]) -> list[str]:
    """Top-level config, tokenizer and weight files; pickled ``.bin`` only when there is no safetensors."""
    top = [name for name in sizes if "/" not in name]
    safetensors = [n for n in top if n.endswith(".safetensors") or n == "model.safetensors.index.json"]
    pickles = [
        n for n in top if n.startswith("pytorch_model") and (n.endswith(".bin") or n.endswith(".bin.index.json"))
    ]
    weights = safetensors if any(n.endswith(".safetensors") for n in safetensors) else pickles
    return sorted({n for n in top if n in SIDE_FILES} | set(weights))


def check_sizes(sizes: dict[str, int | None], files: list[str], limit: int) -> int:
    """Refuse before downloading: every size known, the total within ``limit``."""
    unknown = [name for name in files if sizes.get(name) is None]
    if unknown:
        raise CheckpointRejectedError(f"the Hub gave no size for {', '.join(unknown)}; refusing to download")
    total = sum(sizes[name] or 0 for name in files)
    if total > limit:
        raise CheckpointRejectedError(f"checkpoint is {total} bytes, over the {limit} bytes limit")
    return total


def fetch_snapshot(hub: HubClient, repo: str, sha: str, dest: Path, limit: int) -> Path:
    """Download what the export needs into ``dest`` after checking names and sizes."""
    sizes = hub.file_sizes(repo, sha)
    if "config.json" not in sizes:
        raise SkipJob(f"no config.json at {sha[:8]}: not a transformers checkpoint")
    files = needed_files(sizes)
    if not any(n.endswith((".safetensors", ".bin")) for n in files):
        raise SkipJob(f"no weights (*.safetensors or pytorch_model*.bin) at {sha[:8]}")
    check_sizes(sizes, files, limit)
    hub.download(repo, sha, files, dest)
    _check_downloaded(dest, files, limit)
    return dest


def _check_downloaded(dest: Path, files: list[str], limit: int) -> None:
    total = 0
    for name in files:
        info = os.lstat(dest / name)
        if not stat.S_ISREG(info.st_mode):
            raise CheckpointRejectedError(f"{name} is not a regular file after download")
        total += info.st_size
    if total > limit:
        raise CheckpointRejectedError(f"downloaded {total} bytes, over the {limit} bytes limit")


def read_model_config(snapshot: Path) -> dict[str, object]:
    """``config.json`` as data (plain JSON, no code): it must name a ``model_type``."""
    path = snapshot / "config.json"
    if path.stat().st_size > CONFIG_MAX_BYTES:
        raise CheckpointRejectedError("config.json is larger than 1 MB")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise CheckpointRejectedError(f"config.json is not valid JSON: {e}") from e
    if not isinstance(data, dict) or not isinstance(data.get("model_type"), str):
        raise SkipJob("config.json names no model_type: not a transformers checkpoint")
    return data
