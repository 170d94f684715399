"""Run llama.cpp in a child process of its own, and keep it running.

Native code that crashes (an instruction the CPU or the kernel refuses: ``SIGILL``; a bad
pointer: ``SIGSEGV``), hangs or runs out of memory must end a child, not the API. So the
in-process model of ``TANDEM_LLM_GGUF`` is served by llama-cpp-python's own OpenAI-compatible
server (``python -m llama_cpp.server``, the ``[server]`` extra) on ``127.0.0.1`` and a free
port, and Tandem talks to it over HTTP like any other OpenAI-compatible LLM.

:class:`LlamaServerSupervisor` owns that child:

* **start**: write the server's config file, start the child, wait until ``/v1/models``
  answers and a one-token completion comes back (the model is loaded *and* its CPU kernels
  run: a wheel built for another CPU dies here, at start, not on the first question);
* **watch**: a thread waits on the child; when it dies the state becomes ``restarting``,
  ``on_exit`` is called (the answer service opens its circuit breaker) and the child is
  started again after a pause that doubles with each failed start (``backoff_s`` up to
  ``max_backoff_s``; back to ``backoff_s`` once a child has lived ``stable_after_s``);
  ``on_ready`` is called when it answers again;
* **hang**: ``hang_timeouts`` generations in a row that time out kill the child (it is then
  restarted): a native hang cannot be seen from outside otherwise, since llama_cpp.server
  serialises its requests and every route waits behind the one that hangs;
* **stop**: close the child's stdin (it exits at once), then SIGKILL after a grace period.
  The child also exits on its own when its stdin closes, so it never outlives the API, even
  one killed with SIGKILL.

The child prints llama.cpp's system info (``verbose``); :attr:`cpu_features` keeps the CPU
features of the build (e.g. ``AVX AVX2 F16C FMA BMI2``) for readiness, and :attr:`chat` says
whether the GGUF has a chat template (a base model is prompted in completion style).

Speculative decoding (issue 16): ``ChildOptions.prompt_lookup`` makes the child decode greedy
requests with Tandem's prompt-lookup decoding (:mod:`app.generators.prompt_lookup`, installed
by ``CHILD_BOOT`` before llama_cpp.server starts: ``--tandem-prompt-lookup CONFIG``), which
needs no ``logits_all``. ``ChildOptions.model_options`` passes any other field of
llama_cpp.server's ``ModelSettings`` as is (llama-cpp-python's own ``draft_model`` too).
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import dataclasses
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

import httpx

from app.generators.base import GeneratorUnavailable
from app.generators.prompt_lookup import LookupConfig

log = logging.getLogger("tandem.llm")

ChildState = Literal["starting", "ready", "restarting", "failed", "stopped"]

#: The child's entry point: ``python -m llama_cpp.server`` plus a watchdog that ends the child
#: when its stdin closes (the parent exited or was killed), and, given
#: ``--tandem-prompt-lookup CONFIG`` (JSON of :class:`LookupConfig`) first, Tandem's
#: prompt-lookup decoding installed into llama_cpp before the server starts.
CHILD_BOOT = (
    "import json, os, runpy, sys, threading\n"
    "def _watch():\n"
    "    try:\n"
    "        sys.stdin.buffer.read()\n"
    "    finally:\n"
    "        os._exit(0)\n"
    "threading.Thread(target=_watch, name='tandem-parent-watch', daemon=True).start()\n"
    "args = sys.argv[1:]\n"
    "if args[:1] == ['--tandem-prompt-lookup']:\n"
    "    from app.generators import prompt_lookup\n"
    "    prompt_lookup.install(prompt_lookup.LookupConfig(**json.loads(args[1])))\n"
    "    args = args[2:]\n"
    "sys.argv = ['llama_cpp.server', *args]\n"
    "runpy.run_module('llama_cpp.server', run_name='__main__', alter_sys=True)\n"
)

#: Modules the child needs (llama-cpp-python and its ``[server]`` extra); checked without
#: importing them, so that no native code is ever loaded into the API process.
CHILD_MODULES = ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "starlette_context")

#: A feature flag in llama.cpp's system info, e.g. ``AVX2 = 1``.
_FEATURE = re.compile(r"([A-Z][A-Z0-9_]*) = 1\b")
_HINTS = {
    signal.SIGILL: "an instruction this CPU or kernel does not allow: the llama-cpp-python "
    "wheel was built for another CPU (rebuild it portably: make install-llama)",
    signal.SIGKILL: "out of memory, a hang, or by hand",
    signal.SIGSEGV: "crashed in native code",
    signal.SIGBUS: "crashed in native code",
    signal.SIGABRT: "aborted by native code",
}


@dataclass(frozen=True)
class ChildOptions:
    """What the child serves: the model and llama.cpp's options."""

    gguf: Path
    context_tokens: int = 4096
    threads: int = 0
    """CPU threads (0: every CPU this process may use)."""
    gpu_layers: int = 0
    chat_format: str | None = None
    alias: str = "tandem-llama"
    model_options: Mapping[str, Any] = field(default_factory=dict)
    """More fields of llama_cpp.server's ``ModelSettings``."""
    prompt_lookup: LookupConfig | None = None
    """Tandem's prompt-lookup decoding of greedy requests (issue 16); None: plain decoding."""

    def boot_args(self) -> list[str]:
        """The child's arguments before ``--config_file`` (read by :data:`CHILD_BOOT`)."""
        if self.prompt_lookup is None:
            return []
        return ["--tandem-prompt-lookup", json.dumps(dataclasses.asdict(self.prompt_lookup))]

    def server_config(self, port: int) -> dict[str, Any]:
        """llama_cpp.server's config file (``--config_file``) for this child on ``port``."""
        threads = self.threads or _cpus()
        model: dict[str, Any] = {
            "model": str(self.gguf),
            "model_alias": self.alias,
            "n_ctx": self.context_tokens,
            "n_threads": threads,
            "n_threads_batch": threads,
            "n_gpu_layers": self.gpu_layers,
            "verbose": True,  # prints the system info and the chat format that readiness shows
            # llama_cpp.server's default (True) computes the output layer for every prompt
            # token and copies each row into an n_ctx x n_vocab float32 array (4 GiB for Gemma
            # 3 at 4,096 tokens): seconds per prompt, for logprobs that Tandem never asks for.
            "logits_all": False,
        }
        if self.chat_format:
            model["chat_format"] = self.chat_format
        model.update(self.model_options)
        return {
            "host": "127.0.0.1",
            "port": port,
            # Queue concurrent requests; the default aborts the running one for the newcomer.
            "interrupt_requests": False,
            "models": [model],
        }


