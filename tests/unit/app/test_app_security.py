"""API keys, rate limits and bind checks."""

from __future__ import annotations

import pytest

from app.cli.serve import check_bind
from app.errors import InvalidRequest, RateLimited
from app.security import (
    KeyRing,
    RateLimiter,
    bearer_token,
    check_filters,
    is_loopback,
    key_id,
    normalise_query,
    parse_api_keys,
)
from core.errors import UsageError
from stores.errors import InvalidIndexName


def test_parse_api_keys_with_scopes():
    keys = parse_api_keys(" k1 , k2:docs|faq ,, k3:one ")
    assert keys == {"k1": None, "k2": frozenset({"docs", "faq"}), "k3": frozenset({"one"})}
    assert parse_api_keys("") == {} and parse_api_keys(None) == {}


@pytest.mark.parametrize("raw", ["k1:", ":docs", "a b"])
def test_malformed_keys_are_usage_errors(raw: str):
    with pytest.raises(UsageError):
        parse_api_keys(raw)


def test_bad_index_name_in_a_key_scope():
    with pytest.raises(InvalidIndexName):
        parse_api_keys("k1:../etc")


def test_keyring_authenticates_by_digest_and_scopes():
    ring = KeyRing.from_setting("alpha,beta:docs")
    assert ring.enabled and len(ring) == 2
    alpha = ring.authenticate("alpha")
    beta = ring.authenticate("beta")
    assert alpha is not None and beta is not None
    assert alpha.can_read("anything") and beta.can_read("docs") and not beta.can_read("faq")
    assert alpha.key_id == key_id("alpha") and "alpha" not in alpha.key_id
    assert ring.authenticate("gamma") is None and ring.authenticate(None) is None
    assert not KeyRing.from_setting("").enabled


def test_bearer_token():
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("bearer   abc ") == "abc"
    assert bearer_token("Basic abc") is None
    assert bearer_token("Bearer ") is None
    assert bearer_token(None) is None


@pytest.mark.parametrize(
    ("host", "loop"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("localhost", True),
        ("127.3.2.1", True),
        ("0.0.0.0", False),
        ("10.0.0.5", False),
        ("example.com", False),
    ],
)
def test_is_loopback(host: str, loop: bool):
    assert is_loopback(host) is loop


def test_serve_refuses_open_binds_without_keys():
    assert check_bind("127.0.0.1", keys_configured=False, allow_open=False) is None
    reason = check_bind("0.0.0.0", keys_configured=False, allow_open=False)
    assert reason is not None and "TANDEM_API_KEYS" in reason
    assert check_bind("0.0.0.0", keys_configured=True, allow_open=False) is None
    assert check_bind("0.0.0.0", keys_configured=False, allow_open=True) is None


async def test_rate_limiter_fixed_window_in_process():
    now = [1000.0]
    limiter = RateLimiter(2, 10, clock=lambda: now[0])
    await limiter.check("a")
    await limiter.check("a")
    await limiter.check("b")
    with pytest.raises(RateLimited) as info:
        await limiter.check("a")
    assert info.value.retry_after == 10 and info.value.status == 429
    now[0] = 1009.5
    with pytest.raises(RateLimited) as info:
        await limiter.check("a")
    assert info.value.retry_after == 1
    now[0] = 1010.0  # next window
    await limiter.check("a")


async def test_rate_limiter_off():
    limiter = RateLimiter(0, 60)
    for _ in range(100):
        await limiter.check("a")


def test_query_and_filter_bounds():
    assert normalise_query("  a \n b\t", 10) == "a b"
    with pytest.raises(InvalidRequest):
        normalise_query(" \n ", 10)
    with pytest.raises(InvalidRequest):
        normalise_query("x" * 11, 10)
    check_filters({"a": 1, "b": 2}, 2)
    with pytest.raises(InvalidRequest):
        check_filters({"a": 1, "b": 2, "c": 3}, 2)
