"""The playground: a static page at ``/`` and ``/playground`` that talks to the public API.

The page and its assets (``app/static/playground/``, packaged with ``app``) are public: they
hold no data. Everything the page shows comes from the same ``/v1`` routes any client calls,
with the API key the user types in (kept in the tab's ``sessionStorage``), so this module
adds no route that reads an index without a key. Responses carry a strict Content Security
Policy: scripts, styles and requests from this origin only, nothing inline, no framing.

The schema page (``/schema``) is Redoc served from this package too (``app/static/schema/``,
vendored from the npm package ``redoc``; no CDN, no web fonts): :class:`OfflineRedoc` renders
a shell that holds no data (public, like the playground) and fetches ``/schema/openapi.json``
with the playground's key, or one typed into the page; ``openapi.json`` and ``openapi.yaml``
need a key unless ``TANDEM_PUBLIC_SCHEMA=1``. :func:`schema_router` mounts both.
"""

from __future__ import annotations

import html
from functools import cache
from importlib import resources
from pathlib import Path, PurePath
from typing import Any

from litestar import Controller, Request, Router, get, head
from litestar.datastructures import CacheControlHeader, ResponseHeader
from litestar.file_system import BaseLocalFileSystem
from litestar.openapi.plugins import JsonRenderPlugin, RedocRenderPlugin, YamlRenderPlugin
from litestar.response import Response
from litestar.response.file import ASGIFileResponse
from litestar.static_files.base import StaticFiles

from app.security import PUBLIC_OPT

#: Where the page's assets are served from (``index.html`` links them under this prefix).
STATIC_PREFIX = "/playground/static"
#: The page and its assets are always revalidated (a new release is seen at once).
NO_CACHE = CacheControlHeader(no_cache=True)

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


#: Where the schema pages live, and the paths that are public whatever TANDEM_PUBLIC_SCHEMA says
#: (the Redoc shell and its assets: no data in them).
SCHEMA_PATH = "/schema"
SCHEMA_STATIC = SCHEMA_PATH + "/static"
SCHEMA_SHELL_PATHS = frozenset({SCHEMA_PATH, SCHEMA_PATH + "/", SCHEMA_PATH + "/redoc"})

#: Redoc's styled-components inject <style> elements and its search runs in a blob: worker;
#: scripts and requests stay on this origin.
SCHEMA_SECURITY_HEADERS = {
    **SECURITY_HEADERS,
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "connect-src 'self'; img-src 'self' data:; font-src 'self' data:; worker-src blob:; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
}


def static_dir(name: str = "playground") -> Path:
    """The folder of a page's files inside the installed ``app`` package."""
    return Path(str(resources.files("app") / "static" / name))


def is_public_schema_path(path: str) -> bool:
    """The Redoc shell and its assets: public even when the OpenAPI document needs a key."""
    return path in SCHEMA_SHELL_PATHS or path.startswith(SCHEMA_STATIC + "/")


class OfflineRedoc(RedocRenderPlugin):
    """Redoc from ``app/static/schema`` (works offline); the shell loads the document itself."""

    def __init__(self) -> None:
        super().__init__(
            path=["/", "/redoc"],
            js_url=f"{SCHEMA_STATIC}/redoc.standalone.js",
            google_fonts=False,
            favicon="<link rel='icon' href='data:,'>",
        )

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        title = html.escape(str(openapi_schema.get("info", {}).get("title", "API")))
        return f"""<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{title} API</title>
  {self.favicon}
  <link rel="stylesheet" href="{SCHEMA_STATIC}/schema.css">
  <script src="{self.js_url}" defer></script>
  <script src="{SCHEMA_STATIC}/schema.js" defer></script>
</head>
<body>
  <div class="schema-bar">
    <a href="/playground">Playground</a>
    <a href="{SCHEMA_PATH}/openapi.json">openapi.json</a>
    <form id="schema-key" hidden>
      <label for="schema-key-input">API key</label>
      <input id="schema-key-input" name="key" type="password" autocomplete="off" required>
      <button type="submit">Show</button>
    </form>
    <p id="schema-note" role="status" hidden></p>
  </div>
  <div id="redoc-container" data-spec="{SCHEMA_PATH}/openapi.json"></div>
</body>
</html>
""".encode()

    def receive_router(self, router: Router) -> None:
        router.register(schema_asset)


@cache
def _schema_assets() -> StaticFiles:
    return StaticFiles(
        is_html_mode=False,
        directories=[static_dir("schema")],
        file_system=BaseLocalFileSystem(),
        headers={NO_CACHE.HEADER_NAME: NO_CACHE.to_header()},
        resolve_symlinks=True,
    )


@get(
    "/static/{file_path:path}",
    name="schema-static",
    opt={PUBLIC_OPT: True},
    include_in_schema=False,
)
async def schema_asset(file_path: PurePath) -> ASGIFileResponse:
    """One file of the schema page (Redoc, its licence, the shell's script and style sheet)."""
    return await _schema_assets().handle(path=file_path.as_posix(), is_head_response=False)


def schema_router() -> Router:
    """The router of ``/schema`` (render plugins add their routes to it): security headers on
    every response, nothing of it in the OpenAPI document."""
    return Router(
        SCHEMA_PATH,
        route_handlers=[],
        include_in_schema=False,
        response_headers=[
            ResponseHeader(name=k, value=v) for k, v in SCHEMA_SECURITY_HEADERS.items()
        ],
    )


def schema_plugins() -> list[Any]:
    """Redoc (offline) at ``/schema``, the document at ``/schema/openapi.json`` and ``.yaml``."""
    return [OfflineRedoc(), JsonRenderPlugin(), YamlRenderPlugin()]


@cache
def _page() -> bytes:
    return (static_dir() / "index.html").read_bytes()


@cache
def _assets() -> StaticFiles:
    """Litestar's static-file server over :func:`static_dir` (a path out of it is a 404)."""
    return StaticFiles(
        is_html_mode=False,
        directories=[static_dir()],
        file_system=BaseLocalFileSystem(),
        headers={NO_CACHE.HEADER_NAME: NO_CACHE.to_header()},
        resolve_symlinks=True,
    )


class PlaygroundController(Controller):
    """The page and its static assets, both public and left out of the OpenAPI document."""

    path = "/"
    opt = {PUBLIC_OPT: True}  # noqa: RUF012 - Litestar reads it per class
    include_in_schema = False
    cache_control = NO_CACHE

    @get(["/", "/playground"], sync_to_thread=False)
    def playground_page(self) -> Response[bytes]:
        """The playground page (static HTML; its data comes from the API with the user's key)."""
        return Response(_page(), media_type="text/html", headers=SECURITY_HEADERS)

    @get(STATIC_PREFIX + "/{file_path:path}", name="playground-static")
    async def asset(self, file_path: PurePath) -> ASGIFileResponse:
        """One file of the page (script, style sheet, image)."""
        return await _assets().handle(path=file_path.as_posix(), is_head_response=False)

    @head(STATIC_PREFIX + "/{file_path:path}", name="playground-static/head")
    async def asset_head(self, file_path: PurePath) -> ASGIFileResponse:
        """The headers of one file."""
        return await _assets().handle(path=file_path.as_posix(), is_head_response=True)
