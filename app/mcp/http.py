"""MCP over streamable HTTP at ``/mcp``, mounted in the service's Litestar app.

:data:`mcp_mount` is a Litestar ASGI mount. It is not public: :func:`app.security.api_key_guard`
runs first, as for every REST route, so a missing or wrong key is REST's 401 (with
``WWW-Authenticate``) and every HTTP request counts against the key's rate limit (429). The
guard leaves the caller's principal in the request scope, where the tools read it
(:mod:`app.mcp.server`). The MCP session manager runs stateless with JSON responses: any
replica behind a load balancer can answer any request, as for REST.

:func:`mcp_hook` (a lifespan hook in :data:`app.controllers.LIFESPAN_HOOKS`) builds the server
over the loaded state and runs the session manager's task group for the app's lifetime.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from litestar.handlers import asgi
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings

from app import tracing
from app.errors import ComponentUnavailable, error_body
from app.security import is_loopback

if TYPE_CHECKING:
    from litestar import Litestar
    from litestar.types import Receive, Scope, Send

    from app.state import ServiceState

MCP_PATH = "/mcp"
EXTRA = "mcp"


def _security(host: str) -> TransportSecuritySettings:
    """DNS-rebinding protection (Host and Origin checks) when served on loopback only."""
    if not is_loopback(host):
        return TransportSecuritySettings(enable_dns_rebinding_protection=False)
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*", "127.0.0.1", "localhost"],
        allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"],
    )


@asynccontextmanager
async def mcp_hook(app: Litestar, state: ServiceState) -> AsyncIterator[None]:
    """Build the MCP server and run its session manager while the app runs."""
    from app.mcp.server import build_server  # it uses the controllers, which list this module
    from app.server import _version

    server = build_server(state, version=_version())
    manager = StreamableHTTPSessionManager(
        app=server._lowlevel_server,
        json_response=True,
        stateless=True,
        security_settings=_security(state.settings.host),
        max_request_body_size=state.settings.max_body_bytes,
    )
    async with manager.run():
        state.extras[EXTRA] = manager
        try:
            yield
        finally:
            state.extras.pop(EXTRA, None)


async def _send_error(send: Send, status: int, code: str, message: str) -> None:
    import json

    body = json.dumps(error_body(code, message)).encode()
    start: Any = {
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json")],
    }
    await send(start)
    end: Any = {"type": "http.response.body", "body": body}
    await send(end)


@asgi(MCP_PATH, is_mount=True, copy_scope=False, opt={"mcp": True})
async def mcp_mount(scope: Scope, receive: Receive, send: Send) -> None:
    """The MCP endpoint (streamable HTTP): POST JSON-RPC messages, ``Authorization: Bearer``."""
    state: Any = scope["app"].state.tandem  # type: ignore[index]
    manager = state.extras.get(EXTRA)
    if not isinstance(manager, StreamableHTTPSessionManager):
        exc = ComponentUnavailable("the MCP server is not running")
        await _send_error(send, exc.status, exc.code, exc.message)
        return
    if tracing.enabled():  # the tools run in the manager's tasks: hand them this request's span
        scope.setdefault("state", {})["otel_context"] = tracing.current_context()
    await manager.handle_request(scope, receive, send)  # type: ignore[arg-type]
