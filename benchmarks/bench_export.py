"""Benchmark: export + validation of random-weight checkpoints of real sizes (not a test).

For each size it builds a checkpoint once, then runs the real CLI in fresh processes
(``exporter export``), ONNX only and ONNX + TorchScript, ``--repeat`` times each, recording the
wall time and peak RSS of the whole process (polled every 10 ms over the process tree) and the
per-step figures the report carries. Then it measures inference latency of the exported ONNX
model in ONNX Runtime against eager PyTorch at batch 1 and 8, sequence 128.

    python benchmarks/bench_export.py                       # DistilBERT-base and BERT-base
    python benchmarks/bench_export.py --models distilbert --repeat 3
    python benchmarks/bench_export.py --models gpt2         # GPT-2 (124M), causal-lm-with-past
    python benchmarks/bench_export.py --models gpt2 --tiny --repeat 1 --out /tmp/smoke.json   # smoke run

GPT-2's latency is a prefill of the whole sequence from an empty (length-0) past through the
``-with-past`` graph, against eager PyTorch with ``use_cache=True``.

Results go to ``benchmarks/results/export.json``; a markdown table is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
from _measure import run_measured

SIZES: dict[str, dict[str, Any]] = {
    "distilbert": {
        "vocab_size": 30522,
        "dim": 768,
        "n_layers": 6,
        "n_heads": 12,
        "hidden_dim": 3072,
        "max_position_embeddings": 512,
    },
    "bert": {
        "vocab_size": 30522,
        "hidden_size": 768,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "intermediate_size": 3072,
        "max_position_embeddings": 512,
    },
    # GPT-2 small (124M parameters).
    "gpt2": {"vocab_size": 50257, "n_embd": 768, "n_layer": 12, "n_head": 12, "n_positions": 1024},
}
TASKS = {"distilbert": "sequence-classification", "bert": "sequence-classification", "gpt2": "causal-lm-with-past"}


def build(model_type: str, path: Path, tiny: bool = False) -> Path:
    from exporter.sample import build_sample_checkpoint

    base = TASKS[model_type].removesuffix("-with-past")
    return build_sample_checkpoint(path, model_type, base, **({} if tiny else SIZES[model_type]))


def run_cli(checkpoint: Path, output: Path, formats: str, task: str, *options: str) -> dict[str, Any]:
    """One export in a fresh process (``options``: more CLI flags): wall time, peak RSS of its process
    tree, and its report's step timings and graph-cache outcome."""
    exe = Path(sys.executable).with_name("exporter")
    command = [str(exe), "export", "--model", str(checkpoint), "--task", task, "--formats", formats, "--quiet"]
    run = run_measured([*command, *options, str(output)])
    if run.returncode != 0:
        raise RuntimeError(f"export failed ({run.returncode}): {run.stderr[-2000:]}")
    report = json.loads((output / "report.json").read_text())
    return {
        "wall_s": round(run.wall_s, 2),
        "peak_rss_gib": round(run.peak_rss_bytes / 2**30, 3),
        "steps": report["timings"],
        "graph_cache": report.get("graph_cache"),
    }


def latency(checkpoint: Path, onnx_path: Path, batch: int, seq: int, task: str, runs: int = 20) -> dict[str, float]:
    """Median latency (ms) of ONNX Runtime and eager PyTorch on the same inputs."""
    import numpy as np
    import onnxruntime as ort
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    with_past = task.endswith("-with-past")
    auto = AutoModelForCausalLM if with_past else AutoModelForSequenceClassification
    model = auto.from_pretrained(checkpoint).eval()
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    seq = min(seq, int(getattr(model.config, "max_position_embeddings", seq)))
    ids = torch.randint(5, model.config.vocab_size, (batch, seq))
    mask = torch.ones(batch, seq, dtype=torch.long)
    feeds = {
        "input_ids": ids.numpy(),
        "attention_mask": mask.numpy(),
        "token_type_ids": np.zeros((batch, seq), dtype=np.int64),
        "position_ids": np.arange(seq)[None].repeat(batch, 0),
    }
    for inp in session.get_inputs():  # a prefill: the past is empty
        if inp.name.startswith("past_key_values."):
            feeds[inp.name] = np.zeros((batch, inp.shape[1], 0, inp.shape[3]), dtype=np.float32)
    feeds = {i.name: feeds[i.name] for i in session.get_inputs()}
    extra = {"use_cache": True} if with_past else {}

    def timed(fn: Any) -> float:
        fn()  # warm-up
        samples = []
        for _ in range(runs):
            start = time.perf_counter()
            fn()
            samples.append((time.perf_counter() - start) * 1000)
        return round(statistics.median(samples), 2)

    with torch.no_grad():
        eager = timed(lambda: model(input_ids=ids, attention_mask=mask, **extra))
    onnx = timed(lambda: session.run(None, feeds))
    return {"batch": batch, "sequence": seq, "onnxruntime_ms": onnx, "pytorch_ms": eager}


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    ordered = sorted(runs, key=lambda r: r["wall_s"])
    middle = ordered[len(ordered) // 2]
    return {
        **middle,
        "wall_all_s": [r["wall_s"] for r in runs],
        "peak_rss_max_gib": max(r["peak_rss_gib"] for r in runs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="distilbert,bert")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "export.json")
    parser.add_argument("--tiny", action="store_true", help="test-size checkpoints: a smoke run of this script")
    args = parser.parse_args()
    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "ram_gib": round(psutil.virtual_memory().total / 2**30)}
    }
    with tempfile.TemporaryDirectory() as tmp:
        for model_type in args.models.split(","):
            task = TASKS[model_type]
            checkpoint = build(model_type, Path(tmp) / model_type, args.tiny)
            entry: dict[str, Any] = {"task": task}
            for formats in ("onnx", "onnx,torchscript"):
                outputs = [Path(tmp) / f"out-{model_type}-{i}" for i in range(args.repeat)]
                entry[formats] = median_run([run_cli(checkpoint, output, formats, task) for output in outputs])
            onnx_path = Path(tmp) / f"out-{model_type}-0" / "model.onnx"
            entry["latency"] = [latency(checkpoint, onnx_path, batch, 128, task) for batch in (1, 8)]
            results[model_type] = entry
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(results, indent=2) + "\n")  # what is measured is kept
            print(f"{model_type}: {json.dumps(entry)}", file=sys.stderr)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))


def table(results: dict[str, Any]) -> str:
    lines = [
        "| model | formats | wall (median) | peak RSS | load | onnx | torchscript | validate |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, entry in results.items():
        if name == "machine":
            continue
        label = f"{name} ({entry.get('task', 'sequence-classification')})"
        for formats in ("onnx", "onnx,torchscript"):
            run = entry[formats]
            steps = run["steps"]

            def step(key: str, steps: dict[str, Any] = steps) -> str:
                return f"{steps[key]['seconds']:.2f} s" if key in steps else "—"

            lines.append(
                f"| {label} | {formats} | {run['wall_s']:.2f} s | {run['peak_rss_gib']:.2f} GiB | {step('load')} "
                f"| {step('onnx')} | {step('torchscript')} | {step('validate')} |"
            )
    lines += ["", "| model | batch × seq | ONNX Runtime | PyTorch eager |", "|---|---|---:|---:|"]
    for name, entry in results.items():
        if name != "machine":
            for lat in entry["latency"]:
                lines.append(
                    f"| {name} | {lat['batch']} × {lat['sequence']} | {lat['onnxruntime_ms']} ms | {lat['pytorch_ms']} ms |"
                )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
