"""API keys, per-key rate limits and request bounds.

* ``TANDEM_API_KEYS="k1,k2:docs|faq"``: ``k1`` reads every index, ``k2`` only ``docs`` and
  ``faq``. Keys are sent as ``Authorization: Bearer <key>`` and required on every route but
  ``/health/*`` (and ``/schema`` when ``TANDEM_PUBLIC_SCHEMA=1``): 401 without a valid key, 403
  for an index the key may not read. Keys are compared by SHA-256 digest in constant time
  (:func:`hmac.compare_digest` against every configured key, so neither the time nor the
  dictionary layout tells how close a guess was) and logged only as a short ``key_id``. With
  no keys configured authentication is off, and ``tandem serve`` binds to loopback only unless
  ``TANDEM_ALLOW_OPEN=1``. The Redoc shell at ``/schema`` is public (it holds no data).
* Rate limits: a fixed window of ``TANDEM_RATE_LIMIT_REQUESTS`` per
  ``TANDEM_RATE_LIMIT_WINDOW_S`` per key (per client address without keys), counted in Redis
  when it is configured and up (shared by all workers), in the process otherwise; 429 with
  ``Retry-After``.
* Bounds on the query length and the filters (top_k and types are bounded by the schemas, the
  body size by Litestar's ``request_max_body_size``: 413).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import time
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from app.errors import Forbidden, InvalidRequest, RateLimited, Unauthorized
from core.errors import UsageError
from stores.layout import check_name

if TYPE_CHECKING:
    from litestar.connection import ASGIConnection
    from litestar.handlers import BaseRouteHandler

    from app.cache import Cache

PUBLIC_OPT = "public"


@dataclass(frozen=True)
class Principal:
    """Who is calling: a key (by id) and the indexes it may read (None: all)."""

    key_id: str
    indexes: frozenset[str] | None = None
    authenticated: bool = True

    def can_read(self, index: str) -> bool:
        return self.indexes is None or index in self.indexes


def key_id(key: str) -> str:
    return "key_" + hashlib.sha256(key.encode()).hexdigest()[:12]


def parse_api_keys(raw: str | None) -> dict[str, frozenset[str] | None]:
    """``"k1,k2:a|b"`` -> ``{"k1": None, "k2": frozenset({"a", "b"})}``."""
    keys: dict[str, frozenset[str] | None] = {}
    for entry in (raw or "").split(","):
        entry = entry.strip()
        if not entry:
            continue
        key, sep, scope = entry.partition(":")
        key = key.strip()
        if not key or any(c.isspace() for c in key):
            raise UsageError("TANDEM_API_KEYS: empty key or key with spaces")
        if sep:
            names = [n.strip() for n in scope.split("|") if n.strip()]
            if not names:
                raise UsageError(f"TANDEM_API_KEYS: key {key_id(key)} lists no index after ':'")
            keys[key] = frozenset(check_name(n) for n in names)
        else:
            keys[key] = None
    return keys


class KeyRing:
    """The configured API keys, looked up by digest."""

    def __init__(self, keys: Mapping[str, frozenset[str] | None]) -> None:
        self._by_digest = [
            (hashlib.sha256(k.encode()).digest(), Principal(key_id(k), scope))
            for k, scope in keys.items()
        ]

    @classmethod
    def from_setting(cls, raw: str | None) -> KeyRing:
        return cls(parse_api_keys(raw))

    @property
    def enabled(self) -> bool:
        return bool(self._by_digest)

    def __len__(self) -> int:
        return len(self._by_digest)

    def authenticate(self, token: str | None) -> Principal | None:
        if not token:
            return None
        digest = hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
        found = None
        for known, principal in self._by_digest:  # every key, in constant time each
            if hmac.compare_digest(known, digest) and found is None:
                found = principal
        return found


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class RateLimiter:
    """Fixed-window request counts per identity, in Redis when possible."""

    def __init__(
        self,
        requests: int,
        window_s: int,
        cache: Cache | None = None,
        prefix: str = "tandem",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.requests = requests
        self.window_s = window_s
        self.cache = cache
        self.prefix = prefix
        self.clock = clock
        self._local: dict[str, tuple[int, int]] = {}

    @property
    def enabled(self) -> bool:
        return self.requests > 0

    async def check(self, identity: str) -> None:
        """Count one request of ``identity``; :class:`RateLimited` past the limit."""
        if not self.enabled:
            return
        now = self.clock()
        window = int(now // self.window_s)
        count = None
        incr = getattr(self.cache, "incr_window", None)
        if incr is not None:
            count = await incr(f"{self.prefix}:rl:{identity}:{window}", self.window_s)
        if count is None:
            count = self._count_locally(identity, window)
        if count > self.requests:
            retry_after = math.ceil((window + 1) * self.window_s - now)
            raise RateLimited(
                f"rate limit of {self.requests} requests per {self.window_s}s exceeded",
                retry_after=retry_after,
            )

    def _count_locally(self, identity: str, window: int) -> int:
        last_window, count = self._local.get(identity, (window, 0))
        count = count + 1 if last_window == window else 1
        self._local[identity] = (window, count)
        if len(self._local) > 100_000:
            self._local = {k: v for k, v in self._local.items() if v[0] == window}
        return count


# -- Litestar wiring ---------------------------------------------------------------------------
def principal_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    principal = connection.scope.get("state", {}).get("principal")
    if isinstance(principal, Principal):
        return principal
    return Principal("anonymous", None, authenticated=False)


async def api_key_guard(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """App-level guard: authenticate (unless the route is public), then rate-limit."""
    if handler.opt.get(PUBLIC_OPT):
        return
    from app.controllers.playground import SCHEMA_PATH, is_public_schema_path

    tandem = connection.app.state.tandem
    path = connection.scope["path"]
    if is_public_schema_path(path):  # the Redoc shell: no data in it
        return
    if tandem.settings.public_schema and (
        path == SCHEMA_PATH or path.startswith(SCHEMA_PATH + "/")
    ):
        return
    state = connection.scope.setdefault("state", {})
    if tandem.keyring.enabled:
        principal = tandem.keyring.authenticate(
            bearer_token(connection.headers.get("authorization"))
        )
        if principal is None:
            raise Unauthorized("a valid API key is required: send 'Authorization: Bearer <key>'")
    else:
        client = connection.client.host if connection.client else "unknown"
        principal = Principal(f"anon:{client}", None, authenticated=False)
    state["principal"] = principal
    state["key_id"] = principal.key_id
    await tandem.rate_limiter.check(principal.key_id)


def require_index_access(connection: ASGIConnection[Any, Any, Any, Any], name: str) -> None:
    """403 unless the caller's key may read index ``name`` (checked before its existence)."""
    if not principal_of(connection).can_read(name):
        raise Forbidden(f"this API key may not read index {name!r}")


