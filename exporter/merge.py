"""The merged seq2seq decoder: one ONNX file for the first step and the later ones, as clients load it.

transformers.js loads a seq2seq model with past as ``encoder_model.onnx`` and
``decoder_model_merged.onnx`` (Optimum loads it too). The merged graph takes every input of the
decoder with past plus a bool ``use_cache_branch`` of shape ``[1]``, and holds one ``If`` node:

* ``use_cache_branch`` false (first step): the decoder without past; the ``past_key_values.*`` inputs
  are ignored (length 0 is fine);
* true: the decoder with past, which returns the cross-attention cache it was fed as
  ``present.*.encoder.*``, so both branches have the same outputs.

Both branches read their weights from the outer graph, where identical initializers are kept once.
The two split files are written by the export as usual, merged here, then removed: no client needs
them once the merged file exists. Their TorchScript twins stay as they are.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from exporter.errors import ExportFailedError, first_line
from exporter.formats.base import Runner

MERGED = "decoder_model_merged"
USE_CACHE_BRANCH = "use_cache_branch"
#: The components a merged decoder replaces in ONNX → the ``use_cache_branch`` that runs each one.
MERGED_FROM = {"decoder_model": False, "decoder_with_past_model": True}
#: Length of the cross-attention cache fed in: the encoder's length after the first step, 0 at it.
PAST_ENCODER_AXIS = "encoder_sequence_length_out"


def onnx_file(component: str) -> str:
    """The ONNX file that holds ``component`` once an export is laid out for the clients."""
    return f"{MERGED}.onnx" if component in MERGED_FROM else f"{component}.onnx"


def merge_decoders(output_dir: Path, external_data_threshold: int) -> list[Path]:
    """Write ``decoder_model_merged.onnx`` from the two split decoders in ``output_dir`` and remove them.

    Returns the files written (the graph, and ``decoder_model_merged.onnx_data`` for large weights).
    """
    import onnx

    split = [output_dir / f"{name}.onnx" for name in MERGED_FROM]
    first, later = (onnx.load(str(path)) for path in split)
    merged = merged_model(first, later)
    target = output_dir / f"{MERGED}.onnx"
    data = target.with_name(target.name + "_data")
    data.unlink(missing_ok=True)
    weights = sum(tensor.ByteSize() for tensor in merged.graph.initializer)
    if weights > external_data_threshold:
        onnx.save(merged, str(target), save_as_external_data=True, location=data.name, size_threshold=1024)
    else:
        onnx.save(merged, str(target))
    try:
        onnx.checker.check_model(str(target))
    except onnx.checker.ValidationError as e:
        raise ExportFailedError(f"onnx.checker rejected {target.name}: {first_line(e)}") from e
    for path in split:
        path.unlink()
        path.with_name(path.name + "_data").unlink(missing_ok=True)
    return [path for path in (target, data) if path.exists()]


def merged_model(first: Any, later: Any) -> Any:
    """One model from the decoder without past (``first``) and the one with past (``later``)."""
    import onnx

    outputs = [value.name for value in first.graph.output]
    if outputs != [value.name for value in later.graph.output]:
        raise ExportFailedError(
            f"cannot merge the decoders: their outputs differ ({outputs} vs {[v.name for v in later.graph.output]})"
        )
    # An input only the first step reads (Whisper's ``encoder_hidden_states``: later steps read the
    # cross-attention cache) is an input of the merged graph all the same: clients feed it every step.
    names = {value.name for value in later.graph.input}
    inputs = [*later.graph.input, *(value for value in first.graph.input if value.name not in names)]
    with_past, no_past = _branch(later.graph, "with_past/"), _branch(first.graph, "no_past/")
    initializers = _shared_initializers([with_past, no_past])
    flag = onnx.helper.make_tensor_value_info(USE_CACHE_BRANCH, onnx.TensorProto.BOOL, [1])
    node = onnx.helper.make_node(
        "If", [USE_CACHE_BRANCH], outputs, name="use_cache_branch", then_branch=with_past, else_branch=no_past
    )
    graph = onnx.helper.make_graph([node], MERGED, [*inputs, flag], list(later.graph.output), initializer=initializers)
    for value in graph.input:
        if value.name.startswith("past_key_values.") and ".encoder." in value.name:
            value.type.tensor_type.shape.dim[2].dim_param = PAST_ENCODER_AXIS
    opsets = {entry.domain: entry.version for entry in [*first.opset_import, *later.opset_import]}
    model = onnx.helper.make_model(
        graph,
        opset_imports=[onnx.helper.make_opsetid(domain, version) for domain, version in opsets.items()],
        ir_version=max(first.ir_version, later.ir_version),
        producer_name=first.producer_name,
        producer_version=first.producer_version,
    )
    return model


def _branch(graph: Any, prefix: str) -> Any:
    """``graph`` as an ``If`` branch: no inputs (it reads the outer ones), every own name prefixed."""
    import onnx

    branch = onnx.GraphProto()
    branch.CopyFrom(graph)
    produced = {name for node in branch.node for name in node.output}
    for value in branch.output:  # an output that is an input as is still needs a node of its own
        if value.name not in produced:
            source = value.name
            value.name = f"{source}.out"
            branch.node.append(onnx.helper.make_node("Identity", [source], [value.name]))
    branch = onnx.compose.add_prefix_graph(branch, prefix, rename_inputs=False)
    del branch.input[:]
    branch.name = prefix.rstrip("/")
    return branch


def _shared_initializers(branches: list[Any]) -> list[Any]:
    """Move the branches' initializers to the outer graph, identical tensors once (the weights both use)."""
    from onnx import numpy_helper

    kept: dict[tuple[int, tuple[int, ...], bytes], Any] = {}
    renamed: dict[str, str] = {}
    for branch in branches:
        for tensor in branch.initializer:
            digest = hashlib.sha256(numpy_helper.to_array(tensor).tobytes()).digest()
            key = (tensor.data_type, tuple(tensor.dims), digest)
            if key in kept:
                renamed[tensor.name] = kept[key].name
            else:
                kept[key] = tensor
        del branch.initializer[:]
    for branch in branches:
        for node in branch.node:
            for index, name in enumerate(node.input):
                if name in renamed:
                    node.input[index] = renamed[name]
    return list(kept.values())


def merged_runner(run: Runner, path: Path, use_cache_branch: bool) -> Runner:
    """A runner of the merged file that takes the inputs of one split decoder.

    The first step feeds ``use_cache_branch`` false and a past of length 0, as a client does.
    """
    empty = _empty_past(path)

    def branch_run(inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        feeds = dict(inputs)
        batch = next(iter(feeds.values())).shape[0]
        for name, (heads, size) in empty.items():
            feeds.setdefault(name, np.zeros((batch, heads, 0, size), dtype=np.float32))
        feeds[USE_CACHE_BRANCH] = np.array([use_cache_branch])
        return run(feeds)

    return branch_run


def _empty_past(path: Path) -> dict[str, tuple[int, int]]:
    """Each past input's fixed head count and head size, read from the graph."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    past = {}
    for value in graph.input:
        if value.name.startswith("past_key_values."):
            dims = value.type.tensor_type.shape.dim
            past[value.name] = (int(dims[1].dim_value), int(dims[3].dim_value))
    return past
