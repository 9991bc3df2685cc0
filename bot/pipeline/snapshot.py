"""Step 1: look before downloading, then download what the export needs at the exact commit.

Order, each step only if the one before allows it:

1. the repo listing (names and sizes): unsafe names refused, no ``config.json`` skipped;
2. ``.export-bot.yaml`` (≤ 64 KB by the listing, streamed with that cap): ``enabled: false`` skips;
3. weights present, and the needed files' total within the checkpoint limit (by the listing);
4. ``config.json`` (≤ 1 MB by the listing, streamed with that cap): JSON with a ``model_type``, and
   a model size the limit allows;
5. the weights and tokenizer files, then every file checked to be a regular file.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from bot.errors import CheckpointRejectedError, SkipJob
from bot.hub import HubClient
from bot.pipeline.repo_config import FILENAME as REPO_CONFIG
from bot.pipeline.repo_config import MAX_BYTES as REPO_CONFIG_MAX_BYTES
from bot.pipeline.repo_config import RepoConfig, parse_repo_config

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


@dataclass(frozen=True)
class Listing:
    """A commit's files and sizes, and its ``.export-bot.yaml``: what is known before any weight is fetched."""

    repo: str
    sha: str
    sizes: dict[str, int | None]
    config: RepoConfig


def read_listing(hub: HubClient, repo: str, sha: str) -> Listing:
    """Steps 1–2: the listing and the repo's own settings."""
    sizes = hub.file_sizes(repo, sha)
    check_names(sizes)
    if "config.json" not in sizes:
        raise SkipJob(f"no config.json at {sha[:8]}: not a transformers checkpoint")
    raw = fetch_small(hub, repo, sha, REPO_CONFIG, sizes, REPO_CONFIG_MAX_BYTES) if REPO_CONFIG in sizes else None
    return Listing(repo, sha, sizes, parse_repo_config(raw))


@dataclass(frozen=True)
class Checkpoint:
    """What step 4 accepted: the files to download, ``config.json`` as fetched and as data."""

    files: list[str]
    config_json: bytes
    model_config: dict[str, object]


def check_checkpoint(hub: HubClient, listing: Listing, limit: int) -> Checkpoint:
    """Steps 3–4: the files to download and ``config.json``, or why not."""
    files = needed_files(listing.sizes)
    if not any(n.endswith((".safetensors", ".bin")) for n in files):
        raise SkipJob(f"no weights (*.safetensors or pytorch_model*.bin) at {listing.sha[:8]}")
    check_sizes(listing.sizes, files, limit)
    raw = fetch_small(hub, listing.repo, listing.sha, "config.json", listing.sizes, CONFIG_MAX_BYTES)
    model_config = parse_model_config(raw)
    check_model_size(model_config, limit)
    return Checkpoint(files, raw, model_config)


def fetch_snapshot(hub: HubClient, listing: Listing, dest: Path, limit: int) -> tuple[Path, Checkpoint]:
    """Steps 3–5 into ``dest``; the snapshot folder and what step 4 accepted."""
    checkpoint = check_checkpoint(hub, listing, limit)
    dest.mkdir(parents=True, exist_ok=True)
    rest = [name for name in checkpoint.files if name not in ("config.json", REPO_CONFIG)]  # fetched already
    hub.download(listing.repo, listing.sha, rest, dest)
    _check_downloaded(dest, rest, limit)
    _write_new(dest / "config.json", checkpoint.config_json)
    return dest, checkpoint


def fetch_small(hub: HubClient, repo: str, sha: str, name: str, sizes: dict[str, int | None], cap: int) -> bytes:
    """A small file, refused by its listed size before any byte is fetched, and capped while streaming."""
    size = sizes.get(name)
    if size is None or size > cap:
        shown = "of unknown size" if size is None else f"{size:,} bytes"
        raise CheckpointRejectedError(f"{name} is {shown}, over the {cap:,} bytes limit (not downloaded)")
    return hub.fetch_capped(repo, sha, name, cap)


def _write_new(path: Path, data: bytes) -> None:
    """Create ``path`` (never through a symlink, never over an existing file)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def check_names(sizes: dict[str, int | None]) -> None:
    """Refuse a listing with a name that could leave the snapshot folder (``..``, absolute, ``\\``, NUL)."""
    for name in sizes:
        parts = name.split("/")
        if not name or name.startswith("/") or "\\" in name or "\0" in name or ".." in parts or "" in parts:
            raise CheckpointRejectedError(f"unsafe file name in the repo listing: {name!r}")


def _check_downloaded(dest: Path, files: list[str], limit: int) -> None:
    """Only regular files in the snapshot: a symlink could point the export at a file of the host."""
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


def parse_model_config(raw: bytes) -> dict[str, object]:
    """``config.json`` as data (plain JSON, no code): it must name a ``model_type``."""
    if len(raw) > CONFIG_MAX_BYTES:
        raise CheckpointRejectedError("config.json is larger than 1 MB")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
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
