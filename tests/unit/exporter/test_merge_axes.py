"""The merged decoder's If graph and the axis naming, on small graphs built with ``onnx.helper`` and run in ONNX Runtime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from exporter.axes import graph_axes, name_axes, name_graph_axes, output_axes_of_runs, output_axis
from exporter.errors import ExportFailedError
from exporter.formats.onnx import OnnxFormat
from exporter.merge import merge_decoders, merged_model, merged_runner

WEIGHT = np.arange(4, dtype=np.float32)  # the same tensor in both decoders: kept once


def _decoder(with_past: bool) -> onnx.ModelProto:
    """``logits = input * weight`` (+ the past's sum along its length); ``present.0.encoder.key`` out.

    The first step computes the cross-attention cache (``encoder_hidden_states`` + 1), a later one
    hands back the one it was fed, as the exporter's seq2seq decoder does.
    """
    ids = helper.make_tensor_value_info("input_ids", TensorProto.FLOAT, ["s0", 4])
    hidden = helper.make_tensor_value_info("encoder_hidden_states", TensorProto.FLOAT, ["s0", 1, "s1", 4])
    past = helper.make_tensor_value_info("past_key_values.0.encoder.key", TensorProto.FLOAT, ["s0", 1, "s1", 4])
    logits = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["s0", 4])
    present = helper.make_tensor_value_info("present.0.encoder.key", TensorProto.FLOAT, ["s0", 1, "s1", 4])
    weight = numpy_helper.from_array(WEIGHT, "weight")
    nodes = [helper.make_node("Mul", ["input_ids", "weight"], ["logits_raw"])]
    if with_past:
        nodes += [
            helper.make_node("ReduceSum", ["past_key_values.0.encoder.key"], ["summed"], keepdims=0),
            helper.make_node("Add", ["logits_raw", "summed"], ["logits"]),
            helper.make_node("Identity", ["past_key_values.0.encoder.key"], ["present.0.encoder.key"]),
        ]
        one = numpy_helper.from_array(np.ones(1, dtype=np.float32), "unused_one")
        inputs, initializers = [ids, hidden, past], [weight, one]
    else:
        one = numpy_helper.from_array(np.ones(1, dtype=np.float32), "one")
        nodes += [
            helper.make_node("Identity", ["logits_raw"], ["logits"]),
            helper.make_node("Add", ["encoder_hidden_states", "one"], ["present.0.encoder.key"]),
        ]
        inputs, initializers = [ids, hidden], [weight, one]
    graph = helper.make_graph(nodes, "decoder", inputs, [logits, present], initializer=initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def test_output_axes_follow_the_input_symbols() -> None:
    symbols = {"s1": "past_sequence_length", "s70": "sequence_length", "s20": "batch_size"}
    assert output_axis("s70 + s1", symbols, 2) == "past_sequence_length + sequence_length"
    assert output_axis("s20", symbols, 0) == "batch_size"
    assert output_axis("s99", symbols, 0) == "batch_size"  # dimension 0 is the batch in every graph
    assert output_axis("s99", symbols, 1) == "s99"  # unknown elsewhere: left as it is, not guessed


def test_named_graph_axes() -> None:
    model = _decoder(with_past=True)
    axes = {
        "input_ids": {0: "batch_size"},
        "encoder_hidden_states": {0: "batch_size", 2: "encoder_sequence_length"},
        "past_key_values.0.encoder.key": {0: "batch_size", 2: "encoder_sequence_length"},
    }
    name_graph_axes(model.graph, axes)
    named = graph_axes(model.graph)
    assert named["input_ids"] == ["batch_size", 4]
    assert named["logits"] == ["batch_size", 4]
    assert named["present.0.encoder.key"] == ["batch_size", 1, "encoder_sequence_length", 4]


def test_a_graph_named_already_is_not_written_again(tmp_path: Path) -> None:
    path = tmp_path / "decoder.onnx"
    onnx.save(_decoder(with_past=False), str(path))
    axes = {"input_ids": {0: "batch_size"}, "encoder_hidden_states": {0: "batch_size", 2: "encoder_sequence_length"}}
    assert name_axes(path, axes) is True  # s0, s1 → names
    written = path.read_bytes()
    assert name_axes(path, axes) is False
    assert path.read_bytes() == written
    assert graph_axes(onnx.load(str(path)).graph)["present.0.encoder.key"] == [
        "batch_size",
        1,
        "encoder_sequence_length",
        4,
    ]


def test_output_axes_read_off_two_eager_runs() -> None:
    """A decoder with past: the present cache is past + new tokens, logits follow the new tokens."""
    axes = {
        "input_ids": {0: "batch_size", 1: "sequence_length"},
        "attention_mask": {0: "batch_size", 1: "past_sequence_length + sequence_length"},
        "past.key": {0: "batch_size", 2: "past_sequence_length"},
    }
    inputs = [
        {"input_ids": (2, 16), "attention_mask": (2, 23), "past.key": (2, 4, 7, 8)},
        {"input_ids": (3, 11), "attention_mask": (3, 15), "past.key": (3, 4, 4, 8)},
    ]
    outputs = [
        {"logits": (2, 16, 50), "present.key": (2, 4, 23, 8), "frames": (2, 31)},
        {"logits": (3, 11, 50), "present.key": (3, 4, 15, 8), "frames": (3, 21)},
    ]
    named = output_axes_of_runs(inputs, outputs, axes)
    assert named == {
        "logits": {0: "batch_size", 1: "sequence_length"},
        "present.key": {0: "batch_size", 2: "past_sequence_length + sequence_length"},
        "frames": {0: "batch_size"},  # 31/21 is no input's size: left to the graph pass
    }


def test_output_axes_leave_out_a_size_two_axes_explain() -> None:
    axes = {"input_ids": {0: "batch_size", 1: "num_choices"}}
    inputs = [{"input_ids": (2, 2)}, {"input_ids": (3, 3)}]
    assert output_axes_of_runs(inputs, [{"logits": (2, 2)}, {"logits": (3, 3)}], axes) == {}


def test_merged_decoder_runs_both_branches(tmp_path: Path) -> None:
    import onnxruntime as ort

    for name, with_past in (("decoder_model", False), ("decoder_with_past_model", True)):
        onnx.save(_decoder(with_past), str(tmp_path / f"{name}.onnx"))
    written = merge_decoders(tmp_path, external_data_threshold=1 << 30)
    assert [path.name for path in written] == ["decoder_model_merged.onnx"]
    assert not (tmp_path / "decoder_model.onnx").exists() and not (tmp_path / "decoder_with_past_model.onnx").exists()
    merged = onnx.load(str(written[0]))
    assert [init.name for init in merged.graph.initializer].count("with_past/weight") == 1
    assert len(merged.graph.initializer) == 2  # identical tensors kept once, whatever their names ("one")
    assert graph_axes(merged.graph)["past_key_values.0.encoder.key"][2] == "encoder_sequence_length_out"

    session = ort.InferenceSession(str(written[0]), providers=["CPUExecutionProvider"])
    ids = np.ones((2, 4), dtype=np.float32)
    hidden = np.full((2, 1, 3, 4), 2.0, dtype=np.float32)
    first = merged_runner(OnnxFormat().load(written[0], None), written[0], use_cache_branch=False)  # type: ignore[arg-type]
    out = first({"input_ids": ids, "encoder_hidden_states": hidden})  # no past fed: length 0, as a client does
    np.testing.assert_array_equal(out["logits"], ids * WEIGHT)
    np.testing.assert_array_equal(out["present.0.encoder.key"], hidden + 1)
    past = out["present.0.encoder.key"]
    feeds = {"input_ids": ids, "encoder_hidden_states": hidden, "past_key_values.0.encoder.key": past}
    results = session.run(None, {**feeds, "use_cache_branch": np.array([True])})
    later = dict(zip(["logits", "present.0.encoder.key"], results, strict=True))
    np.testing.assert_array_equal(later["logits"], ids * WEIGHT + past.sum())
    np.testing.assert_array_equal(later["present.0.encoder.key"], past)  # handed back as fed


def test_decoders_with_different_outputs_are_refused() -> None:
    later = _decoder(with_past=True)
    del later.graph.output[1]
    with pytest.raises(ExportFailedError, match="outputs differ"):
        merged_model(_decoder(with_past=False), later)
