"""The graph cache's key, its weight mapping and its size limit, without exporting anything."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from exporter.graph_cache import (
    MANIFEST,
    GraphCache,
    GraphCacheError,
    Source,
    StoredComponent,
    cache_key,
    evict,
    map_initializers,
    write_from_entry,
)
from exporter.sample import tiny_config
from exporter.versions import versions


def key_of(config: dict[str, Any], **changes: Any) -> str:
    fields: dict[str, Any] = {
        "architecture": "BertForSequenceClassification",
        "task": "sequence-classification",
        "opset": 18,
        "formats": ("onnx", "torchscript"),
        "export_shape": {"batch_size": 2, "sequence_length": 16},
        "validation_shapes": ({"batch_size": 2, "sequence_length": 16}, {"batch_size": 3, "sequence_length": 11}),
        "external_data_threshold": 1 << 30,
        "versions": versions(18),
    }
    return cache_key(config, **{**fields, **changes})


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    return dict(tiny_config("bert", "sequence-classification").to_dict())


def test_fields_that_do_not_change_the_graph_keep_the_key(config: dict[str, Any]) -> None:
    renamed = {
        **config,
        "_name_or_path": "someone/else",
        "transformers_version": "0.0.1",
        "architectures": ["BertModel"],
        "id2label": {0: "negative", 1: "positive"},
        "label2id": {"negative": 0, "positive": 1},
    }
    assert key_of(renamed) == key_of(config)
    assert key_of(config, formats=("torchscript", "onnx")) == key_of(config)


@pytest.mark.parametrize(
    "change",
    [
        {"num_hidden_layers": 3},
        {"hidden_act": "relu"},
        {"id2label": {0: "a", 1: "b", 2: "c"}, "label2id": {"a": 0, "b": 1, "c": 2}},
    ],
)
def test_config_changes_that_change_the_graph_change_the_key(config: dict[str, Any], change: dict[str, Any]) -> None:
    assert key_of({**config, **change}) != key_of(config)


@pytest.mark.parametrize(
    "change",
    [
        {"task": "token-classification"},
        {"opset": 17},
        {"formats": ("onnx",)},
        {"export_shape": {"batch_size": 2, "sequence_length": 8}},
        {"versions": {**versions(18), "torch": "0.0"}},
        {"architecture": "BertModel"},
    ],
)
def test_export_settings_change_the_key(config: dict[str, Any], change: dict[str, Any]) -> None:
    assert key_of(config, **change) != key_of(config)


class _Two(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.first = torch.nn.Linear(8, 4)
        self.second = torch.nn.Linear(8, 4)
        torch.nn.init.normal_(self.second.bias)


def test_weights_map_to_parameters_as_is_or_transposed() -> None:
    module = _Two()
    weight = module.first.weight.detach().numpy()
    mapping = map_initializers(
        [
            ("w", weight.copy()),
            ("onnx::MatMul_7", weight.T.copy()),
            ("b", module.second.bias.detach().numpy().copy()),
            ("shape", np.array([1, 2, 3], dtype=np.int64)),
            ("scale", np.array([0.125], dtype=np.float32)),
        ],
        module,
    )
    assert mapping == {
        "w": {"parameter": "first.weight", "transpose": False},
        "onnx::MatMul_7": {"parameter": "first.weight", "transpose": True},
        "b": {"parameter": "second.bias", "transpose": False},
    }


def test_a_large_weight_that_matches_no_parameter_is_refused() -> None:
    module = _Two()
    derived = module.first.weight.detach().numpy() * 2
    with pytest.raises(GraphCacheError, match="matches no parameter"):
        map_initializers([("folded", derived)], module)


def test_a_weight_equal_to_several_parameters_is_refused() -> None:
    module = _Two()
    with torch.no_grad():
        module.second.weight.copy_(module.first.weight)
    with pytest.raises(GraphCacheError, match="several parameters"):
        map_initializers([("w", module.first.weight.detach().numpy().copy())], module)


def test_tied_parameters_are_one_weight() -> None:
    module = _Two()
    module.second.weight = module.first.weight
    mapping = map_initializers([("w", module.first.weight.detach().numpy().copy())], module)
    assert mapping["w"]["parameter"] in {"first.weight", "second.weight"}


def _entry(root: Path, name: str, size: int, used: float) -> Path:
    path = root / name
    path.mkdir(parents=True)
    (path / MANIFEST).write_text(json.dumps({"format": 1}))
    (path / "model.onnx").write_bytes(b"x" * size)
    os.utime(path, (used, used))
    return path


def test_eviction_drops_least_recently_used_entries_until_under_the_limit(tmp_path: Path) -> None:
    oldest = _entry(tmp_path, "repo-a/k1", 1000, 100)
    middle = _entry(tmp_path, "repo-b/k2", 1000, 200)
    newest = _entry(tmp_path, "repo-a/k3", 1000, 300)
    removed = evict(tmp_path, 2500)
    assert removed == [oldest]
    assert not oldest.exists() and middle.exists() and newest.exists()
    stale, fresh = tmp_path / "repo-a" / ".store-1", tmp_path / "repo-a" / ".store-2"
    stale.mkdir()
    fresh.mkdir()
    os.utime(stale, (0, 0))  # an export died while storing, long ago
    assert evict(tmp_path, 2500) == []
    assert not stale.exists() and fresh.exists()
    assert evict(tmp_path, 0) == [middle, newest]


class _Net(torch.nn.Module):
    def __init__(self, seed: int) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.first = torch.nn.Linear(6, 5)
        self.second = torch.nn.Linear(5, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.second(torch.relu(self.first(x)))


def _stored(tmp_path: Path) -> tuple[GraphCache, str, dict[str, Any]]:
    """A real entry: a small net exported by the TorchScript-based torch.onnx and traced, then stored."""
    import warnings

    net, example = _Net(0).eval(), torch.randn(2, 3, 6)  # 3-D: Linear becomes MatMul of a transposed weight
    out = tmp_path / "first"
    out.mkdir()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (example,), str(out / "model.onnx"), dynamo=False, input_names=["x"],
                          output_names=["y"], dynamic_axes={"x": {0: "batch", 1: "sequence"}})  # fmt: skip
        torch.jit.save(torch.jit.trace(net, example), str(out / "model.pt"))
    cache = GraphCache(tmp_path / "cache")
    files = {"onnx": out / "model.onnx", "torchscript": out / "model.pt"}
    methods = {"onnx": "torchscript", "torchscript": "trace"}
    cache.store("k", Source("net", "1"), [StoredComponent(name="model", module=net, files=files, methods=methods)])
    manifest = cache.lookup("k")
    assert manifest is not None
    return cache, "k", manifest


def test_an_entry_takes_new_weights_into_both_files(tmp_path: Path) -> None:
    import onnxruntime as ort

    cache, key, manifest = _stored(tmp_path)
    assert {how["transpose"] for how in manifest["components"]["model"]["initializers"].values()} == {True, False}
    new = _Net(1).eval()
    out = tmp_path / "second"
    out.mkdir()
    files, methods = write_from_entry(cache, key, manifest, {"model": new}, out, 1 << 30)
    assert files == {("onnx", "model"): [out / "model.onnx"], ("torchscript", "model"): [out / "model.pt"]}
    assert methods == {("onnx", "model"): "torchscript", ("torchscript", "model"): "trace"}
    x = torch.randn(4, 5, 6)
    with torch.no_grad():
        expected = new(x).numpy()
        traced = torch.jit.load(str(out / "model.pt"))(x).numpy()
    (onnx_out,) = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"]).run(
        None, {"x": x.numpy()}
    )
    np.testing.assert_allclose(onnx_out, expected, atol=1e-6)
    np.testing.assert_allclose(traced, expected, atol=1e-6)
    with torch.no_grad():
        assert np.abs(_Net(0)(x).numpy() - expected).max() > 1e-3  # the old weights would not pass


def test_an_entry_that_names_another_file_is_refused(tmp_path: Path) -> None:
    cache, key, manifest = _stored(tmp_path)
    manifest["components"]["model"]["files"]["onnx"] = "../model.onnx"
    out = tmp_path / "second"
    out.mkdir()
    with pytest.raises(GraphCacheError, match="onnx file of model"):
        write_from_entry(cache, key, manifest, {"model": _Net(1)}, out, 1 << 30)
    assert not (tmp_path / "model.onnx").exists()
