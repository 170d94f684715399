"""Hand the application's settings down to the lower layers.

Only ``app/`` reads ``TANDEM_*`` (through :class:`app.settings.Settings`); the layers below take
every value as an argument. Values that are the same for every model of a process (the ONNX
export folder and threads, the default embedder backend and checker) are set once here, in
:mod:`smallmodels.runtime`; the store options travel with each call
(:meth:`Settings.store_options`, :meth:`Settings.build_store_options`).

Called by every entry point that builds lower-layer objects: the CLI root callback, the HTTP
service (:meth:`app.state.ServiceState.create`) and the job worker
(:func:`app.jobs.worker.build_worker`).
"""

from __future__ import annotations

from app.settings import Settings


def configure_lower_layers(settings: Settings) -> None:
    """Apply ``settings`` to the process-wide configuration of the lower layers."""
    from smallmodels import runtime

    runtime.configure(
        onnx_cache=settings.onnx_cache,
        onnx_threads=settings.onnx_threads,
        embedder_backend=settings.embedder_backend,
        checker=settings.checker,
    )
