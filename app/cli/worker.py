"""``tandem worker``: run index-building jobs from the Redis queue (see :mod:`app.jobs.worker`)."""

from __future__ import annotations

from typing import Annotated

import typer

from app.settings import get_settings
from core.errors import UsageError


def worker(
    concurrency: Annotated[
        int | None,
        typer.Option(
            "--concurrency",
            min=1,
            max=64,
            help="Jobs run at once (env TANDEM_WORKER_CONCURRENCY; default 1).",
            show_default=False,
        ),
    ] = None,
    burst: Annotated[bool, typer.Option("--burst", help="Exit once the queue is empty.")] = False,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Healthcheck: exit 0 if a worker on this machine is alive, else 1.",
        ),
    ] = False,
) -> None:
    """Run index-building jobs from the Redis queue (TANDEM_REDIS_URL); scale by running more."""
    from app.jobs.worker import healthy, run_worker
    from app.logging import configure_logging
    from app.output import emit

    settings = get_settings()
    if check:
        alive = healthy(settings.worker_heartbeat_file)
        emit({"alive": alive}, "alive" if alive else "not alive")
        raise typer.Exit(0 if alive else 1)
    if not settings.redis_url:
        raise UsageError(
            "tandem worker takes jobs from Redis: set TANDEM_REDIS_URL (without Redis the API "
            "runs jobs itself)"
        )
    configure_logging(settings.log_level)
    run_worker(settings, concurrency, burst)


def register(cli: typer.Typer) -> None:
    """Add ``tandem worker`` to the CLI."""
    cli.command("worker")(worker)
