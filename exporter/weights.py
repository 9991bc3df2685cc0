"""An ONNX graph exported without its weights, completed from the module's own tensors.

The TorchScript-based ``torch.onnx.export`` traces :class:`WeightsAsInputs`: the module with each
distinct parameter and buffer as one more graph input, named after it
(``model.bert.embeddings.word_embeddings.weight``). :func:`attach` takes those inputs out of the
graph and folds each ``Transpose`` of a weight (a ``Linear`` layer's matrix) into a weight of its
own, as ``torch.onnx``'s constant folding would (``MatMul`` then reads an initializer: ONNX Runtime's
quantizer and fusions need that). :func:`save` checks the graph, then writes it with each weight
streamed from its tensor, inline or to ``<name>_data``.

Exporting the module with its weights as parameters instead makes ``torch.onnx`` run its shape
inference over every weight and hold the serialized model and a copy of every weight at once: for
DistilBERT-base, 2.4 s more for the export and about 600 MiB more peak memory (measured). The
folding is done here rather than by onnxscript's constant folder, which does the same for
``Transpose`` but costs 0.45 s of imports (``onnx_ir``, ``onnxscript``) per export process.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from exporter.errors import ExportFailedError, first_line
from exporter.formats.torchscript import TupleOutputs

#: Initializers larger than this are streamed from their tensors; smaller ones are serialized with the graph.
STREAMED_BYTES = 256


def named_tensors(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Every parameter and buffer by name, tied ones under each of their names."""
    tensors: dict[str, torch.Tensor] = dict(module.named_parameters(remove_duplicate=False))
    tensors.update(module.named_buffers(remove_duplicate=False))
    return {name: tensor.detach() for name, tensor in tensors.items()}


class WeightsAsInputs(TupleOutputs):
    """:class:`~exporter.formats.torchscript.TupleOutputs` whose weights are inputs too.

    Positional tensors in: the flat inputs (``input_names``), then each distinct parameter and
    buffer (:attr:`weights`, by its first name; tied ones once). A tuple of the named outputs out.
    While it runs, the module's parameters and buffers are the tensors passed in, so a trace records
    them as inputs, and names its nodes after the module's scopes as for the module itself. The swap
    is done here because ``torch.func.functional_call``, which does the same, refuses to run under
    ``torch.jit`` tracing ("The stateless API can't be used with Jitted modules").
    """

    def __init__(self, model: torch.nn.Module, input_names: Sequence[str], output_names: Sequence[str]) -> None:
        super().__init__(model, tuple(input_names), tuple(output_names))
        self.train(model.training)  # torch.onnx restores this wrapper's mode, and with it the model's
        #: Every (owner, "_parameters" or "_buffers", attribute) of each distinct tensor, by the tensor's first name.
        self._slots: dict[str, list[tuple[torch.nn.Module, str, str]]] = {}
        self.weights: dict[str, torch.Tensor] = {}
        first: dict[int, str] = {}
        for owner_name, owner in self.named_modules(remove_duplicate=False):
            for kind in ("_parameters", "_buffers"):
                for attribute, tensor in getattr(owner, kind).items():
                    if tensor is None:
                        continue
                    name = first.setdefault(id(tensor), f"{owner_name}.{attribute}" if owner_name else attribute)
                    if name not in self.weights:
                        self.weights[name] = tensor.detach()
                        self._slots[name] = []
                    if (owner, kind, attribute) not in self._slots[name]:
                        self._slots[name].append((owner, kind, attribute))

    def forward(self, *args: torch.Tensor) -> tuple[torch.Tensor, ...]:
        inputs, weights = args[: len(self.input_names)], args[len(self.input_names) :]
        saved = [(slot, getattr(slot[0], slot[1])[slot[2]]) for slots in self._slots.values() for slot in slots]
        try:
            for slots, weight in zip(self._slots.values(), weights, strict=True):
                for owner, kind, attribute in slots:
                    getattr(owner, kind)[attribute] = weight
            return super().forward(*inputs)
        finally:
            for (owner, kind, attribute), tensor in saved:
                getattr(owner, kind)[attribute] = tensor


@dataclass(frozen=True)
class Weight:
    """An initializer to write: its name, ONNX data type and dims, and the tensor that holds its values."""

    name: str
    data_type: int
    dims: tuple[int, ...]
    tensor: torch.Tensor

    @property
    def nbytes(self) -> int:
        return self.tensor.numel() * self.tensor.element_size()

    def raw(self) -> np.ndarray:
        """The values as bytes in row-major order (a copy only for a folded transpose)."""
        return self.tensor.contiguous().reshape(-1).view(torch.uint8).numpy()