def readable(connection: ASGIConnection[Any, Any, Any, Any], names: list[str]) -> list[str]:
    principal = principal_of(connection)
    return [n for n in names if principal.can_read(n)]


# -- bounds ------------------------------------------------------------------------------------
#: Characters that render as nothing although Unicode calls them letters or symbols (Hangul
#: fillers, the braille blank); format (Cf: zero-width space/joiners, BOM, bidi marks) and other
#: control-like categories are found by category.
_INVISIBLE = frozenset("\u115f\u1160\u3164\uffa0\u2800")
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp"})


def is_blank(text: str) -> bool:
    """True when ``text`` is empty after removing whitespace and invisible characters.

    One rule for the API (422) and the CLI (exit 2), for queries and questions alike.
    """
    return all(
        ch.isspace() or ch in _INVISIBLE or unicodedata.category(ch) in _INVISIBLE_CATEGORIES
        for ch in text
    )


def normalise_query(query: str, max_chars: int, what: str = "query") -> str:
    """Whitespace collapsed; 422 when blank (see :func:`is_blank`) or longer than ``max_chars``."""
    text = " ".join(query.split())
    if is_blank(text):
        raise InvalidRequest(f"{what}: must contain some visible text")
    if len(text) > max_chars:
        raise InvalidRequest(f"{what}: longer than {max_chars} characters")
    return text


def check_filters(filters: Mapping[str, Any] | None, max_fields: int) -> None:
    if filters and len(filters) > max_fields:
        raise InvalidRequest(f"filters: at most {max_fields} fields")
