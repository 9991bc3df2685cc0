"""Step 1: choose the files an export needs, check their sizes, download them at the exact commit."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from bot.errors import CheckpointRejectedError, SkipJob
from bot.hub import HubClient
from bot.pipeline.repo_config import FILENAME as REPO_CONFIG

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
    check_names(sizes)
    if "config.json" not in sizes:
        raise SkipJob(f"no config.json at {sha[:8]}: not a transformers checkpoint")
    files = needed_files(sizes)
    if not any(n.endswith((".safetensors", ".bin")) for n in files):
        raise SkipJob(f"no weights (*.safetensors or pytorch_model*.bin) at {sha[:8]}")
    check_sizes(sizes, files, limit)
    hub.download(repo, sha, files, dest)
    _check_downloaded(dest, files, limit)
    return dest


def check_names(sizes: dict[str, int | None]) -> None:
    """Refuse a listing with a name that could leave the snapshot folder (``..``, absolute, ``\\``, NUL)."""
    for name in sizes:
        parts = name.split("/")
        if not name or name.startswith("/") or "\\" in name or "\0" in name or ".." in parts or "" in parts:
            raise CheckpointRejectedError(f"unsafe file name in the repo listing: {name!r}")


def _check_downloaded(dest: Path, files: list[str], limit: int) -> None:
    """Only regular files in the snapshot: the bot reads config.json and .export-bot.yaml from it."""
    for root, dirs, names in os.walk(dest):
        for name in dirs + names:
            if os.path.islink(os.path.join(root, name)):
                rel = os.path.relpath(os.path.join(root, name), dest)
                raise CheckpointRejectedError(f"{rel} is a symlink in the snapshot; refusing it")
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


_HIDDEN = ("hidden_size", "d_model", "n_embd", "dim", "embed_dim")
_LAYERS = ("num_hidden_layers", "n_layer", "n_layers", "num_layers", "encoder_layers", "decoder_layers")
_FFN = ("intermediate_size", "hidden_dim", "d_ff", "ffn_dim", "n_inner", "encoder_ffn_dim")


def estimated_parameters(config: dict[str, object]) -> int:
    """A rough parameter count from ``config.json`` sizes (embeddings + layers), sub-configs included.

    Loading builds the model at the size the config asks for, whatever the weights hold: a config
    asking for a trillion parameters would exhaust memory before any check could run.
    """
    total = sum(estimated_parameters(v) for v in config.values() if isinstance(v, dict))

    def size(keys: tuple[str, ...], default: int) -> int:
        for key in keys:
            value = config.get(key)
            if isinstance(value, bool) or value is None:
                continue
            if not isinstance(value, int) or value < 0:
                raise CheckpointRejectedError(f"config.json: {key} is {value!r}, not a size")
            return value
        return default

    hidden = size(_HIDDEN, 0)
    if hidden:
        layers = sum(size((key,), 0) for key in _LAYERS if key in config) or 1
        ffn = size(_FFN, 4 * hidden)
        total += size(("vocab_size",), 0) * hidden + size(("max_position_embeddings",), 0) * hidden
        total += layers * (4 * hidden * hidden + 2 * hidden * ffn)
    return total


def check_model_size(config: dict[str, object], limit_bytes: int) -> None:
    """Refuse a config whose model would not fit the checkpoint limit even at one byte per parameter."""
    params = estimated_parameters(config)
    if params > limit_bytes:
        raise CheckpointRejectedError(
            f"config.json asks for about {params:,} parameters, more than the {limit_bytes:,} bytes limit allows"
        )
