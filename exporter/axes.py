"""Name the dynamic dimensions of a saved ONNX graph the way its clients read them.

``torch.export`` writes its own symbols (``s20``, ``s57 + s70``) into the graph's input and output
shapes. Clients build tensors from those names: transformers.js 4 makes the empty first-step cache
from the inputs' shapes and resolves only ``batch_size`` (every other name becomes 0), and Optimum
and the ONNX Runtime docs list axes as ``batch_size``, ``sequence_length``,
``past_sequence_length + sequence_length`` …

This pass runs after the export, whatever exporter wrote the file: each input's symbolic
dimensions get the component's axis names (:mod:`exporter.dummy_inputs`); each output's symbol, or
sum of symbols, is rewritten through the same symbol → name table, past lengths first
(``s1 + s70`` → ``past_sequence_length + sequence_length``). Where the exporter wrote output
dimensions unrelated to the inputs (the TorchScript-based exporter's ``<Op><output>_dim_1``), ONNX
Runtime's symbolic shape inference derives them from the named inputs. A symbolic output dimension
that nothing explains is a quantity of its own (a speech model's frames): it is named
``<output>_dim_<position>``, except dimension 0, which is the batch in every graph here.
Fixed dimensions stay numbers.

The TorchScript-based exporter is handed the names up front: the inputs' from the component, the
outputs' from two eager runs at shapes that differ in every axis (:func:`output_axes_of_runs`),
and its graph is named before its weights are written (:func:`name_model_axes`). A saved graph
(``torch.export``'s) is only rewritten when a name changes: that means serialising its weights again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from exporter.dummy_inputs import BATCH, DERIVED_AXES, PAST_AXES

AxisNames = Mapping[str, Mapping[int, str]]


def name_axes(path: Path, dynamic_axes: AxisNames, fixed: Mapping[str, Mapping[int, int]] | None = None) -> bool:
    """Rewrite the dimension names of the graph at ``path`` in place (its external weights are left as they are).

    The file is written again only when a dimension changes (re-serialising the weights costs more
    than the rest of this pass). Returns whether it was rewritten. See :func:`name_model_axes`.
    """
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    if not name_model_axes(model, dynamic_axes, fixed):
        return False
    onnx.save(model, str(path))
    return True


def name_model_axes(model: Any, dynamic_axes: AxisNames, fixed: Mapping[str, Mapping[int, int]] | None = None) -> bool:
    """Name the input and output dimensions of ``model`` (a ``ModelProto``) in place; whether any changed.

    ``fixed``: output dimensions whose size eager runs showed constant (a vision model's patches);
    where the graph has no size and no input's name for one, it gets that size.
    """
    before = graph_axes(model.graph)
    symbols = name_graph_axes(model.graph, dynamic_axes)
    for value in model.graph.output:
        for position, dim in enumerate(_dims(value)):
            size = (fixed or {}).get(value.name, {}).get(position)
            if size is not None and not dim.dim_value and not (dim.dim_param and _explained(dim.dim_param, symbols)):
                dim.dim_value = size
    if any(not _explained(dim.dim_param, symbols) for value in model.graph.output for dim in _dims(value)):
        _infer_output_axes(model, symbols)
    for value in model.graph.output:  # a quantity of its own (audio frames after a CNN …): named after its output
        for position, dim in enumerate(_dims(value)):
            if not _explained(dim.dim_param, symbols):
                dim.dim_param = f"{value.name}_dim_{position}"
    return graph_axes(model.graph) != before


Sizes = Mapping[str, tuple[int, ...]]


def fixed_output_dims(outputs: Sequence[Sizes]) -> dict[str, dict[int, int]]:
    """Output dimensions of the same size in every eager run (``{"last_hidden_state": {1: 65, 2: 32}}``)."""
    if len(outputs) < 2:
        return {}
    fixed: dict[str, dict[int, int]] = {}
    for name, shape in outputs[0].items():
        for position, size in enumerate(shape):
            if all(name in run and len(run[name]) > position and run[name][position] == size for run in outputs):
                fixed.setdefault(name, {})[position] = size
    return fixed


def output_axes_of_runs(
    inputs: Sequence[Sizes], outputs: Sequence[Sizes], dynamic_axes: AxisNames
) -> dict[str, dict[int, str]]:
    """Names of the outputs' dynamic dimensions, read off eager runs at shapes that differ in every axis.

    ``inputs`` and ``outputs`` hold each run's tensor shapes by flat name. An output dimension whose
    size changes between runs gets the one input axis (or past + new tokens) whose sizes it has in
    every run, so the exporter can write the name itself (no second pass over the weights). A
    dimension two names explain, or none, is left out: :func:`name_axes` names it from the graph.
    """
    candidates: dict[str, tuple[int, ...]] = {}
    for name, axes in dynamic_axes.items():
        for position, axis in axes.items():
            sizes = tuple(run[name][position] for run in inputs if name in run and position < len(run[name]))
            if len(sizes) == len(inputs):
                candidates.setdefault(axis, sizes)
    for past in PAST_AXES & set(candidates):
        for axis in set(candidates) - PAST_AXES - DERIVED_AXES - {BATCH}:
            total = tuple(a + b for a, b in zip(candidates[past], candidates[axis], strict=True))
            candidates.setdefault(f"{past} + {axis}", total)
    named: dict[str, dict[int, str]] = {}
    for name in outputs[0]:
        for position in range(len(outputs[0][name])):
            sizes = tuple(run[name][position] for run in outputs)
            if len(set(sizes)) == 1:
                continue  # a fixed size: the graph keeps the number
            matches = [axis for axis, known in candidates.items() if known == sizes]
            if len(matches) == 1:
                named.setdefault(name, {})[position] = matches[0]
    return named


def _explained(dim_param: str, symbols: Mapping[str, str]) -> bool:
    names = set(symbols.values())
    return not dim_param or all(term.strip() in names for term in dim_param.split("+"))


def _infer_output_axes(model: Any, symbols: Mapping[str, str]) -> None:
    """Name output dimensions the exporter left unrelated to the inputs (the TorchScript-based exporter
    writes ``<Op><output>_dim_<i>``), by ONNX Runtime's symbolic shape inference from the named inputs."""
    from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference

    probe = _shape_probe(model)
    try:
        inferred = SymbolicShapeInference.infer_shapes(probe, auto_merge=True)
    except Exception:  # an op it does not know: the names stay as the exporter wrote them
        return
    shapes = {value.name: _dims(value) for value in inferred.graph.output}
    for value in model.graph.output:
        for dim, found in zip(_dims(value), shapes.get(value.name, []), strict=False):
            if not dim.dim_param or _explained(dim.dim_param, symbols):
                continue
            if found.dim_value:
                dim.dim_value = found.dim_value
            elif found.dim_param and _explained(found.dim_param, symbols):
                dim.dim_param = output_axis(found.dim_param, symbols, 1)


def _shape_probe(model: Any, inline_bytes: int = 4096) -> Any:
    """``model`` for shape inference, without copying its weights: a large initializer becomes a graph
    input of the same type and shape (small ones stay: shape arithmetic reads their values), and the
    outputs lose their shapes so that they are inferred."""
    import onnx

    probe = onnx.ModelProto(ir_version=model.ir_version)
    probe.opset_import.extend(model.opset_import)
    probe.functions.extend(model.functions)
    graph = probe.graph
    graph.node.extend(model.graph.node)
    graph.input.extend(model.graph.input)
    graph.value_info.extend(model.graph.value_info)
    for tensor in model.graph.initializer:
        if tensor.ByteSize() <= inline_bytes:
            graph.initializer.append(tensor)
        else:
            graph.input.append(onnx.helper.make_tensor_value_info(tensor.name, tensor.data_type, tensor.dims))
    for value in model.graph.output:
        graph.output.add(name=value.name).type.tensor_type.elem_type = value.type.tensor_type.elem_type
    return probe


def name_graph_axes(graph: Any, dynamic_axes: AxisNames) -> dict[str, str]:
    """Name ``graph``'s input and output dimensions in place; returns the symbol → name table used."""
    symbols: dict[str, str] = {}
    for value in graph.input:
        axes = dynamic_axes.get(value.name, {})
        for position, dim in enumerate(_dims(value)):
            if position in axes and dim.dim_param:
                symbols.setdefault(dim.dim_param, axes[position])
                dim.dim_param = axes[position]
    for value in graph.output:
        for position, dim in enumerate(_dims(value)):
            if dim.dim_param:
                dim.dim_param = output_axis(dim.dim_param, symbols, position)
    return symbols


def output_axis(expression: str, symbols: Mapping[str, str], position: int) -> str:
    """The name of an output dimension written as ``expression`` (a symbol or a sum of them)."""
    terms = [term.strip() for term in expression.split("+")]
    known = set(symbols.values())
    if all(term in symbols or term in known for term in terms):
        names = [symbols.get(term, term) for term in terms]
        return " + ".join(sorted(names, key=lambda name: (not name.startswith("past_"), name)))
    return BATCH if position == 0 else expression


def graph_axes(graph: Any) -> dict[str, list[str | int]]:
    """Every input's and output's dimensions, names or sizes (``{"logits": ["batch_size", …, 128]}``)."""
    values: Iterable[Any] = [*graph.input, *graph.output]
    return {value.name: [dim.dim_param or dim.dim_value for dim in _dims(value)] for value in values}


def _dims(value: Any) -> list[Any]:
    return list(value.type.tensor_type.shape.dim)
