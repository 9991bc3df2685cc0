"""Benchmark: the project's exporter against Optimum's, alternately, in one run (not a test).

Optimum (``optimum-onnx``) pins transformers < 4.58, so it runs in its own virtualenv, the one the
client-parity tests use (``tests/support/optimum.py``: built on first use, ``--optimum-venv`` or
``$HUB_EXPORTER_OPTIMUM_VENV`` moves it). For each model (random weights at the real size, built once by this
project's transformers and read by both), after one warm-up export of each tool, the two CLIs run
alternately ``--repeat`` times in fresh processes:

* project: ``exporter export --formats onnx --quiet`` (ONNX + validation on 2 shapes);
* Optimum: ``optimum-cli export onnx --task text-classification`` (or ``text-generation-with-past``)
  with its defaults (post-processing, validation on 1 shape): what its users get.

Wall time and peak RSS are of the whole process tree (polled every 10 ms). Then the latency of both
``model.onnx`` files in ONNX Runtime (CPU provider, default session options, same process),
alternating A/B, batch 1 and 8, sequence 128, median of ``--runs``; GPT-2 is a prefill from an
empty past. Ratios are project / Optimum (below 1: the project is faster or smaller).

    python benchmarks/bench_vs_optimum.py                              # distilbert,bert,gpt2
    python benchmarks/bench_vs_optimum.py --models distilbert --repeat 3

Results go to ``benchmarks/results/vs_optimum.json``; a markdown table is printed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _measure import run_measured
from bench_export import TASKS, build

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for tests.support
from tests.support.optimum import ensure_optimum_venv, optimum_venv

OPTIMUM_TASKS = {"sequence-classification": "text-classification", "causal-lm-with-past": "text-generation-with-past"}
NAMES = {"distilbert": "DistilBERT-base", "bert": "BERT-base", "gpt2": "GPT-2 (124M), with past"}


def optimum_cli(venv: Path) -> Path:
    """``optimum-cli`` of the Optimum venv, creating the venv on first use."""
    return ensure_optimum_venv(venv).with_name("optimum-cli")


def export(command: list[str], output: Path) -> dict[str, Any]:
    run = run_measured([*command, str(output)])
    if run.returncode != 0:
        raise RuntimeError(f"{command[0]} failed ({run.returncode}): {run.stderr[-2000:]}")
    return {"wall_s": round(run.wall_s, 2), "peak_rss_gib": round(run.peak_rss_bytes / 2**30, 3)}


def commands(model: str, checkpoint: Path, cli: Path) -> dict[str, list[str]]:
    task = TASKS[model]
    exe = Path(sys.executable).with_name("exporter")
    return {
        "project": [str(exe), "export", "--model", str(checkpoint), "--task", task, "--formats", "onnx", "--quiet"],
        "optimum": [str(cli), "export", "onnx", "--model", str(checkpoint), "--task", OPTIMUM_TASKS[task]],
    }


def feeds_for(session: Any, batch: int, seq: int, vocab: int) -> dict[str, Any]:
    """Inputs by the graph's own names: random ids, full masks, an empty past (a prefill)."""
    import numpy as np

    rng = np.random.default_rng(0)
    values: dict[str, Any] = {
        "input_ids": rng.integers(5, vocab, (batch, seq), dtype=np.int64),
        "attention_mask": np.ones((batch, seq), dtype=np.int64),
        "token_type_ids": np.zeros((batch, seq), dtype=np.int64),
        "position_ids": np.arange(seq, dtype=np.int64)[None].repeat(batch, 0),
    }
    feeds = {}
    for inp in session.get_inputs():
        if inp.name.startswith("past_key_values."):
            feeds[inp.name] = np.zeros((batch, inp.shape[1], 0, inp.shape[3]), dtype=np.float32)
        else:
            feeds[inp.name] = values[inp.name]
    return feeds


