"""A graph exported with its weights as inputs, completed from the module's tensors (exporter.weights)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from exporter import weights
from exporter.errors import ExportFailedError


class _TiedLM(torch.nn.Module):
    """An embedding read by a Gather and, transposed, by the output projection (tied), a Linear, a buffer."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(64, 8)  # 2 KiB: streamed
        self.proj = torch.nn.Linear(8, 8)
        self.head = torch.nn.Linear(8, 64, bias=False)
        self.head.weight = self.embed.weight
        self.register_buffer("scale", torch.full((8,), 0.5), persistent=False)

    def forward(self, input_ids: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"logits": self.head(self.proj(self.embed(input_ids)) * self.scale)}


def _export(module: torch.nn.Module, tmp_path: Path, threshold: int = 1 << 30) -> tuple[list[Path], np.ndarray]:
    torch.manual_seed(0)
    wrapped = weights.WeightsAsInputs(module.eval(), ("input_ids",), ("logits",))
    ids = torch.tensor([[1, 2, 3, 4]])
    path = tmp_path / "model.onnx"
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapped,
            (ids, *wrapped.weights.values()),
            path,
            dynamo=False,
            input_names=["input_ids", *wrapped.weights],
            output_names=["logits"],
            dynamic_axes={"input_ids": {0: "batch_size", 1: "sequence_length"}},
            opset_version=18,
            export_params=False,
        )
    graph = onnx.load(path)
    files = weights.save(graph, weights.attach(graph, wrapped.weights, {"input_ids"}), path, threshold)
    with torch.no_grad():
        expected = module(input_ids=torch.tensor([[5, 6, 7], [1, 1, 2]]))["logits"].numpy()
    return files, expected


def _run(path: Path) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {"input_ids": np.array([[5, 6, 7], [1, 1, 2]], dtype=np.int64)})[0])


def test_weights_are_inputs_once_each_and_leave_the_module_as_it_was() -> None:
    module = _TiedLM()
    before = {name: tensor.clone() for name, tensor in module.state_dict().items()}
    wrapped = weights.WeightsAsInputs(module, ("input_ids",), ("logits",))

    assert sorted(wrapped.weights) == ["model.embed.weight", "model.proj.bias", "model.proj.weight", "model.scale"]
    ids = torch.tensor([[1, 2]])
    doubled = [tensor * 2 for tensor in wrapped.weights.values()]
    with torch.no_grad():
        (logits,) = wrapped(ids, *doubled)
        names = [name.removeprefix("model.") for name in wrapped.weights]
        swapped = torch.func.functional_call(module, dict(zip(names, doubled, strict=True)), (ids,))
    torch.testing.assert_close(logits, swapped["logits"])  # the tensors passed in are the ones used …
    assert module.head.weight is module.embed.weight  # tied: one input; afterwards the module is untouched
    for name, tensor in module.state_dict().items():
        torch.testing.assert_close(tensor, before[name])


def test_an_inline_file_holds_each_weight_once_transposes_folded(tmp_path: Path) -> None:
    files, expected = _export(_TiedLM(), tmp_path)

    assert files == [tmp_path / "model.onnx"]
    model = onnx.load(files[0])
    onnx.checker.check_model(model, full_check=True)
    assert [value.name for value in model.graph.input] == ["input_ids"]
    assert "Transpose" not in {node.op_type for node in model.graph.node}  # folded into initializers
    matmul_weights = {node.input[1] for node in model.graph.node if node.op_type == "MatMul"}
    assert matmul_weights <= {tensor.name for tensor in model.graph.initializer}  # what quantizers need
    np.testing.assert_allclose(_run(files[0]), expected, rtol=1e-5, atol=1e-6)


def test_weights_above_the_threshold_go_to_external_data(tmp_path: Path) -> None:
    files, expected = _export(_TiedLM(), tmp_path, threshold=100)

    assert files == [tmp_path / "model.onnx", tmp_path / "model.onnx_data"]
    assert files[1].stat().st_size == 2 * 64 * 8 * 4  # the tied embedding and its transpose; the rest is small
    np.testing.assert_allclose(_run(files[0]), expected, rtol=1e-5, atol=1e-6)


def _graph_with_input(name: str, shape: list[int]) -> onnx.ModelProto:
    float32 = onnx.TensorProto.FLOAT
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("MatMul", ["x", name], ["y"])],
        "g",
        [
            onnx.helper.make_tensor_value_info("x", float32, [2, 3]),
            onnx.helper.make_tensor_value_info(name, float32, shape),
        ],
        [onnx.helper.make_tensor_value_info("y", float32, [2, shape[1]])],
    )
    return onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 18)])


def test_a_graph_input_that_is_no_tensor_of_the_module_is_an_error() -> None:
    with pytest.raises(ExportFailedError, match="w is neither a model input nor a parameter"):
        weights.attach(_graph_with_input("w", [3, 4]), {}, {"x"})
    with pytest.raises(ExportFailedError, match="graph input w is"):
        weights.attach(_graph_with_input("w", [3, 4]), {"w": torch.zeros(4, 3)}, {"x"})


def test_the_checker_sees_the_graph_before_its_weights_are_written(tmp_path: Path) -> None:
    model = _graph_with_input("w", [3, 400])
    attached = weights.attach(model, {"w": torch.ones(3, 400)}, {"x"})  # 4.8 kB: streamed, not serialized
    model.graph.node[0].op_type = "NoSuchOp"

    with pytest.raises(ExportFailedError, match=r"onnx\.checker rejected model\.onnx"):
        weights.save(model, attached, tmp_path / "model.onnx", 1 << 30)
    assert not (tmp_path / "model.onnx").exists()


def test_a_weight_read_only_inside_a_subgraph_is_kept() -> None:
    float32 = onnx.TensorProto.FLOAT
    branch = onnx.helper.make_graph(
        [onnx.helper.make_node("MatMul", ["x", "w"], ["y_then"])],
        "then",
        [],
        [onnx.helper.make_tensor_value_info("y_then", float32, [2, 4])],
    )
    other = onnx.helper.make_graph(
        [onnx.helper.make_node("Identity", ["x"], ["y_else"])],
        "else",
        [],
        [onnx.helper.make_tensor_value_info("y_else", float32, [2, 3])],
    )
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("If", ["flag"], ["y"], then_branch=branch, else_branch=other)],
        "g",
        [
            onnx.helper.make_tensor_value_info("x", float32, [2, 3]),
            onnx.helper.make_tensor_value_info("flag", onnx.TensorProto.BOOL, [1]),
            onnx.helper.make_tensor_value_info("w", float32, [3, 4]),
            onnx.helper.make_tensor_value_info("unused", float32, [3, 4]),
        ],
        [onnx.helper.make_tensor_value_info("y", float32, None)],
    )
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 18)])

    attached = weights.attach(model, {"w": torch.ones(3, 4), "unused": torch.ones(3, 4)}, {"x", "flag"})

    assert [weight.name for weight in attached] == ["w"]
    assert [value.name for value in model.graph.input] == ["x", "flag"]
