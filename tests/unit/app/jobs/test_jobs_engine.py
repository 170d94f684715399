"""Jobs' ``options.engine`` / ``options.ray_address`` (issue 18): a job may name only a Ray
cluster the server is configured for."""

from __future__ import annotations

import msgspec
import pytest

from app.jobs.errors import RayAddressForbidden
from app.jobs.models import JobOptions, JobSpec
from app.jobs.runner import ray_options
from app.settings import Settings


def _spec(**options: object) -> JobSpec:
    opts = msgspec.convert(options, JobOptions)
    return JobSpec("j1", "idx", "build", ["docs"], options=opts.as_dict())


def test_engine_defaults_to_local_and_refuses_unknown_engines() -> None:
    assert _spec().options["engine"] == "local"
    with pytest.raises(msgspec.ValidationError):
        _spec(engine="spark")


def test_a_job_names_only_configured_ray_clusters() -> None:
    settings = Settings(ray_address="ray://head:10001", ray_addresses=["ray://other:10001"])
    assert ray_options(_spec(engine="ray"), settings).address == "ray://head:10001"
    picked = ray_options(
        _spec(engine="ray", ray_address="ray://other:10001", ray_workers=3), settings
    )
    assert (picked.address, picked.workers) == ("ray://other:10001", 3)
    with pytest.raises(RayAddressForbidden):
        ray_options(_spec(engine="ray", ray_address="ray://evil:10001"), settings)
    assert ray_options(_spec(engine="ray"), Settings()).address is None  # a local instance