def _cpus() -> int:
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def child_modules_missing() -> list[str]:
    """The child's modules that are not installed (none imported here)."""
    import importlib.util

    return [m for m in CHILD_MODULES if importlib.util.find_spec(m) is None]


def free_port(preferred: int | None = None) -> int:
    """``preferred`` when it can be bound on 127.0.0.1, else a free port."""
    for port in ([preferred] if preferred else []) + [0]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds it
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise OSError("no free port on 127.0.0.1")


def describe_exit(returncode: int) -> str:
    """``exit code 1`` or ``killed by SIGILL (why)``."""
    if returncode >= 0:
        return f"exit code {returncode}"
    try:
        sig = signal.Signals(-returncode)
    except ValueError:
        return f"killed by signal {-returncode}"
    hint = _HINTS.get(sig)
    return f"killed by {sig.name}" + (f" ({hint})" if hint else "")


class LlamaServerSupervisor:
    """Start, health-check, restart and stop one ``llama_cpp.server`` child (module docstring)."""

    def __init__(
        self,
        options: ChildOptions,
        *,
        python: str = sys.executable,
        start_timeout_s: float = 120.0,
        backoff_s: float = 1.0,
        max_backoff_s: float = 60.0,
        stable_after_s: float = 60.0,
        hang_timeouts: int = 3,
        on_exit: Callable[[str], None] | None = None,
        on_ready: Callable[[], None] | None = None,
    ) -> None:
        self.options = options
        self.python = python
        self.start_timeout_s = start_timeout_s
        self.backoff_s = max(0.01, backoff_s)
        self.max_backoff_s = max(self.backoff_s, max_backoff_s)
        self.stable_after_s = stable_after_s
        self.hang_timeouts = max(0, hang_timeouts)
        self.on_exit = on_exit
        self.on_ready = on_ready
        self.state: ChildState = "stopped"
        self.port: int | None = None
        self.restarts = 0
        """Children started after the first one."""
        self.last_exit: str | None = None
        self.next_start_at: float | None = None
        self.cpu_features: list[str] = []
        self.chat: bool | None = None
        self.prompt_lookup = False
        """Whether the child said it installed prompt-lookup decoding."""
        self._proc: subprocess.Popen[bytes] | None = None
        self._ready_at = 0.0
        self._tail: collections.deque[str] = collections.deque(maxlen=80)
        self._timeouts = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._watcher: threading.Thread | None = None
        self._tmp = tempfile.TemporaryDirectory(prefix="tandem-llama-")
        _LIVE.add(self)

    # -- what readiness shows -------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    @property
    def ready(self) -> bool:
        proc = self._proc
        return self.state == "ready" and proc is not None and proc.poll() is None

    def cpu_detail(self) -> str:
        """The build's CPU features, e.g. ``CPU AVX AVX2 F16C FMA BMI2 (no AVX-512, no AMX)``."""
        if not self.cpu_features:
            return "CPU features unknown"
        feats = self.cpu_features
        missing = [
            name
            for name, prefix in (("AVX-512", "AVX512"), ("AMX", "AMX"))
            if not any(f.startswith(prefix) for f in feats)
        ]
        return "CPU " + " ".join(feats) + (f" (no {', no '.join(missing)})" if missing else "")

    def status(self) -> tuple[Literal["ok", "down"], str]:
        """``ok`` with the child's pid, or ``down`` with why and when it starts again."""
        if self.ready:
            return "ok", f"child pid {self.pid} on 127.0.0.1:{self.port}, {self.cpu_detail()}"
        why = f"last exit: {self.last_exit}" if self.last_exit else "not started"
        if self.state == "restarting":
            when = ""
            if self.next_start_at is not None:
                when = f" in {max(0.0, self.next_start_at - time.monotonic()):.1f}s"
            return "down", f"LLM child restarting{when} (restart {self.restarts + 1}; {why})"
        return "down", f"LLM child {self.state} ({why})"

    def tail(self, lines: int = 5) -> str:
        """The child's last output lines (for errors)."""
        return " | ".join(list(self._tail)[-lines:])

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the child and wait until it answers (blocking); then watch it.

        Raises :class:`GeneratorUnavailable` (with the child's exit and last output) when the
        first child does not come up: the model is then reported as failed, never retried.
        """
        missing = child_modules_missing()
        if missing:
            raise GeneratorUnavailable(
                "llama-cpp-python[server] is not installed (missing "
                f"{', '.join(missing)}): pip install 'tandem[llama]' (or `make install-llama`)"
            )
        self.state = "starting"
        error = self._start_child()
        if error is not None:
            self.state = "failed"
            self.last_exit = error
            raise GeneratorUnavailable(f"llama.cpp child did not start: {error}")
        self._watcher = threading.Thread(target=self._watch, name="tandem-llm-watch", daemon=True)
        self._watcher.start()

    def stop(self, grace_s: float = 5.0) -> None:
        """Stop the child (idempotent, blocking up to ``grace_s`` plus a kill)."""
        self._stop.set()
        with self._lock:
            proc = self._proc
        if proc is not None:
            _end(proc, grace_s)
        watcher = self._watcher
        if watcher is not None and watcher is not threading.current_thread():
            watcher.join(timeout=grace_s + 5)
        self.state = "stopped"
        self._tmp.cleanup()
        _LIVE.discard(self)

    def kill(self) -> None:
        """SIGKILL the child now (a hang); the watcher restarts it."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()

    def note_success(self) -> None:
        self._timeouts = 0

    def note_timeout(self) -> None:
        """A generation timed out; ``hang_timeouts`` in a row kill the child."""
        self._timeouts += 1
        if self.hang_timeouts and self._timeouts >= self.hang_timeouts and self.ready:
            log.error(
                "LLM child pid %s: %d generations in a row timed out: killing it (hang)",
                self.pid,
                self._timeouts,
            )
            self._timeouts = 0
            self.kill()

    # -- internals ------------------------------------------------------------------------------
    def _spawn(self) -> subprocess.Popen[bytes]:
        self.port = free_port(self.port)
        config = Path(self._tmp.name) / "server.json"
        config.write_text(json.dumps(self.options.server_config(self.port)))
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        # llama_cpp.server prefers these to its config file (CONFIG_FILE, uvicorn's HOST/PORT).
        for name in ("CONFIG_FILE", "HOST", "PORT", "API_KEY"):
            env.pop(name, None)
        args = [*self.options.boot_args(), "--config_file", str(config)]
        proc = subprocess.Popen(
            [self.python, "-c", CHILD_BOOT, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # a Ctrl-C of the CLI reaches the API, which stops the child
        )
        assert proc.stdout is not None
        threading.Thread(
            target=self._read, args=(proc.stdout,), name="tandem-llm-output", daemon=True
        ).start()
        log.info("LLM child pid %d starting on 127.0.0.1:%d", proc.pid, self.port)
        return proc

    def _read(self, stream: IO[bytes]) -> None:
        """Keep the child's last lines; learn its CPU features and chat format."""
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip()
            if not line:
                continue
            self._tail.append(line[:500])
            if "AVX" in line or "SSE3 = " in line or "NEON = " in line:
                feats = _FEATURE.findall(line)
                if feats:
                    self.cpu_features = feats
            elif line.startswith(("Using gguf chat template", "Guessed chat format")):
                self.chat = True
            elif line.startswith("Using fallback chat format"):
                self.chat = False
            elif line.startswith("tandem: prompt-lookup decoding"):
                self.prompt_lookup = True
            log.debug("llm child: %s", line[:300])
        with contextlib.suppress(OSError):
            stream.close()

    def _start_child(self) -> str | None:
        """Start a child and wait until it serves: None, or why it did not."""
        with self._lock:
            if self._stop.is_set():
                return "stopped"
            self._tail.clear()
            proc = self._proc = self._spawn()
        error = self._await_ready(proc, time.monotonic() + self.start_timeout_s)
        if error is None:
            self._ready_at = time.monotonic()
            self._timeouts = 0
            self.state = "ready"
            self.next_start_at = None
            log.info("LLM child pid %d ready (%s)", proc.pid, self.cpu_detail())
            return None
        _end(proc, 2.0)
        time.sleep(0.05)  # let the reader take the last lines
        tail = self.tail(3)
        return error + (f"; last output: {tail}" if tail else "")

    def _await_ready(self, proc: subprocess.Popen[bytes], deadline: float) -> str | None:
        with httpx.Client(base_url=self.base_url, timeout=5.0) as client:
            while True:
                if self._stop.is_set():
                    return "stopped"
                if proc.poll() is not None:
                    return f"the child ended before serving: {describe_exit(proc.returncode)}"
                try:
                    if client.get("/models").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    return f"not serving after {self.start_timeout_s:g}s"
                time.sleep(0.1)
            # One token through the CPU kernels: where a wheel built for another CPU dies.
            try:
                r = client.post(
                    "/completions",
                    json={"prompt": "Hello", "max_tokens": 1, "temperature": 0.0},
                    timeout=max(1.0, deadline - time.monotonic()),
                )
            except httpx.HTTPError as exc:
                proc.poll()
                if proc.returncode is not None:
                    return f"the child died on its first token: {describe_exit(proc.returncode)}"
                return f"no first token: {type(exc).__name__}"
            if r.status_code != 200:
                return f"first token failed: HTTP {r.status_code} {r.text[:200]}"
        return None

    def _watch(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            proc = self._proc
            if proc is None:
                return
            proc.wait()
            if self._stop.is_set():
                return
            lived = time.monotonic() - self._ready_at
            self.last_exit = describe_exit(proc.returncode)
            tail = self.tail(2)
            log.error(
                "LLM child pid %d died after %.0fs: %s%s",
                proc.pid,
                lived,
                self.last_exit,
                f" (last output: {tail})" if tail else "",
            )
            self.state = "restarting"
            if lived >= self.stable_after_s:
                attempt = 0
            if self.on_exit is not None:
                with contextlib.suppress(Exception):
                    self.on_exit(self.last_exit)
            while not self._stop.is_set():
                pause = min(self.max_backoff_s, self.backoff_s * 2**attempt)
                attempt += 1
                self.next_start_at = time.monotonic() + pause
                if self._stop.wait(pause):
                    return
                self.restarts += 1
                error = self._start_child()
                if error is None:
                    if self.on_ready is not None:
                        with contextlib.suppress(Exception):
                            self.on_ready()
                    break
                self.last_exit = error
                log.error("LLM child restart %d failed: %s", self.restarts, error)


def _end(proc: subprocess.Popen[bytes], grace_s: float) -> None:
    """Close the child's stdin (its watchdog exits), then SIGKILL it if it lingers."""
    if proc.stdin is not None:
        with contextlib.suppress(OSError):
            proc.stdin.close()
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)


_LIVE: weakref.WeakSet[LlamaServerSupervisor] = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    for supervisor in list(_LIVE):
        with contextlib.suppress(Exception):
            supervisor.stop(grace_s=2.0)
