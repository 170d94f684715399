"""An OpenAI-compatible chat-completions client over httpx (streaming and not).

Works with anything that serves ``POST {base_url}/chat/completions``: llama.cpp's
``llama-server``, llama-cpp-python's ``python -m llama_cpp.server``, vLLM, Ollama
(``http://host:11434/v1``) and hosted APIs. ``base_url`` is the API root, usually ending in
``/v1`` (it is added when the URL has no path). With ``completion_prompt`` the messages are
sent as one prompt to ``POST {base_url}/completions`` instead (a base model without a chat
template, such as the packaged Gemma 3 270M served by the supervised llama.cpp child).

Limits: the connect timeout is httpx's; the first-token and total limits are enforced by the
:class:`~app.generators.base.TokenStream` (streaming) or an overall deadline (not streaming).
Only connection failures (refused, unreachable, connect timeout) are retried, with exponential
back-off, and only while the first-token limit allows: a request the server has received may
have cost it work, and an error status is its answer.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx

from app.generators.base import (
    Generation,
    GeneratorError,
    GeneratorTimeout,
    Message,
    Timeouts,
    TokenStream,
    estimate_tokens,
)

#: Connection failures worth retrying (the request never reached the server).
RETRYABLE = (httpx.ConnectError, httpx.ConnectTimeout)


def api_root(url: str) -> str:
    """``url`` without a trailing slash, with ``/v1`` added when it has no path."""
    url = url.strip().rstrip("/")
    if not urlsplit(url).path:
        url += "/v1"
    return url


class OpenAICompatGenerator:
    """A :class:`~app.generators.base.Generator` for an OpenAI-compatible server."""

    kind = "openai"

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        api_key: str | None = None,
        *,
        timeouts: Timeouts | None = None,
        retries: int = 2,
        backoff_s: float = 0.25,
        context_tokens: int = 4096,
        transport: httpx.AsyncBaseTransport | None = None,
        completion_prompt: Callable[[Sequence[Message]], str] | None = None,
        stop: Sequence[str] = (),
    ) -> None:
        self.base_url = api_root(base_url)
        self.completion_prompt = completion_prompt
        self.stop = list(stop)
        self.path = "/completions" if completion_prompt is not None else "/chat/completions"
        self.model = model or "default"
        self.timeouts = timeouts or Timeouts()
        self.retries = max(0, retries)
        self.backoff_s = max(0.0, backoff_s)
        self.context_tokens = context_tokens
        headers = {"Accept": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._client = httpx.AsyncClient(
            headers=headers,
            transport=transport,
            timeout=self._httpx_timeout(self.timeouts),
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=8),
        )

    @staticmethod
    def _httpx_timeout(t: Timeouts) -> httpx.Timeout:
        # Reads are bounded by the stream's own deadlines; httpx's read limit is a backstop.
        return httpx.Timeout(connect=t.connect_s, read=t.total_s, write=t.total_s, pool=t.total_s)

    def describe(self) -> str:
        return f"OpenAI-compatible {self.base_url} model {self.model}"

    def count_tokens(self, text: str) -> int:
        return estimate_tokens(text)

    async def aclose(self) -> None:
        await self._client.aclose()

    # -- requests --------------------------------------------------------------------------------
    def _body(
        self, messages: Sequence[Message], max_tokens: int, temperature: float, stream: bool
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model}
        if self.completion_prompt is not None:
            body["prompt"] = self.completion_prompt(messages)
        else:
            body["messages"] = [dict(m) for m in messages]
        body.update(max_tokens=max_tokens, temperature=temperature, stream=stream)
        if self.stop:
            body["stop"] = self.stop
        return body

    async def _send(
        self, body: dict[str, Any], timeouts: Timeouts, deadline: float
    ) -> httpx.Response:
        """POST with retries on connection failures; returns an open streaming response."""
        request = self._client.build_request(
            "POST",
            f"{self.base_url}{self.path}",
            json=body,
            timeout=self._httpx_timeout(timeouts),
        )
        attempt = 0
        while True:
            try:
                response = await self._client.send(request, stream=True)
            except RETRYABLE as exc:
                pause = self.backoff_s * 2**attempt
                if attempt >= self.retries or time.monotonic() + pause >= deadline:
                    if isinstance(exc, httpx.ConnectTimeout):
                        raise GeneratorTimeout(
                            f"LLM {self.base_url}: no connection within {timeouts.connect_s:g}s",
                            "connect",
                        ) from None
                    raise GeneratorError(
                        f"LLM {self.base_url} unreachable after {attempt + 1} tries: {exc}"
                    ) from None
                attempt += 1
                await asyncio.sleep(pause)
                continue
            except httpx.TimeoutException as exc:
                raise GeneratorTimeout(f"LLM {self.base_url}: {type(exc).__name__}") from None
            except httpx.HTTPError as exc:
                raise GeneratorError(f"LLM {self.base_url}: {type(exc).__name__}: {exc}") from None
            if response.status_code >= 400:
                try:
                    detail = (await response.aread())[:300].decode("utf-8", "replace")
                except httpx.HTTPError:
                    detail = ""
                finally:
                    await response.aclose()
                raise GeneratorError(
                    f"LLM {self.base_url} answered {response.status_code}: {_error_text(detail)}"
                )
            return response

    def stream(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        timeouts: Timeouts | None = None,
    ) -> TokenStream:
        t = timeouts or self.timeouts
        return TokenStream(
            self.model, t, lambda ts: self.deltas(ts, messages, max_tokens, temperature, t)
        )

    def deltas(
        self,
        ts: TokenStream,
        messages: Sequence[Message],
        max_tokens: int,
        temperature: float,
        timeouts: Timeouts,
    ) -> AsyncIterator[str]:
        """The text deltas of one streamed generation (the source of a :class:`TokenStream`)."""
        body = self._body(messages, max_tokens, temperature, stream=True)
        return self._deltas(ts, body, timeouts)

    async def _deltas(
        self, ts: TokenStream, body: dict[str, Any], timeouts: Timeouts
    ) -> AsyncIterator[str]:
        deadline = time.monotonic() + timeouts.first_token_s
        response = await self._send(body, timeouts, deadline)
        events = 0
        try:
            async for line in response.aiter_lines():
                line = line.strip()
                if not line.startswith("data:"):
                    continue
                events += 1
                data = line[5:].strip()
                if data == "[DONE]":
                    break
                try:
                    chunk = json.loads(data)
                except json.JSONDecodeError:
                    raise GeneratorError(
                        f"LLM sent a malformed stream chunk: {data[:120]}"
                    ) from None
                if not isinstance(chunk, dict):
                    continue
                if "error" in chunk:
                    raise GeneratorError(f"LLM stream error: {_error_text(json.dumps(chunk))}")
                _usage(ts, chunk)
                for choice in chunk.get("choices") or []:
                    if choice.get("finish_reason"):
                        ts.finish_reason = choice["finish_reason"]
                    delta = (choice.get("delta") or {}).get("content") or choice.get("text")
                    if isinstance(delta, str) and delta:
                        yield delta
            if not events:
                kind = response.headers.get("content-type", "?")
                raise GeneratorError(f"LLM {self.base_url} sent no stream events ({kind})")
        except httpx.TimeoutException as exc:
            raise GeneratorTimeout(f"LLM {self.base_url}: {type(exc).__name__}") from None
        except httpx.HTTPError as exc:
            raise GeneratorError(f"LLM {self.base_url}: stream broke: {exc}") from None
        finally:
            await response.aclose()

    async def generate(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        timeouts: Timeouts | None = None,
    ) -> Generation:
        t = timeouts or self.timeouts
        body = self._body(messages, max_tokens, temperature, stream=False)
        started = time.perf_counter()
        try:
            async with asyncio.timeout(t.total_s):
                response = await self._send(body, t, time.monotonic() + t.first_token_s)
                try:
                    raw = await response.aread()
                finally:
                    await response.aclose()
        except TimeoutError:
            raise GeneratorTimeout(
                f"LLM {self.model}: generation not finished within {t.total_s:g}s"
            ) from None
        except httpx.HTTPError as exc:
            raise GeneratorError(f"LLM {self.base_url}: {exc}") from None
        try:
            payload = json.loads(raw)
            choice = payload["choices"][0]
            if "text" in choice:
                text = choice["text"] or ""
            else:
                text = choice["message"].get("content") or ""
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            raise GeneratorError(f"LLM sent a malformed completion: {raw[:120]!r}") from None
        usage = payload.get("usage") or {}
        ms = (time.perf_counter() - started) * 1000
        return Generation(
            text=text,
            model=str(payload.get("model") or self.model),
            prompt_tokens=_int(usage.get("prompt_tokens")),
            completion_tokens=_int(usage.get("completion_tokens")),
            finish_reason=choice.get("finish_reason"),
            first_token_ms=ms,
            total_ms=ms,
        )


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) else None


def _usage(ts: TokenStream, chunk: dict[str, Any]) -> None:
    usage = chunk.get("usage")
    if isinstance(usage, dict):
        ts.prompt_tokens = _int(usage.get("prompt_tokens")) or ts.prompt_tokens
        ts.completion_tokens = _int(usage.get("completion_tokens")) or ts.completion_tokens


def _error_text(detail: str) -> str:
    """The message of an OpenAI-style error body, else the body itself (shortened)."""
    try:
        body = json.loads(detail)
    except ValueError:
        return " ".join(detail.split())[:200] or "no detail"
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict):
            return str(err.get("message") or err)[:200]
        return str(err)[:200]
    return str(body)[:200]
