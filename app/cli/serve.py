"""``tandem serve``: run the HTTP service with uvicorn (factory mode, JSON logs)."""

from __future__ import annotations

from typing import Annotated

import typer

from app.settings import get_settings
from core.errors import UsageError


def check_bind(host: str, keys_configured: bool, allow_open: bool) -> str | None:
    """Why ``host`` may not be bound (None when it may)."""
    from app.security import is_loopback

    if keys_configured or allow_open or is_loopback(host):
        return None
    return (
        f"refusing to listen on {host} with no API keys: set TANDEM_API_KEYS (or "
        "TANDEM_ALLOW_OPEN=1 to serve an open API on purpose)"
    )


def serve(
    host: Annotated[
        str | None,
        typer.Option(
            "--host", help="Bind address (env TANDEM_HOST; default 127.0.0.1).", show_default=False
        ),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(
            "--port",
            min=1,
            max=65535,
            help="Port (env TANDEM_PORT; default 8000).",
            show_default=False,
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=1,
            max=64,
            help="Worker processes (env TANDEM_WORKERS).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Serve the search API over HTTP (OpenAPI at /schema/openapi.json)."""
    import os

    import uvicorn

    from app.logging import configure_logging, logging_config
    from app.security import KeyRing

    settings = get_settings()
    host = host or settings.host
    port = port or settings.port
    workers = workers or settings.workers
    keyring = KeyRing.from_setting(settings.api_keys)  # malformed keys: exit 2 here
    reason = check_bind(host, keyring.enabled, settings.allow_open)
    if reason:
        raise UsageError(reason)
    configure_logging(settings.log_level)
    import logging

    log = logging.getLogger("tandem.serve")
    if not keyring.enabled:
        log.warning(
            "no API keys configured: requests are not authenticated; listening on %s only", host
        )
    log.info(
        "tandem serving %s on http://%s:%d with %d worker(s)",
        settings.data_dir,
        host,
        port,
        workers,
    )
    # Workers are fresh processes: they read their settings from the environment.
    os.environ["TANDEM_DATA_DIR"] = str(settings.data_dir)
    metrics_dir = None
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        import tempfile

        # One /metrics for all workers: prometheus-client's multiprocess mode.
        metrics_dir = tempfile.mkdtemp(prefix="tandem-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        uvicorn.run(
            "app.server:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_config=logging_config(settings.log_level),
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=10,
        )
    finally:
        if metrics_dir:
            import shutil

            shutil.rmtree(metrics_dir, ignore_errors=True)


def register(cli: typer.Typer) -> None:
    """Add ``tandem serve`` to the CLI."""
    cli.command("serve")(serve)
