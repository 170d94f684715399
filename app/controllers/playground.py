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
from pathlib import Path
from typing import Any

from litestar import get
from litestar.datastructures import CacheControlHeader
from litestar.response import Response
from litestar.static_files import create_static_files_router

from app.security import PUBLIC_OPT

#: Where the page's assets are served from (``index.html`` links them under this prefix).
STATIC_PREFIX = "/playground/static"

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


@get(
    ["/", "/playground"],
    opt={PUBLIC_OPT: True},
    include_in_schema=False,
    sync_to_thread=False,
    cache_control=CacheControlHeader(no_cache=True),
)
def playground_page() -> Response[bytes]:
    """The playground page (static HTML; its data comes from the API with the user's key)."""
    return Response(_page(), media_type="text/html", headers=SECURITY_HEADERS)


def controllers() -> list[Any]:
    """The page and its static assets, both public."""
    assets = create_static_files_router(
        path=STATIC_PREFIX,
        directories=[static_dir()],
        name="playground-static",
        opt={PUBLIC_OPT: True},
        include_in_schema=False,
        cache_control=CacheControlHeader(no_cache=True),
    )
    return [playground_page, assets]
