"""Benchmark: export + validation of a ~2.5 GB float32 checkpoint, past protobuf's 2 GiB limit (not a test).

Builds a random-weight BERT-like sequence classifier of about 614M parameters without ever holding it
in memory (the model is built on the meta device, then each tensor is made and written to safetensors
shards of ``--shard-gb``), then runs the real CLI in a fresh process::

    exporter export --model CHECKPOINT --task sequence-classification --formats onnx,torchscript OUT

recording the wall time and the peak RSS of the process tree (polled every 10 ms), the per-step figures
of ``report.json`` (each step's seconds and the highest RSS of the process during it), and every file the
export wrote. Then memory probes, each in a fresh process, split what the validation step holds into
anonymous memory and file-backed (mmap'd, reclaimable) pages: the eager model (transformers keeps
safetensors mmap'd), an ONNX Runtime session with and without weight prepacking (without it ORT maps
``model.onnx_data`` instead of copying it), and ``torch.jit.load`` of ``model.pt``. Everything lives under
``--workdir`` (default: a temporary folder in /tmp) and is deleted afterwards unless ``--keep``.

    python benchmarks/bench_large.py                          # ~2.5 GB, onnx + torchscript
    python benchmarks/bench_large.py --layers 2 --formats onnx # a quick smoke run

Results go to ``benchmarks/results/large.json``. Needs ~8 GB of free disk and about 10 GB of RAM.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil
from _measure import run_measured

TASK = "sequence-classification"


def sizes(layers: int) -> dict[str, Any]:
    """BERT-large-like widths; 20 layers make ~614M parameters, ~2.46 GB in float32."""
    return {
        "vocab_size": 30522,
        "hidden_size": 1536,
        "num_hidden_layers": layers,
        "num_attention_heads": 16,
        "intermediate_size": 6144,
        "max_position_embeddings": 512,
    }


class PeakRss:
    """The highest RSS of this process seen while the block runs, polled in a thread."""

    def __init__(self) -> None:
        self.peak = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        process = psutil.Process()
        while not self._done.wait(0.01):
            self.peak = max(self.peak, process.memory_info().rss)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self._thread.join()


def _init(name: str, shape: tuple[int, ...], generator: Any) -> Any:
    """BERT's initialisation: N(0, 0.02) weights, unit LayerNorm scales, zero biases."""
    import torch

    if name.endswith("LayerNorm.weight"):
        return torch.ones(shape)
    if name.endswith(".bias"):
        return torch.zeros(shape)
    return torch.randn(shape, generator=generator) * 0.02


def build(path: Path, layers: int, shard_bytes: int) -> dict[str, Any]:
    """Write the checkpoint tensor by tensor into safetensors shards; memory stays near one shard."""
    import torch
    from safetensors.torch import save_file
    from transformers import AutoModelForSequenceClassification

    from exporter.sample import tiny_config

    start = time.perf_counter()
    path.mkdir(parents=True, exist_ok=True)
    config = tiny_config("bert", TASK, **sizes(layers))
    with PeakRss() as rss:
        with torch.device("meta"):
            skeleton = AutoModelForSequenceClassification.from_config(config)
        shapes = {name: tuple(t.shape) for name, t in skeleton.state_dict().items()}
        del skeleton
        generator = torch.Generator().manual_seed(0)
        shards: list[dict[str, Any]] = [{}]
        filled = 0
        for name, shape in shapes.items():
            numel = 1
            for dim in shape:
                numel *= dim
            if filled and filled + 4 * numel > shard_bytes:
                shards.append({})
                filled = 0
            shards[-1][name] = shape
            filled += 4 * numel
        weight_map: dict[str, str] = {}
        total = 0
        for index, names in enumerate(shards, start=1):
            filename = f"model-{index:05d}-of-{len(shards):05d}.safetensors"
            tensors = {name: _init(name, shape, generator) for name, shape in names.items()}
            total += sum(t.numel() * t.element_size() for t in tensors.values())
            save_file(tensors, str(path / filename), metadata={"format": "pt"})
            del tensors
            weight_map.update(dict.fromkeys(names, filename))
        index_json = {"metadata": {"total_size": total}, "weight_map": weight_map}
        (path / "model.safetensors.index.json").write_text(json.dumps(index_json, indent=2))
        config.save_pretrained(path)
    return {
        "parameters": total // 4,
        "bytes": total,
        "shards": len(shards),
        "build_s": round(time.perf_counter() - start, 1),
        "build_peak_rss_gib": round(rss.peak / 2**30, 2),
    }


def run_cli(checkpoint: Path, output: Path, formats: str) -> dict[str, Any]:
    """One export in a fresh process: wall time, peak RSS of its process tree, its report and files."""
    exe = Path(sys.executable).with_name("exporter")
    command = [str(exe), "export", "--model", str(checkpoint), "--task", TASK, "--formats", formats, "--quiet"]
    run = run_measured([*command, str(output)])
    stderr = run.stderr
    result: dict[str, Any] = {
        "command": " ".join([*command[1:], str(output)]),
        "exit_code": run.returncode,
        "wall_s": round(run.wall_s, 1),
        "peak_rss_gib": round(run.peak_rss_bytes / 2**30, 2),
    }
    report_file = output / "report.json"
    if not report_file.is_file():
        result["error"] = stderr.strip()[-2000:]
        return result
    report = json.loads(report_file.read_text())
    result["status"] = report["status"]
    result["steps"] = {
        step: {"seconds": cost["seconds"], "peak_rss_gib": round(cost["peak_rss_mb"] / 1024, 2)}
        for step, cost in report["timings"].items()
    }
    result["files"] = [{"path": f["path"], "gib": round(f["bytes"] / 2**30, 3)} for f in report["files"]]
    result["formats"] = {
        fmt["format"]: {
            "passed": fmt["passed"],
            "max_abs_diff": max((o["max_abs_diff"] for c in fmt["checks"] for o in c["outputs"]), default=None),
            "note": fmt["note"],
        }
        for fmt in report["formats"]
    }
    if run.returncode != 0:
        result["error"] = stderr.strip()[-2000:]
    return result


