"""``python -m export_action run``: the entry point ``action.yml`` calls."""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path

import typer

from export_action import gha
from export_action.action import run as run_action
from export_action.config import ActionConfig
from export_action.errors import ActionError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="The hub-exporter GitHub Action.")


@app.callback()
def _main() -> None:
    """Export a checkpoint, validate it, and open or update a pull request."""


@app.command()
def run(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks (also on when RUNNER_DEBUG=1)."),
) -> None:
    """Read the action inputs from INPUT_* / GITHUB_* variables and run the action."""
    try:
        config = ActionConfig.from_env()
        run_action(config)
    except ActionError as error:
        if debug or os.environ.get("RUNNER_DEBUG") == "1":
            traceback.print_exc()
        gha.annotate("error", str(error), title=f"hub-exporter ({type(error).__name__}, exit {error.exit_code})")
        _summarize_failure(f"{type(error).__name__}, exit {error.exit_code}: {error}")
        raise typer.Exit(error.exit_code) from None
    except Exception as error:
        traceback.print_exc()
        gha.annotate("error", f"internal error, please report it: {type(error).__name__}: {error}")
        _summarize_failure(f"internal error, exit 70: {type(error).__name__}: {error}")
        raise typer.Exit(70) from None


def _summarize_failure(reason: str) -> None:
    """One line in the job summary: the step failed and no pull request was opened or updated."""
    summary = os.environ.get("GITHUB_STEP_SUMMARY", "").strip()
    message = f"\n**hub-exporter failed: no pull request was opened or updated.** ({reason})\n"
    gha.append_summary(Path(summary) if summary else None, message)


def main() -> None:
    app(prog_name="python -m export_action", args=sys.argv[1:])
