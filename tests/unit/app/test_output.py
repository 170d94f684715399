"""``app.output``: when progress bars show."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from app.output import STATE, show_progress


@pytest.fixture
def json_off() -> Iterator[None]:
    saved = STATE.json
    STATE.json = False
    yield
    STATE.json = saved


def test_progress_follows_the_flag_and_never_shows_under_json(json_off: None) -> None:
    assert show_progress(True) is True
    assert show_progress(False) is False
    assert show_progress() is False  # pytest captures stdout: not a terminal
    STATE.json = True
    assert show_progress(True) is False
    assert show_progress() is False
