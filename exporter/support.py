"""Which architectures × tasks are supported: derived from the specs and transformers' auto mappings."""

from __future__ import annotations

from exporter.errors import NotExportableError
from exporter.specs import SPECS, ModelSpec
from exporter.tasks import TASKS


def supported_tasks(spec: ModelSpec) -> tuple[str, ...]:
    """Tasks of the spec's modality that transformers has a head for (or the spec's own list).

    Models with a key/value cache (``family`` decoder or encoder-decoder) also get the ``-with-past``
    variant of each of their ``default`` / ``causal-lm`` / ``seq2seq-lm`` tasks.
    """
    if spec.not_exportable is not None:
        return ()
    if spec.tasks is not None:
        return tuple(task for task in spec.tasks if task not in spec.task_not_exportable)
    names: list[str] = []
    for task in TASKS.values():
        if task.modality not in ("any", spec.modality) and spec.modality != "multimodal":
            continue
        if task.with_past and (spec.family == "encoder" or task.base not in names):
            continue
        if task.name in spec.task_not_exportable:
            continue
        if spec.model_class is not None or task.name in spec.task_model_class or task.model_classes(spec.model_type):
            names.append(task.name)
    return tuple(names)


def not_exportable(spec: ModelSpec) -> dict[str, str]:
    """``task → reason`` of what cannot be exported now (``*`` for the whole type)."""
    if spec.not_exportable is not None:
        return {"*": spec.not_exportable}
    return dict(spec.task_not_exportable)


def check_exportable(spec: ModelSpec, task: str) -> None:
    """Raise :class:`NotExportableError` (exit 4) with the reason when ``task`` of ``spec`` cannot be exported."""
    reasons = not_exportable(spec)
    reason = reasons.get("*", reasons.get(task))
    if reason is not None:
        what = spec.model_type if "*" in reasons else f"{spec.model_type} {task!r}"
        raise NotExportableError(f"{what} cannot be exported: {reason}")


def support_matrix() -> dict[str, tuple[str, ...]]:
    """``model_type → tasks`` for every registered spec, sorted by model type."""
    return {name: supported_tasks(SPECS[name]) for name in sorted(SPECS)}


def support_table_markdown() -> str:
    """The README's table: one row per architecture, one column per task."""
    matrix = support_matrix()
    tasks = [name for name in TASKS if any(name in supported for supported in matrix.values())]
    lines = ["| model type | " + " | ".join(tasks) + " |", "|---|" + "|".join(":-:" for _ in tasks) + "|"]
    for model_type, supported in matrix.items():
        if supported:
            lines.append(f"| `{model_type}` | " + " | ".join("✅" if t in supported else "" for t in tasks) + " |")
    refused = [(name, task, why) for name in sorted(SPECS) for task, why in not_exportable(SPECS[name]).items()]
    if refused:
        lines += [
            "",
            "Not exportable on the current torch/transformers:",
            "",
            "| model type | task | why |",
            "|---|---|---|",
        ]
        lines += [f"| `{name}` | {'every task' if task == '*' else task} | {why} |" for name, task, why in refused]
    return "\n".join(lines)
