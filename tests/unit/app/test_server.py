"""create_app: the one list of controllers, extra controllers, lifespan hooks, readiness checks."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from contextlib import asynccontextmanager
from typing import Any, Literal

import pytest
from litestar import Controller, get

import app.controllers
from app.controllers import CONTROLLERS, LIFESPAN_HOOKS
from app.controllers.health import HealthController, MetricsController
from app.controllers.indexes import IndexController
from app.server import app_summary, create_app, register_lifespan_hook
from app.state import ServiceState


def test_every_controller_is_listed_once_core_first():
    assert CONTROLLERS[:3] == (HealthController, MetricsController, IndexController)
    assert len(set(CONTROLLERS)) == len(CONTROLLERS)
    defined = set()
    for info in pkgutil.iter_modules(app.controllers.__path__):
        module = importlib.import_module(f"app.controllers.{info.name}")
        defined |= {
            obj
            for _, obj in inspect.getmembers(module, inspect.isclass)
            if issubclass(obj, Controller) and obj.__module__ == module.__name__
        }
    assert defined == set(CONTROLLERS)  # no controller defined but left out, none elsewhere
    assert list(LIFESPAN_HOOKS) == ["answers", "jobs", "mcp", "tracing"]
    with pytest.raises(TypeError):  # read-only: hooks are added through register_lifespan_hook
        LIFESPAN_HOOKS["x"] = LIFESPAN_HOOKS["jobs"]  # type: ignore[index]


def test_every_route_comes_from_a_listed_controller(service_settings: Any):
    app = create_app(service_settings())
    owners = {
        handler.fn.__qualname__.split(".")[0]  # "HealthController.live"
        for route in app.routes
        for handler in getattr(route, "route_handlers", [])
        if handler.http_methods != {"OPTIONS"}  # Litestar's own CORS preflight answers
        and not route.path.startswith("/schema")  # and its OpenAPI document
    }
    assert owners == {c.__name__ for c in CONTROLLERS}


class PingController(Controller):
    path = "/v1/ping"

    @get("/", operation_id="ping")
    async def ping(self, tandem: ServiceState) -> dict[str, Any]:
        return {"pong": tandem.extras["ping"]["value"]}


async def test_extra_controllers_and_hooks_run_in_the_lifespan(service: Any, service_settings: Any):
    events: list[str] = []

    def hook(name: str) -> Any:
        @asynccontextmanager
        async def run(app: Any, state: ServiceState) -> Any:
            assert state.embedder is not None  # the core is loaded first
            events.append(f"start {name}")
            state.extras["ping"] = {"value": name}

            async def check() -> tuple[Literal["ok", "absent", "down"], str]:
                return "down", f"{name} is pretend-down"

            state.health_checks[name] = check
            yield
            events.append(f"stop {name}")

        return run

    register_lifespan_hook("registered", hook("registered"))
    try:
        settings = service_settings(api_keys="k")
        async with service(
            settings, extra_controllers=[PingController], hooks={"given": hook("given")}
        ) as client:
            assert events == ["start registered", "start given"]
            r = await client.get("/v1/ping", headers={"Authorization": "Bearer k"})
            assert r.status_code == 200 and r.json() == {"pong": "given"}
            assert (await client.get("/v1/ping")).status_code == 401  # guarded like the rest
            ready = await client.get("/health/ready")
            assert ready.status_code == 200  # a plug-in down degrades, never 503
            assert ready.json()["status"] == "degraded"
            assert ready.json()["components"]["given"] == "down"
        assert events[-2:] == ["stop given", "stop registered"]
    finally:
        from app import server

        server.unregister_lifespan_hook("registered")


def test_app_summary_lists_operation_ids(service_settings: Any):
    ops = {op for _, _, op in app_summary(create_app(service_settings())) if op}
    assert {
        "health_live",
        "health_ready",
        "metrics",
        "list_indexes",
        "get_index",
        "search_index",
    } <= ops