def latencies(files: dict[str, Path], vocab: int, runs: int) -> list[dict[str, Any]]:
    """Median ms of each file at batch 1 and 8, sequence 128, the two sessions alternating."""
    import onnxruntime as ort

    sessions = {
        tool: ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]) for tool, path in files.items()
    }
    rows = []
    for batch in (1, 8):
        feeds = {tool: feeds_for(session, batch, 128, vocab) for tool, session in sessions.items()}
        samples: dict[str, list[float]] = {tool: [] for tool in sessions}
        for tool, session in sessions.items():
            session.run(None, feeds[tool])  # warm-up
        for _ in range(runs):
            for tool, session in sessions.items():
                start = time.perf_counter()
                session.run(None, feeds[tool])
                samples[tool].append((time.perf_counter() - start) * 1000)
        medians = {tool: round(statistics.median(values), 2) for tool, values in samples.items()}
        rows.append({"batch": batch, "sequence": 128, **{f"{t}_ms": v for t, v in medians.items()}})
        rows[-1]["ratio"] = round(medians["project"] / medians["optimum"], 3)
    return rows


def bench(model: str, work: Path, cli: Path, repeat: int, runs: int) -> dict[str, Any]:
    checkpoint = build(model, work / f"{model}-checkpoint")
    tools = commands(model, checkpoint, cli)
    out = {tool: work / f"{model}-{tool}" for tool in tools}
    for tool, command in tools.items():  # warm-up: page cache, compiled bytecode
        export(command, out[tool])
    measured: dict[str, list[dict[str, Any]]] = {tool: [] for tool in tools}
    for _ in range(repeat):
        for tool, command in tools.items():
            measured[tool].append(export(command, out[tool]))
    summary: dict[str, Any] = {"model": NAMES[model], "runs": measured}
    for tool, rows in measured.items():
        summary[f"{tool}_wall_s"] = statistics.median(r["wall_s"] for r in rows)
        summary[f"{tool}_peak_rss_gib"] = max(r["peak_rss_gib"] for r in rows)
    summary["wall_ratio"] = round(summary["project_wall_s"] / summary["optimum_wall_s"], 3)
    summary["rss_ratio"] = round(summary["project_peak_rss_gib"] / summary["optimum_peak_rss_gib"], 3)
    config = json.loads((checkpoint / "config.json").read_text())
    files = {tool: out[tool] / "model.onnx" for tool in tools}
    summary["latency"] = latencies(files, int(config["vocab_size"]), runs)
    report = json.loads((out["project"] / "report.json").read_text())
    summary["project_methods"] = sorted({fmt.get("method") or "?" for fmt in report["formats"]})
    return summary


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| model | project wall | Optimum wall | ratio | project peak RSS | Optimum peak RSS | ratio |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['model']} | {r['project_wall_s']:.2f} s | {r['optimum_wall_s']:.2f} s | **{r['wall_ratio']:.2f}** "
            f"| {r['project_peak_rss_gib']:.2f} GiB | {r['optimum_peak_rss_gib']:.2f} GiB | {r['rss_ratio']:.2f} |"
        )
    lines += [
        "",
        "| model | batch × seq | project model.onnx | Optimum model.onnx | ratio |",
        "|---|---|---:|---:|---:|",
    ]
    for r in results:
        for row in r["latency"]:
            lines.append(
                f"| {r['model']} | {row['batch']} × {row['sequence']} | {row['project_ms']:.1f} ms "
                f"| {row['optimum_ms']:.1f} ms | {row['ratio']:.2f} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="distilbert,bert,gpt2")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--runs", type=int, default=20, help="inference runs per file and batch (median)")
    parser.add_argument("--optimum-venv", type=Path, default=optimum_venv())
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "vs_optimum.json")
    args = parser.parse_args()
    cli = optimum_cli(args.optimum_venv)
    results = []
    with tempfile.TemporaryDirectory(prefix="vs-optimum-") as tmp:
        for model in args.models.split(","):
            results.append(bench(model, Path(tmp), cli, args.repeat, args.runs))
            print(json.dumps(results[-1]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))


if __name__ == "__main__":
    main()
