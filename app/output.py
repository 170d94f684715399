"""CLI output: human text on a terminal, one JSON object (or JSON lines) under ``--json``."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any

import typer


@dataclass
class OutputState:
    json: bool = False


STATE = OutputState()


def json_mode() -> bool:
    return STATE.json


def show_progress(asked: bool | None = None) -> bool:
    """Progress bars on a terminal or when ``--progress`` asks; never under ``--json``."""
    if asked is not None:
        return asked and not STATE.json
    return not STATE.json and sys.stdout.isatty() and sys.stderr.isatty()


def emit(obj: Any, human: str | None = None) -> None:
    """Print ``obj`` as one JSON line under ``--json``, else ``human`` (or pretty JSON)."""
    if STATE.json or human is None:
        sys.stdout.write(json.dumps(obj, ensure_ascii=False, default=str) + "\n")
    else:
        sys.stdout.write(human.rstrip("\n") + "\n")
    sys.stdout.flush()


def warn(message: str) -> None:
    typer.echo(f"warning: {message}", err=True)


def fail(message: str, exit_code: int = 1) -> typer.Exit:
    """Write one clear line on stderr and return an Exit to raise."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(exit_code)
