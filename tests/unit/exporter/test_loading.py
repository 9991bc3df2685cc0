"""Loading errors: each bad checkpoint gets its own typed error and a one-line message."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from exporter.errors import (
    CheckpointNotFoundError,
    InvalidConfigError,
    MissingConfigError,
    RemoteCodeRefusedError,
    UnsupportedModelTypeError,
    UnsupportedTaskError,
    WeightsError,
)
from exporter.loading import hub_patterns, load_config, looks_like_repo_id, resolve_checkpoint
from exporter.run import ExportRequest, load


def _request(path: Path, task: str = "auto") -> ExportRequest:
    return ExportRequest(model=str(path), task=task, output_dir=path / "out")


def test_missing_folder() -> None:
    with pytest.raises(CheckpointNotFoundError, match="no folder"):
        resolve_checkpoint("./does/not/exist")


def test_file_instead_of_folder(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(CheckpointNotFoundError, match="is a file"):
        resolve_checkpoint(str(tmp_path / "config.json"))


def test_missing_config(tmp_path: Path) -> None:
    with pytest.raises(MissingConfigError, match=r"no config\.json"):
        load(_request(tmp_path))


def test_broken_config_json(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(InvalidConfigError, match="not valid JSON"):
        load_config(tmp_path)


def test_unknown_model_type(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "no-such-model"}))
    with pytest.raises(UnsupportedModelTypeError, match="no-such-model"):
        load_config(tmp_path)


def test_known_to_transformers_but_not_supported(tmp_path: Path) -> None:
    from transformers import AutoConfig

    AutoConfig.for_model("megatron-bert", hidden_size=32).save_pretrained(tmp_path)
    with pytest.raises(UnsupportedModelTypeError, match="'megatron-bert' is not supported"):
        load(_request(tmp_path))


def test_remote_code_refused(tmp_path: Path) -> None:
    config = {"model_type": "bert", "auto_map": {"AutoModel": "modeling_evil.EvilModel"}}
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(RemoteCodeRefusedError, match="--trust-remote-code"):
        load_config(tmp_path)


def test_missing_weights(checkpoint_factory, tmp_path: Path) -> None:
    source = checkpoint_factory("bert", "sequence-classification")
    (tmp_path / "config.json").write_text((source / "config.json").read_text())
    with pytest.raises(WeightsError, match="no weights"):
        load(_request(tmp_path))


def test_corrupt_weights(checkpoint_factory, tmp_path: Path) -> None:
    source = checkpoint_factory("bert", "sequence-classification")
    (tmp_path / "config.json").write_text((source / "config.json").read_text())
    (tmp_path / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00garbage!")
    with pytest.raises(WeightsError, match="cannot load the weights"):
        load(_request(tmp_path))


class _Payload:
    def __reduce__(self):
        return (print, ("pickle payload ran",))


def test_pickle_bin_is_not_executed(checkpoint_factory, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A ``.bin`` holding code is refused by the weights-only loader; the payload never runs."""
    source = checkpoint_factory("bert", "sequence-classification")
    (tmp_path / "config.json").write_text((source / "config.json").read_text())
    with (tmp_path / "pytorch_model.bin").open("wb") as handle:
        pickle.dump({"weights": _Payload()}, handle)
    with pytest.raises(WeightsError):
        load(_request(tmp_path))
    assert "pickle payload ran" not in capsys.readouterr().out


def test_task_not_available(checkpoint_factory) -> None:
    source = checkpoint_factory("vit", "image-classification")
    with pytest.raises(UnsupportedTaskError, match="has no 'masked-lm' head"):
        load(_request(source, task="masked-lm"))


def test_unknown_task_name(checkpoint_factory) -> None:
    source = checkpoint_factory("bert", "sequence-classification")
    with pytest.raises(UnsupportedTaskError, match="unknown task 'summarise'"):
        load(_request(source, task="summarise"))


def test_bin_only_checkpoint_loads(checkpoint_factory, tmp_path: Path) -> None:
    """A checkpoint with only ``pytorch_model.bin`` (plain tensors) loads through the weights-only path."""
    import torch
    from safetensors.torch import load_file

    source = checkpoint_factory("bert", "sequence-classification")
    (tmp_path / "config.json").write_text((source / "config.json").read_text())
    torch.save(load_file(source / "model.safetensors"), tmp_path / "pytorch_model.bin")
    loaded = load(_request(tmp_path))
    assert loaded.task == "sequence-classification"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("bert-base-uncased", True),
        ("org/model.v2", True),
        ("./local", False),
        ("/abs/path", False),
        ("a/b/c", False),
    ],
)
def test_repo_id_detection(text: str, expected: bool) -> None:
    assert looks_like_repo_id(text) is expected


def test_hub_patterns_prefer_safetensors() -> None:
    patterns = hub_patterns(["config.json", "model.safetensors", "pytorch_model.bin", "README.md"])
    assert "model.safetensors" in patterns and "pytorch_model.bin" not in patterns
    assert "pytorch_model.bin" in hub_patterns(["config.json", "pytorch_model.bin"])
    assert "*.py" not in patterns
