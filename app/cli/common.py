"""What the CLI's command modules share: the error mapper, ``data_dir`` and input parsing.

Nothing here imports a command module, so every command module may import this one.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup

from app.settings import get_settings
from core.errors import TandemError, UsageError

try:  # typer >= 0.20 vendors click; its exceptions live beside it
    from typer._click.exceptions import ClickException
except ImportError:  # pragma: no cover - older typer on plain click
    from click.exceptions import ClickException  # type: ignore[assignment]


def run_mapped(call: Callable[[], Any]) -> Any:
    """Run ``call`` (a click ``main``), turning every expected error into one line and an exit.

    The CLI's one error mapper: a :class:`TandemError` prints ``error: <message>`` on stderr
    and exits with its ``exit_code``; click's usage errors likewise (exit 2).
    """
    try:
        rv = call()
    except typer.Exit as exc:
        raise SystemExit(exc.exit_code) from None
    except typer.Abort:
        typer.echo("error: aborted", err=True)
        raise SystemExit(130) from None
    except ClickException as exc:
        typer.echo(f"error: {exc.format_message()}", err=True)
        raise SystemExit(exc.exit_code) from None
    except TandemError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise SystemExit(exc.exit_code) from None
    except KeyboardInterrupt:
        typer.echo("error: interrupted", err=True)
        raise SystemExit(130) from None
    except BrokenPipeError:
        raise SystemExit(1) from None
    if isinstance(rv, int) and rv:
        raise SystemExit(rv)
    return rv


class TandemGroup(TyperGroup):
    """A command group whose ``main`` runs under :func:`run_mapped`.

    ``tandem`` itself and each group run on their own (``typer.testing.CliRunner``) map errors
    the same way; nested groups never run ``main``, so errors are mapped once.
    """

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        return run_mapped(
            lambda: super(TandemGroup, self).main(
                args=args,
                prog_name=prog_name,
                complete_var=complete_var,
                standalone_mode=False,
                **extra,
            )
        )


def group(help: str) -> typer.Typer:
    """A command group (``tandem <group> ...``) that maps errors like ``tandem`` does."""
    return typer.Typer(cls=TandemGroup, help=help, no_args_is_help=True)


def data_dir() -> Path:
    return get_settings().data_dir


def parse_filters(items: list[str] | None) -> dict[str, list[str]]:
    """``--filter key=value`` options as ``{key: [values]}`` (a key given twice matches either).

    Raises:
        UsageError: (exit 2) an item without ``=``, or with an empty key or value (``topic=``
            from an unset shell variable would silently match nothing).
    """
    filters: dict[str, list[str]] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key:
            raise UsageError(f"--filter wants key=value, got {item!r}")
        if not value:
            raise UsageError(f"--filter {item!r} has an empty value: give key=value")
        filters.setdefault(key, []).append(value)
    return filters


def read_jsonl(path: Path, key: str) -> list[dict[str, Any]]:
    if not path.is_file():
        raise UsageError(f"file not found: {path}")
    rows = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UsageError(f"{path}:{lineno}: invalid JSON ({exc.msg})") from exc
        if not isinstance(row, dict) or not isinstance(row.get(key), str):
            raise UsageError(f"{path}:{lineno}: each line needs a string {key!r}")
        row.setdefault("id", str(lineno))
        rows.append(row)
    return rows


def load_reranker_if(spec: str | None, wanted: bool | None) -> Any:
    """The reranker for ``spec`` unless reranking is switched off."""
    if wanted is False or not spec:
        return None
    from smallmodels.reranker import load_reranker

    return load_reranker(spec)
