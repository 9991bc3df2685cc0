"""Exported bytes that do not depend on where the exporter is installed.

``torch.onnx`` attaches each node's Python stack trace (absolute paths of the installed torch and
transformers) as node metadata, and ``torch.jit.save`` stores the traced source ranges, with the same
paths, in ``*.debug_pkl`` records. Both are debugging aids only; stripping them makes an export of the
same checkpoint with the same versions byte-identical whatever the venv's path.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

#: TorchScript records the writer adds by itself at the end of the archive.
WRITER_RECORDS = frozenset({"byteorder", ".data/serialization_id"})


def strip_onnx(path: Path) -> None:
    """Drop node and value metadata (stack traces, FX nodes, name scopes) and doc strings, in place."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)  # external weights stay where they are
    model.doc_string = ""
    for function in model.functions:
        del function.metadata_props[:]
        function.doc_string = ""
        _strip_nodes(function.node)
    for graph in _graphs(model):
        graph.doc_string = ""
        _strip_nodes(graph.node)
        for value in (*graph.input, *graph.output, *graph.value_info):
            del value.metadata_props[:]
            value.doc_string = ""
        for tensor in graph.initializer:
            del tensor.metadata_props[:]
    onnx.save_model(model, str(path))


def strip_torchscript(path: Path) -> None:
    """Rewrite a ``torch.jit.save`` archive without its ``*.debug_pkl`` source-range records, in place."""
    import torch

    stripped = path.with_name(path.name + ".stripped")
    reader = torch._C.PyTorchFileReader(str(path))
    writer = torch._C.PyTorchFileWriter(str(stripped))
    for name in reader.get_all_records():  # one record in memory at a time, not every weight at once
        if not name.endswith(".debug_pkl") and name not in WRITER_RECORDS:
            data = reader.get_record(name)
            writer.write_record(name, data, len(data))
    writer.write_end_of_file()
    del writer, reader
    stripped.replace(path)


def _strip_nodes(nodes: Any) -> None:
    for node in nodes:
        del node.metadata_props[:]
        node.doc_string = ""


def _graphs(model: Any) -> Iterator[Any]:
    """The main graph and every subgraph of If/Loop/Scan nodes (in functions too), recursively."""
    yield from _with_subgraphs(model.graph)
    for function in model.functions:
        for node in function.node:
            for graph in _node_graphs(node):
                yield from _with_subgraphs(graph)


def _with_subgraphs(graph: Any) -> Iterator[Any]:
    yield graph
    for node in graph.node:
        for sub in _node_graphs(node):
            yield from _with_subgraphs(sub)


def _node_graphs(node: Any) -> Iterator[Any]:
    for attribute in node.attribute:
        if attribute.HasField("g"):
            yield attribute.g
        yield from attribute.graphs
