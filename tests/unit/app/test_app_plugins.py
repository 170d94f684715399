"""Plug-in points of create_app: controller discovery, lifespan hooks, readiness checks."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Any, Literal

from litestar import Controller, get

from app.controllers import OPTIONAL_MODULES, _exported, controllers
from app.controllers.health import HealthController, MetricsController
from app.controllers.indexes import IndexController
from app.server import app_summary, create_app, register_lifespan_hook
from app.state import ServiceState


def test_core_controllers_come_first():
    found = controllers()
    assert found[:3] == [HealthController, MetricsController, IndexController]
    assert "app.controllers.answers" in OPTIONAL_MODULES
    assert "app.controllers.jobs" in OPTIONAL_MODULES
    assert "app.controllers.playground" in OPTIONAL_MODULES


def test_exported_finds_controllers_defined_in_a_module():
    import types

    module = types.ModuleType("fake_plugin")

    class Mine(Controller):
        path = "/mine"

    Mine.__module__ = "fake_plugin"
    module.Mine = Mine  # type: ignore[attr-defined]
    module.Imported = IndexController  # type: ignore[attr-defined]
    assert _exported(module) == [Mine]
    module.CONTROLLERS = [IndexController]  # type: ignore[attr-defined]
    assert _exported(module) == [IndexController]


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

        server._HOOKS.pop("registered", None)


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
