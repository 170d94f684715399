"""The Tandem HTTP service: ``create_app(settings) -> Litestar``.

Plug-in points
--------------
* **Routes.** Every controller is listed in :data:`app.controllers.CONTROLLERS` (one
  ``litestar.Controller`` per concern); ``create_app(..., extra_controllers=[...])`` mounts more
  (tests). Handlers get the loaded :class:`~app.state.ServiceState` by declaring a ``tandem:
  ServiceState`` parameter; every route needs an API key unless its handler or controller has
  ``opt={"public": True}``. Request and response bodies live in :mod:`app.schemas`. Run any
  CPU-bound model call through ``await tandem.limiter.run(fn, *args)``. Raise
  :class:`~core.errors.TandemError` subclasses: :mod:`app.errors` maps them to
  ``{"error": {"code", "message"}}`` with their status.
* **Startup work.** A lifespan hook is a factory ``(app, state) -> async context manager``:
  the controllers' own in :data:`app.controllers.LIFESPAN_HOOKS`, then those registered with
  :func:`register_lifespan_hook`, then those passed as ``create_app(settings, hooks={...})``.
  Hooks are entered in that order after the models and indexes are loaded and before the first
  request, and exited in reverse at shutdown. Keep loaded objects in ``state.extras[name]``;
  add a readiness component with ``state.health_checks[name] = async_fn`` (returns
  ``("ok"|"absent"|"down", detail)``).

What the lifespan does
----------------------
Builds the :class:`ServiceState` (``app.state.tandem``): loads the embedder (and the reranker
when a reranker is configured; otherwise says that reranking is off), opens every published
index, connects the cache (Redis or in-process LRU), starts the background index watcher (new
versions and new indexes are served without a restart), then runs the hooks.

The app is wrapped by :class:`app.logging.RequestLogMiddleware` (request id, one JSON log line
per request, HTTP metrics). ``tandem serve`` runs it with uvicorn in factory mode
(``app.server:create_app``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.types import ControllerRouterHandler

from app import tracing
from app.controllers import CONTROLLERS, LIFESPAN_HOOKS, MOUNTS, HookFactory
from app.controllers.playground import schema_plugins, schema_router
from app.errors import handle_exception
from app.logging import RequestLogMiddleware
from app.metrics import Metrics
from app.security import KeyRing, api_key_guard
from app.settings import Settings, get_settings
from app.state import ServiceState

log = logging.getLogger("tandem.server")

_HOOKS: dict[str, HookFactory] = {}


def register_lifespan_hook(name: str, factory: HookFactory) -> None:
    """Run ``factory(app, state)`` (an async context manager) in every app's lifespan."""
    _HOOKS[name] = factory


def unregister_lifespan_hook(name: str) -> None:
    """Undo :func:`register_lifespan_hook` (no error when ``name`` is not registered)."""
    _HOOKS.pop(name, None)


def _service_state(state: State) -> ServiceState:
    tandem: ServiceState = state.tandem
    return tandem


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("tandem")
    except Exception:  # noqa: BLE001 - not installed: a source checkout
        return "0.0.0"


def create_app(
    settings: Settings | None = None,
    *,
    extra_controllers: Iterable[ControllerRouterHandler] = (),
    hooks: Mapping[str, HookFactory] | None = None,
) -> Litestar:
    """The Litestar app over ``settings`` (default: the ``TANDEM_*`` environment)."""
    settings = settings or get_settings()
    KeyRing.from_setting(settings.api_keys)  # malformed keys fail here, not at first request
    traced = tracing.setup(settings) or tracing.enabled()
    metrics = tracing.TracedMetrics() if traced else Metrics()
    all_hooks = {**LIFESPAN_HOOKS, **_HOOKS, **(hooks or {})}

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        state = ServiceState.create(settings, metrics)
        app.state.tandem = state
        await state.start()
        watcher = asyncio.create_task(state.indexes.watch(), name="tandem-index-watcher")
        try:
            async with contextlib.AsyncExitStack() as stack:
                for name, factory in all_hooks.items():
                    log.info("starting %s", name)
                    await stack.enter_async_context(factory(app, state))
                log.info("tandem ready")
                yield
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            await state.close()

    app = Litestar(
        route_handlers=[*CONTROLLERS, *MOUNTS, *extra_controllers],
        lifespan=[lifespan],
        dependencies={"tandem": Provide(_service_state, sync_to_thread=False)},
        guards=[api_key_guard],
        before_request=tracing.before_request if traced else None,
        after_request=tracing.after_request if traced else None,
        exception_handlers={Exception: handle_exception},
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="Tandem",
            version=_version(),
            description="Retrieval over your documents where small models do most of the work.",
            path="/schema",
            openapi_router=schema_router(),  # offline Redoc, security headers
            render_plugins=schema_plugins(),
            components=Components(
                security_schemes={"bearer": SecurityScheme(type="http", scheme="bearer")}
            ),
            security=[{"bearer": []}],
        ),
        logging_config=None,
        debug=False,
    )
    app.asgi_handler = RequestLogMiddleware(app.asgi_handler, metrics)
    if traced:  # outermost: the request span covers everything, trace context read first
        app.asgi_handler = tracing.wrap_asgi(app.asgi_handler)
    return app


def app_summary(app: Litestar) -> list[tuple[str, str, str | None]]:
    """``(method, path, operation_id)`` of every route (for docs and tests)."""
    out: list[tuple[str, str, str | None]] = []
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            for method in sorted(getattr(handler, "http_methods", [])):
                op: Any = getattr(handler, "operation_id", None)
                out.append((method, route.path, op if isinstance(op, str) else None))
    return out
