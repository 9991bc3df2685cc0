"""dtype variants of a validated ONNX file, built with ONNX Runtime's own tools, named as transformers.js loads them.

=========  =============================  ===============================================================
dtype      file (per component)           built with
=========  =============================  ===============================================================
``fp32``   ``model.onnx``                 the export itself
``fp16``   ``model_fp16.onnx``            ``onnxruntime.transformers.float16`` (inputs/outputs stay float32)
``q8``     ``model_quantized.onnx``       ``onnxruntime.quantization.quantize_dynamic`` (int8 weights)
``q4``     ``model_q4.onnx``              ``MatMulNBitsQuantizer`` (4-bit weights, blocks of 32, symmetric)
=========  =============================  ===============================================================

The q8 settings are those of transformers.js's own conversion script: signed weights unless the
graph has a convolution (onnxruntime-web has no int8 ``ConvInteger``), per-tensor, full range, only
MatMuls whose weights are constants, subgraphs included.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from exporter.errors import ExportFailedError, UsageError, first_line
from exporter.files import DTYPE_SUFFIXES

#: Every dtype, in the order they are built; ``fp32`` is the export itself.
DTYPES = ("fp32", "fp16", "q8", "q4")
#: Operators with which transformers.js's script picks unsigned int8 weights.
_UNSIGNED_WEIGHT_OPS = frozenset({"Conv", "GroupQueryAttention", "MultiHeadAttention"})
Q4_BLOCK_SIZE = 32


def parse_dtypes(value: str) -> tuple[str, ...]:
    """``"fp32,q8"`` → ``("fp32", "q8")`` in build order; ``fp32`` is always included (the others derive from it)."""
    names = [part.strip().lower() for part in value.split(",") if part.strip()]
    unknown = [name for name in names if name not in DTYPES]
    if unknown or not names:
        raise UsageError(f"unknown dtype(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(DTYPES)}")
    return tuple(name for name in DTYPES if name == "fp32" or name in names)


def variant_path(fp32_file: Path, dtype: str) -> Path:
    """``out/model.onnx`` → ``out/model_quantized.onnx`` for ``q8``."""
    return fp32_file.with_name(f"{fp32_file.stem}{DTYPE_SUFFIXES[dtype]}.onnx")


def build_variant(fp32_file: Path, dtype: str, external_data_threshold: int) -> list[Path]:
    """Write the ``dtype`` variant of ``fp32_file`` next to it; the files written (graph, then weights).

    Weights go to ``<stem>.onnx_data`` when they exceed ``external_data_threshold`` bytes, as the
    fp32 export does; small tensors stay inline.
    """
    import onnx

    target = variant_path(fp32_file, dtype)
    model = onnx.load(str(fp32_file))
    external = _initializer_bytes(model) > external_data_threshold
    try:
        if dtype == "fp16":
            from onnxruntime.transformers.float16 import convert_float_to_float16

            _save(convert_float_to_float16(model, keep_io_types=True), target, external)
        elif dtype == "q8":
            _quantize_int8(model, target, external)
        elif dtype == "q4":
            from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

            quantizer = MatMulNBitsQuantizer(model, block_size=Q4_BLOCK_SIZE, is_symmetric=True)
            quantizer.process()
            _save(quantizer.model.model, target, external)
        else:
            raise ValueError(f"no variant is built for dtype {dtype!r}")
    except ValueError:
        raise
    except Exception as e:  # ONNX Runtime's tools refused this graph
        raise ExportFailedError(f"building the {dtype} variant of {fp32_file.name} failed: {first_line(e)}") from e
    data = target.with_name(f"{target.name}_data")
    return [target, data] if data.exists() else [target]


def _quantize_int8(model: Any, target: Path, external: bool) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    unsigned = any(node.op_type in _UNSIGNED_WEIGHT_OPS for node in _nodes(model.graph))
    logging.disable(logging.WARNING)  # its root-logger advice to pre-process is not for this user
    try:
        quantize_dynamic(
            model,
            target,
            weight_type=QuantType.QUInt8 if unsigned else QuantType.QInt8,
            per_channel=False,
            reduce_range=False,
            use_external_data_format=external,
            extra_options={"EnableSubgraph": True, "MatMulConstBOnly": True},
        )
    finally:
        logging.disable(logging.NOTSET)
    if external:  # quantize_dynamic names the weights after the graph file; the clients look for .onnx_data
        _save(_load(target), target, external)


def _nodes(graph: Any) -> Sequence[Any]:
    """Nodes of a graph and of its subgraphs (``If`` branches)."""
    import onnx

    nodes = list(graph.node)
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.GRAPH:
                nodes += _nodes(attribute.g)
    return nodes


def _initializer_bytes(model: Any) -> int:
    return sum(len(tensor.raw_data) for tensor in model.graph.initializer)


def _load(path: Path) -> Any:
    import onnx

    return onnx.load(str(path))


def _save(model: Any, target: Path, external: bool) -> None:
    import onnx

    for stale in target.parent.glob(f"{target.name}*data"):
        if stale != target.with_name(f"{target.name}_data") or not external:
            stale.unlink()
    if external:
        onnx.save_model(
            model, str(target), save_as_external_data=True, all_tensors_to_one_file=True, location=f"{target.name}_data"
        )
    else:
        onnx.save_model(model, str(target))
