"""The route handlers of the service, every one a :class:`litestar.Controller`, listed here.

:data:`CONTROLLERS` is what :func:`app.server.create_app` mounts
and :data:`LIFESPAN_HOOKS` the startup work it runs, in this order, once the core (models,
indexes, cache) is loaded (see :mod:`app.server`). A new route is a ``Controller`` subclass
in a module of this package, added to :data:`CONTROLLERS`; its request and response bodies
live in :mod:`app.schemas`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from litestar import Controller

from app.controllers.answers import AskController, OpenAIController, answers_hook
from app.controllers.health import HealthController, MetricsController
from app.controllers.indexes import IndexController
from app.controllers.jobs import JobsController, jobs_hook
from app.controllers.playground import PlaygroundController
from app.mcp.http import mcp_hook, mcp_mount
from app.tracing import tracing_hook

if TYPE_CHECKING:
    from litestar import Litestar

    from app.state import ServiceState

#: A lifespan hook: called with the app and the loaded state once the core is up; the context
#: is entered before the first request and exited at shutdown (in reverse order).
HookFactory = Callable[["Litestar", "ServiceState"], AbstractAsyncContextManager[Any]]

#: Every controller of the service: health and metrics, indexes and search, answers (native
#: and OpenAI-compatible), ingestion jobs, the playground page.
CONTROLLERS: tuple[type[Controller], ...] = (
    HealthController,
    MetricsController,
    IndexController,
    AskController,
    OpenAIController,
    JobsController,
    PlaygroundController,
)

#: ASGI apps mounted beside the controllers: the MCP endpoint (streamable HTTP at ``/mcp``).
MOUNTS = (mcp_mount,)

#: The lifespan hooks of the controllers, by name, in the order they start.
LIFESPAN_HOOKS: Mapping[str, HookFactory] = MappingProxyType(
    {"answers": answers_hook, "jobs": jobs_hook, "mcp": mcp_hook, "tracing": tracing_hook}
)
