"""``exporter.reproducible``: what is stripped, and that the stripped files still load and run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import TensorProto, helper

from exporter.reproducible import strip_onnx, strip_torchscript

_TRACE = 'File "/opt/venv/lib/python3.11/site-packages/transformers/models/bert/modeling_bert.py", line 1'


def _meta(key: str, value: str) -> onnx.StringStringEntryProto:
    return onnx.StringStringEntryProto(key=key, value=value)


def test_strip_onnx_drops_node_metadata_in_graphs_and_subgraphs(tmp_path: Path) -> None:
    then = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["t"], doc_string=_TRACE)],
        "then",
        [],
        [helper.make_tensor_value_info("t", TensorProto.FLOAT, [1])],
    )
    other = helper.make_graph(
        [helper.make_node("Neg", ["x"], ["e"])],
        "else",
        [],
        [helper.make_tensor_value_info("e", TensorProto.FLOAT, [1])],
    )
    then.node[0].metadata_props.append(_meta("pkg.torch.onnx.stack_trace", _TRACE))
    branch = helper.make_node("If", ["c"], ["y"], then_branch=then, else_branch=other)
    branch.metadata_props.extend([_meta("namespace", "bert/If"), _meta("pkg.torch.onnx.stack_trace", _TRACE)])
    graph = helper.make_graph(
        [branch],
        "g",
        [
            helper.make_tensor_value_info("c", TensorProto.BOOL, []),
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [1]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    graph.output[0].metadata_props.append(_meta("pkg.torch.onnx.stack_trace", _TRACE))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], doc_string=_TRACE)
    model.metadata_props.append(_meta("kept", "model-level metadata is the author's"))
    path = tmp_path / "model.onnx"
    onnx.save_model(model, str(path))
    assert b"site-packages" in path.read_bytes()

    strip_onnx(path)

    assert b"site-packages" not in path.read_bytes() and b"namespace" not in path.read_bytes()
    stripped = onnx.load(str(path))
    assert [(p.key, p.value) for p in stripped.metadata_props] == [("kept", "model-level metadata is the author's")]
    onnx.checker.check_model(stripped)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    [result] = session.run(None, {"c": np.array(False), "x": np.array([2.0], dtype=np.float32)})
    assert result.tolist() == [-2.0]


class _Tiny(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.linear(x))


def _records(path: Path) -> dict[str, bytes]:
    reader = torch._C.PyTorchFileReader(str(path))
    return {name: bytes(reader.get_record(name)) for name in reader.get_all_records()}


def test_strip_torchscript_drops_source_ranges_and_keeps_the_module(tmp_path: Path) -> None:
    torch.manual_seed(0)
    module = _Tiny().eval()
    example = torch.randn(4, 3)
    path = tmp_path / "model.pt"
    torch.jit.save(torch.jit.trace(module, example), str(path))
    before = _records(path)
    assert any(__file__.encode() in data for data in before.values())  # in the debug_pkl source ranges

    strip_torchscript(path)

    records = _records(path)
    kept = {name for name in before if not name.endswith(".debug_pkl")}
    assert set(records) == kept  # .data/serialization_id is rewritten: a hash of the records
    assert all(records[name] == before[name] for name in kept - {".data/serialization_id"})
    assert not any(__file__.encode() in data for data in records.values())
    loaded = torch.jit.load(str(path))
    assert torch.equal(loaded(example), module(example))
    first = path.read_bytes()
    strip_torchscript(path)
    assert path.read_bytes() == first  # idempotent, deterministic