def attach(model: Any, tensors: Mapping[str, torch.Tensor], inputs: Collection[str]) -> list[Weight]:
    """Take the weights out of ``model`` (a ``ModelProto`` whose graph inputs not in ``inputs`` are the
    module's ``tensors``, by name) and fold each ``Transpose`` of one; returns the weights the graph reads.

    Raises :class:`ExportFailedError` when an input is no tensor of the module or has another shape or
    element size than the graph declares.
    """
    import onnx

    graph = model.graph
    weights: dict[str, Weight] = {}
    kept = []
    for value in graph.input:
        if value.name in inputs:
            kept.append(value)
            continue
        tensor = tensors.get(value.name)
        if tensor is None:
            raise ExportFailedError(f"graph input {value.name} is neither a model input nor a parameter or buffer")
        kind = value.type.tensor_type
        dims = tuple(dim.dim_value if dim.HasField("dim_value") else -1 for dim in kind.shape.dim)
        size = onnx.helper.tensor_dtype_to_np_dtype(kind.elem_type).itemsize
        if dims != tuple(tensor.shape) or size != tensor.element_size():
            raise ExportFailedError(
                f"graph input {value.name} is {dims}, its tensor {tensor.dtype}{list(tensor.shape)}"
            )
        weights[value.name] = Weight(value.name, kind.elem_type, dims, tensor)
    del graph.input[:]
    graph.input.extend(kept)
    nodes = []
    for node in graph.node:
        source = weights.get(node.input[0]) if node.op_type == "Transpose" and not node.domain else None
        if source is None:
            nodes.append(node)
            continue
        perm = next((list(a.ints) for a in node.attribute if a.name == "perm"), list(range(len(source.dims)))[::-1])
        transposed = source.tensor.permute(perm)
        weights[node.output[0]] = Weight(node.output[0], source.data_type, tuple(transposed.shape), transposed)
    del graph.node[:]
    graph.node.extend(nodes)
    read = _read(nodes) | {value.name for value in graph.output}
    return [weight for name, weight in weights.items() if name in read]


def _read(nodes: Iterable[Any]) -> set[str]:
    """Every name the nodes read, inside their subgraphs (``If``, ``Loop`` bodies) too."""
    names: set[str] = set()
    for node in nodes:
        names.update(node.input)
        for attribute in node.attribute:
            for subgraph in (attribute.g, *attribute.graphs) if attribute.HasField("g") else attribute.graphs:
                names |= _read(subgraph.node)
    return names


def save(model: Any, weights: Sequence[Weight], path: Path, external_data_threshold: int) -> list[Path]:
    """Check ``model`` (a ``ModelProto`` without ``weights``), then write it with them to ``path``.

    Weights of up to :data:`STREAMED_BYTES` are serialized with the graph; larger ones are streamed
    from their tensors (:func:`write`). Returns the files written. Raises :class:`ExportFailedError`
    when ``onnx.checker`` rejects the graph.
    """
    import onnx

    large = [weight for weight in weights if weight.nbytes > STREAMED_BYTES]
    for weight in weights:
        if weight.nbytes <= STREAMED_BYTES:
            model.graph.initializer.append(
                onnx.TensorProto(
                    name=weight.name, dims=weight.dims, data_type=weight.data_type, raw_data=weight.raw().tobytes()
                )
            )
    check(model, large, path.name)
    return write(model, large, path, external_data_threshold)


def write(model: Any, weights: Sequence[Weight], path: Path, external_data_threshold: int) -> list[Path]:
    """Write ``model`` with ``weights`` streamed from their tensors: to ``<name>_data`` when they add up
    to more than ``external_data_threshold`` bytes, else inline (:func:`write_inline`). Returns the files."""
    import onnx
    from onnx.external_data_helper import set_external_data

    data = path.with_name(path.name + "_data")
    data.unlink(missing_ok=True)
    if sum(weight.nbytes for weight in weights) <= external_data_threshold:
        write_inline(model.SerializeToString(), weights, path)
        return [path]
    with data.open("wb") as handle:
        for weight in weights:
            offset = handle.tell()
            handle.write(weight.raw().data)
            # set_external_data wants a raw_data field to replace; the bytes are already in the data file
            tensor = onnx.TensorProto(name=weight.name, dims=weight.dims, data_type=weight.data_type, raw_data=b"")
            set_external_data(tensor, data.name, offset, weight.nbytes)
            tensor.data_location = onnx.TensorProto.EXTERNAL
            tensor.ClearField("raw_data")
            model.graph.initializer.append(tensor)
    onnx.save_model(model, str(path))
    return [path, data]


def check(model: Any, weights: Sequence[Weight], name: str) -> None:
    """``onnx.checker`` on ``model`` (a ``ModelProto``) without the ``weights`` it lacks: each is declared
    a graph input of its type and shape instead, so no copy of the data is made or read. Raises
    :class:`ExportFailedError`."""
    import onnx

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    probe.graph.input.extend(onnx.helper.make_tensor_value_info(w.name, w.data_type, w.dims) for w in weights)
    try:
        onnx.checker.check_model(probe)
    except onnx.checker.ValidationError as e:
        raise ExportFailedError(f"onnx.checker rejected {name}: {first_line(e)}") from e


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _length_field(number: int, length: int) -> bytes:
    """The key and length of a length-delimited protobuf field."""
    return _varint(number << 3 | 2) + _varint(length)


def write_inline(header: bytes, weights: Iterable[Weight], target: Path) -> None:
    """Write a serialized ``ModelProto`` without some initializers, then each of them from its tensor.

    Each weight goes out as one more ``graph`` field holding one ``initializer``: protobuf parsers merge
    repeated occurrences of a message field, so ONNX Runtime and ``onnx.load`` read the model as if it
    had been serialized in one piece, and no serialized copy of the weights is ever held in memory.
    """
    import onnx

    graph_field = onnx.ModelProto.DESCRIPTOR.fields_by_name["graph"].number
    initializer_field = onnx.GraphProto.DESCRIPTOR.fields_by_name["initializer"].number
    raw_field = onnx.TensorProto.DESCRIPTOR.fields_by_name["raw_data"].number
    with target.open("wb") as handle:
        handle.write(header)
        for weight in weights:
            raw = weight.raw()
            meta = onnx.TensorProto(name=weight.name, dims=weight.dims, data_type=weight.data_type)
            tensor = meta.SerializeToString() + _length_field(raw_field, raw.nbytes)
            inner = _length_field(initializer_field, len(tensor) + raw.nbytes) + tensor
            handle.write(_length_field(graph_field, len(inner) + raw.nbytes) + inner)
            handle.write(raw.data)
