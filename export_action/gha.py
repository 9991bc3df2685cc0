"""The runner's file and workflow commands: outputs, job summary, annotations, log groups."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path


def set_outputs(output_file: Path | None, outputs: Mapping[str, str]) -> None:
    """Append step outputs to ``$GITHUB_OUTPUT`` in the multiline-safe ``name<<DELIMITER`` form."""
    if output_file is None:
        return
    chunks = []
    for name, value in outputs.items():
        delimiter = f"ghadelimiter_{uuid.uuid4()}"
        if delimiter in name or delimiter in value:  # pragma: no cover - a uuid collision
            raise ValueError(f"output {name!r} contains its delimiter")
        chunks.append(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")
    with output_file.open("a", encoding="utf-8") as handle:
        handle.write("".join(chunks))


def append_summary(summary_file: Path | None, markdown: str) -> None:
    """Append markdown to the job summary (``$GITHUB_STEP_SUMMARY``)."""
    if summary_file is None:
        return
    with summary_file.open("a", encoding="utf-8") as handle:
        handle.write(markdown if markdown.endswith("\n") else markdown + "\n")


def escape_data(message: str) -> str:
    """Escape a workflow command's message (``%``, CR, LF) the way ``@actions/core`` does."""
    return message.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def annotate(level: str, message: str, *, title: str | None = None) -> None:
    """Print an ``::error::`` / ``::warning::`` / ``::notice::`` annotation on stderr."""
    prefix = (
        f"::{level} title={escape_data(title).replace(',', '%2C').replace(':', '%3A')}::" if title else f"::{level}::"
    )
    print(prefix + escape_data(message), file=sys.stderr, flush=True)


@contextmanager
def group(title: str) -> Iterator[None]:
    """A collapsible section of the step log."""
    print(f"::group::{escape_data(title)}", flush=True)
    try:
        yield
    finally:
        print("::endgroup::", flush=True)
