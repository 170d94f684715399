"""The playground: a static page at ``/`` and ``/playground`` that talks to the public API.

The page and its assets (``app/static/playground/``, packaged with ``app``) are public: they
hold no data. Everything the page shows comes from the same ``/v1`` routes any client calls,
with the API key the user types in (kept in the tab's ``sessionStorage``), so this module
adds no route that reads an index without a key. Responses carry a strict Content Security
Policy: scripts, styles and requests from this origin only, nothing inline, no framing.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path, PurePath

from litestar import Controller, get, head
from litestar.datastructures import CacheControlHeader
from litestar.file_system import BaseLocalFileSystem
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


def static_dir() -> Path:
    """The folder of the page's files inside the installed ``app`` package."""
    return Path(str(resources.files("app") / "static" / "playground"))


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
