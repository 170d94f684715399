"""The route handlers of the service, core and optional.

:func:`controllers` is what :func:`app.server.create_app` mounts: the core controllers plus
those of every optional module in :data:`OPTIONAL_MODULES` that exists. An optional module
exports its controllers as ``controllers() -> list`` or ``CONTROLLERS = [...]``; failing both,
every :class:`~litestar.Controller` subclass defined in it is mounted. It may also export
lifespan hooks as ``lifespan_hooks() -> dict[str, HookFactory]`` or ``LIFESPAN_HOOKS`` (see
:mod:`app.server`).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from types import ModuleType
from typing import TYPE_CHECKING, Any

from litestar import Controller

if TYPE_CHECKING:
    from litestar import Litestar
    from litestar.types import ControllerRouterHandler

    from app.state import ServiceState

#: A lifespan hook: called with the app and the loaded state once the core is up; the context
#: is entered before the first request and exited at shutdown (in reverse order).
HookFactory = Callable[["Litestar", "ServiceState"], AbstractAsyncContextManager[Any]]

OPTIONAL_MODULES = (
    "app.controllers.answers",
    "app.controllers.jobs",
    "app.controllers.playground",
)


def optional_modules() -> list[ModuleType]:
    """The optional controller modules that exist (an import error inside one is raised)."""
    found = []
    for name in OPTIONAL_MODULES:
        try:
            found.append(importlib.import_module(name))
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
    return found


def _exported(module: ModuleType) -> list[ControllerRouterHandler]:
    fn = getattr(module, "controllers", None)
    if callable(fn):
        return list(fn())
    listed = getattr(module, "CONTROLLERS", None)
    if listed is not None:
        return list(listed)
    return [
        obj
        for _, obj in inspect.getmembers(module, inspect.isclass)
        if issubclass(obj, Controller)
        and obj is not Controller
        and obj.__module__ == module.__name__
    ]


def controllers() -> list[ControllerRouterHandler]:
    """Core controllers, then those of each optional module present."""
    from app.controllers.health import HealthController, MetricsController
    from app.controllers.indexes import IndexController

    out: list[ControllerRouterHandler] = [HealthController, MetricsController, IndexController]
    for module in optional_modules():
        out.extend(_exported(module))
    return out


def lifespan_hooks() -> dict[str, HookFactory]:
    """Lifespan hooks exported by the optional modules, by name."""
    hooks: dict[str, HookFactory] = {}
    for module in optional_modules():
        fn = getattr(module, "lifespan_hooks", None)
        found = fn() if callable(fn) else getattr(module, "LIFESPAN_HOOKS", None)
        hooks.update(found or {})
    return hooks
