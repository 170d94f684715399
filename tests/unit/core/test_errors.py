"""core.errors: the one error hierarchy, its codes, HTTP statuses and CLI exit codes."""

from __future__ import annotations

import pytest

from core.errors import (
    MissingDependency,
    ModelNotFound,
    NotConfigured,
    TandemError,
    UsageError,
)


def _subclasses(cls: type[TandemError]) -> list[type[TandemError]]:
    out = []
    for sub in cls.__subclasses__():
        out += [sub, *_subclasses(sub)]
    return out


def test_the_root_is_an_internal_error_that_keeps_its_message() -> None:
    exc = TandemError("something broke")
    assert isinstance(exc, Exception)
    assert (exc.code, exc.status, exc.exit_code) == ("error", 500, 1)
    assert exc.message == "something broke" and str(exc) == "something broke"


@pytest.mark.parametrize(
    ("cls", "code", "status", "exit_code"),
    [
        (UsageError, "bad_request", 400, 2),
        (ModelNotFound, "model_not_found", 503, 1),
        (NotConfigured, "not_configured", 409, 1),  # a configuration question, not an outage
        (MissingDependency, "missing_dependency", 503, 1),
    ],
)
def test_core_errors_carry_code_status_and_exit_code(
    cls: type[TandemError], code: str, status: int, exit_code: int
) -> None:
    exc = cls("why")
    assert isinstance(exc, TandemError)
    assert (exc.code, exc.status, exc.exit_code, exc.message) == (code, status, exit_code, "why")
    with pytest.raises(TandemError, match="why"):
        raise exc


def test_the_lower_layers_errors_share_the_root_with_distinct_codes() -> None:
    import retrievers.errors
    import stores.errors
    import training.checker
    import training.squad

    assert issubclass(stores.errors.IndexNotFound, TandemError)
    assert issubclass(retrievers.errors.RerankerUnavailable, TandemError)
    assert issubclass(training.squad.SquadDataError, UsageError)  # a bad file is a usage error
    assert issubclass(training.checker.CheckerDataError, UsageError)
    assert stores.errors.IndexNotFound.status == 404
    assert retrievers.errors.RerankerUnavailable.status == 409  # asked for, not configured
    errors = _subclasses(TandemError)
    codes = [cls.code for cls in errors]
    assert len(codes) == len(set(codes)), sorted(codes)
    for cls in errors:
        assert 400 <= cls.status < 600, cls
        assert cls.exit_code in (1, 2), cls
        # a usage error is the caller's fault: 400 over HTTP, exit 2 in the CLI
        if issubclass(cls, UsageError):
            assert (cls.status, cls.exit_code) == (400, 2), cls
