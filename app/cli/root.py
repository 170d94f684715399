"""The ``tandem`` root command: global options, the list of command groups, plugins, ``main``.

Command groups are listed once, in :data:`GROUPS`; each is a module with a
``register(cli: typer.Typer) -> None``. Commands shipped outside the product (``tandem bench``
from ``bench/``) register the same way through entry points of the group ``tandem.cli``;
one whose module is not installed (the Docker image ships no benchmarks) is skipped.
"""

from __future__ import annotations

import logging
import os
import sys
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import Annotated

import typer

from app.cli import ask, checker, index, mcp, reader, reranker, search, serve, worker
from app.cli.common import TandemGroup
from app.output import STATE
from app.runtime import configure_lower_layers
from app.settings import get_settings

#: Every command group of the product, registered in this order (plugins after them).
GROUPS: tuple[ModuleType, ...] = (index, search, serve, ask, worker, reranker, reader, checker, mcp)

#: Entry-point group through which other distributions add commands (``register(cli)``).
PLUGIN_GROUP = "tandem.cli"

cli = typer.Typer(
    cls=TandemGroup,
    name="tandem",
    help="Tandem: retrieval-augmented answers where small models do most of the work.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    add_completion=False,
)


@cli.callback()
def _main(
    json_output: Annotated[
        bool, typer.Option("--json", help="Machine output: JSON object / JSON lines.")
    ] = False,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir", help="Where indexes live (env TANDEM_DATA_DIR).", show_default=False
        ),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress.")] = False,
) -> None:
    STATE.json = json_output
    if data_dir is not None:
        os.environ["TANDEM_DATA_DIR"] = str(data_dir)
        get_settings.cache_clear()
    configure_lower_layers(get_settings())
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _missing(module: str, exc: ModuleNotFoundError) -> bool:
    """Whether ``exc`` says that ``module`` itself (or a package above it) is not installed."""
    return exc.name is not None and (module == exc.name or module.startswith(exc.name + "."))


def register_plugins(app: typer.Typer) -> None:
    """Call ``register(app)`` of every ``tandem.cli`` entry point whose module is installed."""
    for ep in sorted(entry_points(group=PLUGIN_GROUP), key=lambda ep: ep.name):
        try:
            register = ep.load()
        except ModuleNotFoundError as exc:
            if not _missing(ep.module, exc):
                raise
            continue
        register(app)


for _group in GROUPS:
    _group.register(cli)
register_plugins(cli)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI, turning every expected error into one line and an exit code."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    typer.main.get_command(cli).main(args=argv, prog_name="tandem")
