"""Checkpoint in, eval-mode model out: a local folder or a Hub repo at a revision.

Weights are read from safetensors when present; a ``.bin`` only through transformers' loader, which
uses ``torch.load(weights_only=True)`` and so refuses pickled code. Remote code is refused unless asked.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from exporter.errors import (
    CheckpointNotFoundError,
    HubError,
    InvalidConfigError,
    MissingConfigError,
    RemoteCodeRefusedError,
    UnsupportedModelTypeError,
    WeightsError,
    first_line,
)

if TYPE_CHECKING:
    from exporter.specs import InputSpec, ModelSpec

SAFETENSORS_PATTERNS = ["model.safetensors", "model-*.safetensors", "model.safetensors.index.json"]
BIN_PATTERNS = ["pytorch_model.bin", "pytorch_model-*.bin", "pytorch_model.bin.index.json"]
CONFIG_PATTERNS = ["config.json", "generation_config.json"]


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint on local disk: where it is and, for a Hub repo, which commit it came from."""

    path: Path
    source: str
    revision: str | None = None


@dataclass
class Loaded:
    """A model ready to export, with what the later steps need to know about it."""

    checkpoint: Checkpoint
    spec: ModelSpec
    task: str
    config: Any
    model: Any
    inputs: tuple[InputSpec, ...]
    #: Argument names of ``model.forward``.
    forward_parameters: frozenset[str] = frozenset()
    #: Config values the spec changed before the model was built: key → ``{"checkpoint", "exported"}``.
    config_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)


def looks_like_repo_id(model: str) -> bool:
    """``name`` or ``namespace/name`` as the Hub allows it (huggingface_hub's own check)."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(model)
    except HFValidationError:
        return False
    return True


def resolve_checkpoint(
    model: str, revision: str | None = None, token: str | None = None, trust_remote_code: bool = False
) -> Checkpoint:
    """A local folder as is, otherwise a Hub repo id downloaded at ``revision`` (only the files needed)."""
    local = Path(model).expanduser()
    if local.is_dir():
        return Checkpoint(local.resolve(), model, revision)
    if local.exists():
        raise CheckpointNotFoundError(f"{model} is a file; pass the folder that holds config.json")
    if not looks_like_repo_id(model):
        raise CheckpointNotFoundError(f"no folder {model} (and it is not a Hub repo id)")
    return _download(model, revision, token, trust_remote_code)


def hub_patterns(filenames: list[str], trust_remote_code: bool = False) -> list[str]:
    """Which files of a repo the export needs: config, and safetensors weights (``.bin`` only without)."""
    has_safetensors = any(name.endswith(".safetensors") for name in filenames)
    patterns = CONFIG_PATTERNS + (SAFETENSORS_PATTERNS if has_safetensors else BIN_PATTERNS)
    if trust_remote_code:
        patterns.append("*.py")
    return patterns


def _download(repo_id: str, revision: str | None, token: str | None, trust_remote_code: bool) -> Checkpoint:
    from huggingface_hub import HfApi, constants, snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    token = token or os.environ.get("HF_TOKEN") or None
    where = f"{repo_id}@{revision}" if revision else repo_id
    try:
        if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on"):
            path = snapshot_download(repo_id, revision=revision, token=token)
            return Checkpoint(Path(path), repo_id, revision)
        info = HfApi(token=token).model_info(repo_id, revision=revision)
        names = [sibling.rfilename for sibling in info.siblings or []]
        patterns = hub_patterns(names, trust_remote_code)
        path = snapshot_download(repo_id, revision=info.sha, allow_patterns=patterns, token=token)
    except RevisionNotFoundError as e:
        raise HubError(f"revision {revision!r} not found in {repo_id}") from e
    except GatedRepoError as e:
        raise HubError(f"{repo_id} is gated: accept its terms on the Hub and pass a token (HF_TOKEN)") from e
    except RepositoryNotFoundError as e:
        raise HubError(f"repo {repo_id} not found on the Hub (or private: pass a token with HF_TOKEN)") from e
    except LocalEntryNotFoundError as e:
        raise HubError(f"{where} is not in the local cache and HF_HUB_OFFLINE is set") from e
    except HfHubHTTPError as e:
        raise HubError(f"Hub error for {where}: {first_line(e)}") from e
    except (OSError, ConnectionError, _transport_error()) as e:
        raise HubError(f"cannot reach the Hub at {constants.ENDPOINT} for {where}: {e}") from e
    return Checkpoint(Path(path), repo_id, info.sha)


def _transport_error() -> type[Exception]:
    """The HTTP client's base error: huggingface_hub 2 talks through httpx2, older releases through httpx."""
    try:
        from httpx2 import HTTPError
    except ImportError:
        from httpx import HTTPError  # type: ignore[assignment]
    return HTTPError


def read_config_dict(path: Path) -> dict[str, Any]:
    """``config.json`` as a dict, with one-line errors for a missing or broken file."""
    config_file = path / "config.json"
    if not config_file.is_file():
        raise MissingConfigError(f"no config.json in {path}: is this a transformers checkpoint folder?")
    try:
        data = json.loads(config_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InvalidConfigError(f"config.json in {path} is not valid JSON: {e}") from e
    if not isinstance(data, dict):
        raise InvalidConfigError(f"config.json in {path} is not a JSON object")
    return data


def load_config(path: Path, trust_remote_code: bool = False, **overrides: Any) -> Any:
    """The transformers config; refuses checkpoints whose config needs remote code unless trusted."""
    from transformers import AutoConfig

    data = read_config_dict(path)
    if "auto_map" in data and not trust_remote_code:
        raise RemoteCodeRefusedError(
            f"{path.name} ships its own model code (auto_map); pass --trust-remote-code to run it"
        )
    model_type = data.get("model_type")
    if not model_type:
        raise InvalidConfigError(f"config.json in {path} has no model_type")
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    if model_type not in CONFIG_MAPPING and "auto_map" not in data:  # CONFIG_MAPPING sees registered types
        raise UnsupportedModelTypeError(
            f"model type {model_type!r} is unknown to transformers {_transformers_version()}; "
            "describe it with --spec path.py:Name"
        )
    try:
        return AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code, **overrides)
    except (KeyError, ValueError, TypeError) as e:
        raise InvalidConfigError(f"config.json in {path} is invalid: {first_line(e)}") from e


def _transformers_version() -> str:
    import transformers

    return transformers.__version__


def weight_files(path: Path) -> list[Path]:
    found = [p for pattern in SAFETENSORS_PATTERNS + BIN_PATTERNS for p in path.glob(pattern)]
    return sorted(p for p in found if not p.name.endswith(".json"))


def load_model(model_class: Any, path: Path, config: Any, trust_remote_code: bool = False) -> Any:
    """Build the head ``model_class`` and load the checkpoint's weights into it, in eval mode."""
    if not weight_files(path):
        raise WeightsError(f"no weights in {path}: expected model.safetensors (or pytorch_model.bin)")
    try:
        model = model_class.from_pretrained(
            path, config=config, trust_remote_code=trust_remote_code, attn_implementation="eager"
        )
    except Exception as e:  # transformers raises OSError, RuntimeError, ValueError, SafetensorError …
        raise WeightsError(f"cannot load the weights in {path}: {first_line(e)}") from e
    return model.eval()
