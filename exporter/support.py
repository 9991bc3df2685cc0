"""Which architectures × tasks are supported: derived from the specs and transformers' auto mappings."""

from __future__ import annotations

from exporter.specs import SPECS, ModelSpec
from exporter.tasks import TASKS


def supported_tasks(spec: ModelSpec) -> tuple[str, ...]:
    """Tasks of the spec's modality that transformers has a head for (or the spec's own list).

    Models with a key/value cache (``family`` decoder or encoder-decoder) also get the ``-with-past``
    variant of each of their ``default`` / ``causal-lm`` / ``seq2seq-lm`` tasks.
    """
    if spec.tasks is not None:
        return spec.tasks
    names: list[str] = []
    for task in TASKS.values():
        if task.modality not in ("any", spec.modality):
            continue
        if task.with_past and (spec.family == "encoder" or task.base not in names):
            continue
        if spec.model_class is not None or task.model_classes(spec.model_type):
            names.append(task.name)
    return tuple(names)


def support_matrix() -> dict[str, tuple[str, ...]]:
    """``model_type → tasks`` for every registered spec, sorted by model type."""
    return {name: supported_tasks(SPECS[name]) for name in sorted(SPECS)}


def support_table_markdown() -> str:
    """The README's table: one row per architecture, one column per task."""
    matrix = support_matrix()
    tasks = [name for name in TASKS if any(name in supported for supported in matrix.values())]
    lines = ["| model type | " + " | ".join(tasks) + " |", "|---|" + "|".join(":-:" for _ in tasks) + "|"]
    for model_type, supported in matrix.items():
        lines.append(f"| `{model_type}` | " + " | ".join("✅" if t in supported else "" for t in tasks) + " |")
    return "\n".join(lines)