_PROBE_PRELUDE = """
import json, sys, time, psutil
process = psutil.Process()
def memory():
    info = process.memory_info()
    return {"rss_gib": round(info.rss / 2**30, 2), "anon_gib": round((info.rss - info.shared) / 2**30, 2),
            "file_gib": round(info.shared / 2**30, 2)}
start = time.perf_counter()
"""
PROBES = {
    "eager_model": """
import torch
from transformers import AutoModelForSequenceClassification
start = time.perf_counter()
model = AutoModelForSequenceClassification.from_pretrained(sys.argv[1], attn_implementation="eager").eval()
loaded, load_s = memory(), time.perf_counter() - start
with torch.no_grad():
    model(input_ids=torch.ones(2, 16, dtype=torch.long))
print(json.dumps({"load_s": round(load_s, 1), "after_load": loaded, "after_forward": memory()}))
""",
    "onnxruntime_default": """
import numpy as np, onnxruntime as ort
start = time.perf_counter()
options = ort.SessionOptions()
session = ort.InferenceSession(sys.argv[2], options, providers=["CPUExecutionProvider"])
loaded, load_s = memory(), time.perf_counter() - start
run = time.perf_counter()
session.run(None, {i.name: np.ones((2, 16), dtype=np.int64) for i in session.get_inputs()})
print(json.dumps({"load_s": round(load_s, 1), "after_load": loaded, "first_run_s": round(time.perf_counter() - run, 2),
                  "after_run": memory()}))
""",
    "onnxruntime_no_prepacking": """
import numpy as np, onnxruntime as ort
start = time.perf_counter()
options = ort.SessionOptions()
options.add_session_config_entry("session.disable_prepacking", "1")
session = ort.InferenceSession(sys.argv[2], options, providers=["CPUExecutionProvider"])
loaded, load_s = memory(), time.perf_counter() - start
run = time.perf_counter()
session.run(None, {i.name: np.ones((2, 16), dtype=np.int64) for i in session.get_inputs()})
print(json.dumps({"load_s": round(load_s, 1), "after_load": loaded, "first_run_s": round(time.perf_counter() - run, 2),
                  "after_run": memory()}))
""",
    "torchscript_load": """
import torch
start = time.perf_counter()
module = torch.jit.load(sys.argv[3], map_location="cpu")
print(json.dumps({"load_s": round(time.perf_counter() - start, 1), "after_load": memory()}))
""",
}


def memory_probes(checkpoint: Path, output: Path) -> dict[str, Any]:
    """Each probe in a fresh process: RSS split into anonymous and file-backed memory."""
    results: dict[str, Any] = {}
    for name, code in PROBES.items():
        if name == "torchscript_load" and not (output / "model.pt").is_file():
            continue
        argv = [sys.executable, "-c", _PROBE_PRELUDE + code, str(checkpoint), str(output / "model.onnx")]
        done = subprocess.run([*argv, str(output / "model.pt")], capture_output=True, text=True, check=False)
        lines = done.stdout.strip().splitlines()
        results[name] = json.loads(lines[-1]) if done.returncode == 0 and lines else {"error": done.stderr[-500:]}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, default=20, help="20 layers ≈ 2.46 GB of float32 weights.")
    parser.add_argument("--formats", default="onnx,torchscript")
    parser.add_argument("--shard-gb", type=float, default=1.0)
    parser.add_argument("--workdir", type=Path, default=None, help="Default: a temporary folder in /tmp.")
    parser.add_argument("--keep", action="store_true", help="Keep the checkpoint and the export.")
    parser.add_argument("--no-probes", action="store_true", help="Skip the memory probes after the export.")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "large.json")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-large-", dir="/tmp"))
    load_average = os.getloadavg()
    probes: dict[str, Any] = {}
    try:
        checkpoint = workdir / "checkpoint"
        built = build(checkpoint, args.layers, int(args.shard_gb * 2**30))
        print(f"checkpoint: {json.dumps(built)}", file=sys.stderr)
        run = run_cli(checkpoint, workdir / "out", args.formats)
        print(f"export: {json.dumps(run)}", file=sys.stderr)
        if run.get("status") and not args.no_probes:
            probes = memory_probes(checkpoint, workdir / "out")
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    import torch
    import transformers

    results = {
        "machine": {
            "cpus": os.cpu_count(),
            "ram_gib": round(psutil.virtual_memory().total / 2**30),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "load_average_at_start": [round(x, 2) for x in load_average],
        },
        "model": {"model_type": "bert", "task": TASK, **sizes(args.layers), **built},
        "export": run,
        "memory_probes": probes,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
