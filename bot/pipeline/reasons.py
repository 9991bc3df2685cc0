"""The exporter's refusals, reworded for the model's author: what went wrong and what they can do.

The exporter speaks to someone at a terminal ("pass --trust-remote-code", "describe it with --spec",
torch's "if you trust the source"); a bot's author can change only the repo. Each known refusal
(matched on the exporter's exit code and its last stderr line) becomes a sentence about the repo;
an unknown one keeps the exporter's line with command-line advice removed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.pipeline.repo_config import FILENAME as REPO_CONFIG

# Exit codes of the exporter (exporter/errors.py).
CHECKPOINT, UNSUPPORTED, EXPORT_FAILED = 3, 4, 5

SAFETENSORS_HOWTO = "e.g. `model.save_pretrained(folder)` in transformers writes model.safetensors"


@dataclass(frozen=True)
class Refusal:
    """An exporter message (exit code + pattern on its line) and the author's sentence (``{0}``… = groups)."""

    code: int
    pattern: re.Pattern[str]
    sentence: str


def _refusal(code: int, pattern: str, sentence: str) -> Refusal:
    return Refusal(code, re.compile(pattern, re.IGNORECASE), sentence)


REFUSALS: tuple[Refusal, ...] = (
    _refusal(
        UNSUPPORTED,
        r"ships its own model code|auto_map|trust.remote.code",
        "this checkpoint ships its own model code (`auto_map` in config.json) and the bot never runs a repo's "
        "code. Publish safetensors weights with a config.json whose `model_type` transformers knows, "
        "without `auto_map`.",
    ),
    _refusal(
        CHECKPOINT,
        r"weights.only load failed|weights_only|trust the source",
        "the weights are a pickle (pytorch_model.bin) that needs more than plain tensors to load, and the bot "
        f"loads nothing else. Publish the weights as safetensors ({SAFETENSORS_HOWTO}).",
    ),
    _refusal(
        UNSUPPORTED,
        r"model type '([^']+)' is (?:unknown to transformers|not supported)",
        "model type '{0}' is not one the exporter supports (see 'Supported architectures' in the project's "
        "README). Nothing to change in the repo: the bot exports it once support is added.",
    ),
    _refusal(
        UNSUPPORTED,
        r"cannot infer the task of (\S+)",
        "the bot cannot tell which task {0} is for. Name it in "
        f"{REPO_CONFIG}, e.g. `tasks: [sequence-classification]`.",
    ),
    _refusal(
        UNSUPPORTED,
        r"(\S+) has no '([^']+)' head; its tasks are: (.+)",
        "{0} has no '{1}' head, the task asked for in " + REPO_CONFIG + "; its tasks are: {2}.",
    ),
    _refusal(
        UNSUPPORTED,
        r"unknown task '([^']+)'; valid tasks: (.+)",
        "'{0}' in the `tasks` of " + REPO_CONFIG + " is not a task name; valid tasks: {1}.",
    ),
    _refusal(
        CHECKPOINT,
        r"no weights in",
        f"no weights were found. Add model.safetensors ({SAFETENSORS_HOWTO}).",
    ),
    _refusal(
        CHECKPOINT,
        r"cannot load the weights in \S+: (.+)",
        "the weights do not load into the model config.json describes ({0}). Check that config.json and the "
        "weights were saved together.",
    ),
    _refusal(
        CHECKPOINT,
        r"forward fails on sample inputs \((.+)\); check",
        "the model's own forward pass fails on sample inputs ({0}). Check that the sizes in config.json fit "
        "together and match the weights.",
    ),
    _refusal(
        CHECKPOINT,
        r"config\.json in \S+ (is not valid JSON: .+|is not a JSON object|has no model_type|is invalid: .+)",
        "config.json {0}. Save it with transformers (`config.save_pretrained(folder)`).",
    ),
    _refusal(
        EXPORT_FAILED,
        r"(ONNX export failed|TorchScript trace failed|onnx\.checker rejected \S+): (.+)",
        "{0} ({1}). This is a limit of the export, not a fault of the checkpoint; if one format works, ask "
        f"for it alone in {REPO_CONFIG} (`formats: [onnx]` or `formats: [torchscript]`).",
    ),
)

#: Command-line advice in exporter and torch messages; removed from lines no refusal matches.
_CLI_ADVICE = re.compile(
    r"[;,.]?\s*(?:pass --[\w-]+[^;]*|describe it with --spec [^;]*|run `exporter [^`]*`[^;]*"
    r"|(?:to do so )?you have two options.*|do those steps only if you trust the source.*)",
    re.IGNORECASE,
)
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


def author_sentence(code: int, line: str, snapshot: str | None = None) -> str:
    """What the author reads for an exporter exit ``code`` with last stderr ``line``."""
    line = _ANSI.sub("", line).strip()

    def public(text: str) -> str:  # the bot's own folder names are nobody's business
        return text.replace(snapshot, "the checkpoint") if snapshot else text

    for refusal in REFUSALS:
        if refusal.code == code and (match := refusal.pattern.search(line)):
            return refusal.sentence.format(*(public(group).rstrip(".") for group in match.groups()))
    stripped = _CLI_ADVICE.sub("", public(line)).strip(" ;,")
    return stripped or "the exporter gave no message"


def validation_sentence(summary: str) -> str:
    """For an export that ran but does not match PyTorch within tolerance."""
    return (
        f"the exported files differ from PyTorch by more than the tolerance: {summary}. A numerically "
        f"sensitive model may need a looser `atol` in {REPO_CONFIG}; a large difference usually means an "
        "operation the export cannot capture (e.g. control flow that depends on the input values)."
    )
