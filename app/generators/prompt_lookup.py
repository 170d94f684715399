"""Prompt-lookup decoding for the llama.cpp child, without llama-cpp-python's ``logits_all``.

Prompt lookup (Saxena 2023, github.com/apoorvumang/prompt-lookup-decoding) is speculative
decoding (Leviathan et al. 2023) whose draft model is the context itself: the last n tokens are
looked up earlier in the prompt plus the text generated so far, and the tokens that followed
them there are proposed as the next ones. A RAG answer copies names, dates and phrases from its
passages, so the drafts are often right. The model checks K drafts in one forward pass of
``[last token, draft 1 .. draft K]``; the longest prefix of drafts that it would have produced
itself is kept, plus its own next token, so one pass gives from 1 to K + 1 tokens.

llama-cpp-python has this (``draft_model=LlamaPromptLookupDecoding``), but any draft model
turns on ``logits_all``: an ``n_ctx x n_vocab`` float32 array (4 GiB for Gemma 3's 262,144
tokens at 4,096 of context), the output layer computed for every prompt token, and every row
copied into numpy. That made it 0.15x as fast as plain decoding on the packaged Gemma 3 270M.

:func:`install` replaces ``llama_cpp.Llama.generate`` in the child (``CHILD_BOOT`` of
:mod:`app.generators.llama_supervisor` calls it before it runs ``llama_cpp.server``) with a
version that, for a greedy request (temperature 0, no grammar, logits processor or stopping
criterion, no draft model, no ``logits_all``), decodes with drafts:

* the prompt goes through llama-cpp-python's own ``generate`` up to the first token, so its
  prefix reuse between requests and its sampler chain (greedy after the repeat, frequency and
  presence penalties) are the ones of plain decoding;
* each step decodes ``[last token, drafts...]`` with logits requested for exactly those
  positions (``llama_batch.logits`` flags), and each row is sampled by that same sampler chain
  (``llama_sampler_sample`` on the row), so a kept token is accepted into the penalties' window
  just as in plain decoding;
* the KV cache past the last kept position is removed (``llama_memory_seq_rm``) before the next
  step, and ``Llama.n_tokens`` / ``input_ids`` always hold the evaluated tokens, as plain
  decoding leaves them: llama_cpp.server's prefix reuse and stop strings work unchanged.

Anything else (sampling, grammars, logprobs, recurrent models) takes llama-cpp-python's normal
path. Greedy output is *not guaranteed* byte-identical to plain decoding: llama.cpp's CPU
backend computes a row of a multi-token batch with other kernels than a token alone (llamafile's
tinyBLAS serves only batches of 2 or more; a build without it differs too, in every row), the
logits then differ by a few tenths, and a near-tie between the two best tokens can flip (measured
in BENCHMARKS.md, "Small and large together").
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class LookupConfig:
    """How prompt-lookup decoding drafts (:func:`install`)."""

    draft_tokens: int = 4
    """K: the most tokens proposed (and checked in one forward pass) per step."""
    max_ngram: int = 4
    """Longest suffix looked up; shorter ones are tried down to :attr:`min_ngram`."""
    min_ngram: int = 3
    """Shortest suffix looked up (1: a single token's last occurrence)."""

    def __post_init__(self) -> None:
        if self.draft_tokens < 1 or not 1 <= self.min_ngram <= self.max_ngram:
            raise ValueError(
                "prompt lookup needs draft_tokens >= 1 and 1 <= min_ngram <= max_ngram, got "
                f"{self.draft_tokens}, {self.min_ngram}, {self.max_ngram}"
            )


class NgramIndex:
    """The token history (prompt, then generated tokens) with, for each n-gram of length
    ``min_ngram..max_ngram``, where its latest occurrence was continued.

    :meth:`append` costs O(max_ngram); :meth:`propose` costs O(max_ngram + k). Pure Python:
    token ids are ints.
    """

    def __init__(self, tokens: Sequence[int] = (), *, max_ngram: int = 3, min_ngram: int = 1):
        if not 1 <= min_ngram <= max_ngram:
            raise ValueError(f"need 1 <= min_ngram <= max_ngram, got {min_ngram}, {max_ngram}")
        self.max_ngram = max_ngram
        self.min_ngram = min_ngram
        self.tokens: list[int] = []
        # n-gram -> index in self.tokens of the token that followed its latest occurrence
        self._next: dict[tuple[int, ...], int] = {}
        for t in tokens:
            self.append(int(t))

    def __len__(self) -> int:
        return len(self.tokens)

    def append(self, token: int) -> None:
        """Add one token; the n-grams that end just before it now have a continuation."""
        toks = self.tokens
        end = len(toks)  # the index ``token`` gets
        for n in range(self.min_ngram, min(self.max_ngram, end) + 1):
            self._next[tuple(toks[end - n : end])] = end
        toks.append(token)

    def extend(self, tokens: Sequence[int]) -> None:
        for t in tokens:
            self.append(int(t))

    def propose(self, k: int) -> list[int]:
        """Up to ``k`` draft tokens: what followed the latest earlier occurrence of the longest
        suffix n-gram (``max_ngram`` down to ``min_ngram`` tokens) that occurred before; ``[]``
        when none did (or ``k < 1``)."""
        toks = self.tokens
        if k < 1:
            return []
        for n in range(min(self.max_ngram, len(toks)), self.min_ngram - 1, -1):
            start = self._next.get(tuple(toks[len(toks) - n :]))
            if start is not None:
                return toks[start : start + k]
        return []


def propose(tokens: Sequence[int], k: int, *, max_ngram: int = 3, min_ngram: int = 1) -> list[int]:
    """Up to ``k`` draft tokens for the continuation of ``tokens`` (:meth:`NgramIndex.propose`)."""
    return NgramIndex(tokens, max_ngram=max_ngram, min_ngram=min_ngram).propose(k)


@dataclass
class LookupStats:
    """Counters of the child's drafted steps (for logs and tests)."""

    steps: int = 0
    """Forward passes of the lookup path after the first token."""
    drafted: int = 0
    """Draft tokens checked."""
    accepted: int = 0
    """Draft tokens kept."""
    fallbacks: int = 0
    """Requests that took llama-cpp-python's normal path (not greedy, grammar, ...)."""


STATS = LookupStats()
_ORIGINAL: Any = None


def eligible(llama: Any, args: dict[str, Any]) -> bool:
    """Whether a ``Llama.generate`` call (its bound arguments) can decode with drafts: greedy,
    no grammar / logits processor / stopping criterion, and a model whose KV cache can be
    trimmed (not recurrent or hybrid), without a draft model or ``logits_all``."""
    return (
        args.get("temp") == 0.0
        and args.get("grammar") is None
        and args.get("logits_processor") is None
        and args.get("stopping_criteria") is None
        and getattr(llama, "draft_model", None) is None
        and not getattr(llama, "_logits_all", True)
        and not getattr(llama, "_is_recurrent", True)
        and not getattr(llama, "_is_hybrid", True)
    )


def lookup_generate(llama: Any, config: LookupConfig, **kwargs: Any) -> Iterator[int]:
    """Greedy tokens of ``llama`` for ``kwargs`` (``Llama.generate``'s arguments), decoded
    with prompt-lookup drafts; the caller stops it when it has enough (as llama_cpp does).

    The first token comes from llama-cpp-python's own ``generate`` (prefix reuse, prompt
    evaluation, the sampler chain); each later step is one ``llama_decode`` of the last token
    and up to ``config.draft_tokens`` drafts. Raises ``RuntimeError`` when llama.cpp's
    ``llama_decode`` fails (as llama-cpp-python's ``eval`` does).
    """
    first = _original()(llama, **kwargs)
    try:
        token = next(first)
    except StopIteration:
        return
    finally:
        first.close()
    sampler = llama._sampler  # the chain generate() built: penalties, then greedy
    ctx, batch = llama._ctx, llama._batch
    n_ctx = llama._n_ctx
    limit = min(config.draft_tokens, llama.n_batch - 1)
    index = NgramIndex(
        llama.input_ids[: llama.n_tokens].tolist(),
        max_ngram=config.max_ngram,
        min_ngram=config.min_ngram,
    )
    index.append(token)
    while True:
        yield token
        base = llama.n_tokens  # evaluated tokens; ``token`` is sampled, not yet evaluated
        drafts = index.propose(min(limit, n_ctx - base - 1))
        step = [token, *drafts]
        ctx.kv_cache_seq_rm(-1, base, -1)  # rejected drafts of the last step
        # Logits for every position of the step, none elsewhere: row j predicts step[j + 1].
        batch.set_batch(batch=step, n_past=base, logits_all=True)
        ctx.decode(batch)
        llama.input_ids[base : base + len(step)] = step
        STATS.steps += 1
        STATS.drafted += len(drafts)
        for j in range(len(step)):
            token = sampler.sample(ctx, j)
            # As plain decoding leaves it: the tokens before ``token`` evaluated, and the
            # logits of the last one current only when it is the step's last row.
            llama.n_tokens = base + j + 1
            llama._requires_eval = j + 1 < len(step)
            index.append(token)
            if j + 1 < len(step) and token == step[j + 1]:
                STATS.accepted += 1
                yield token
                continue
            break


def _original() -> Any:
    """llama-cpp-python's own ``Llama.generate`` (before :func:`install`)."""
    if _ORIGINAL is not None:
        return _ORIGINAL
    import llama_cpp

    return llama_cpp.Llama.generate


def install(config: LookupConfig) -> None:
    """Make ``llama_cpp.Llama.generate`` decode greedy requests with prompt lookup (module
    docstring); idempotent (a second call changes the config only). Raises ``ImportError``
    without llama-cpp-python."""
    global _ORIGINAL
    import llama_cpp

    cls = llama_cpp.Llama
    if _ORIGINAL is None:
        _ORIGINAL = cls.generate
    original = _ORIGINAL
    signature = inspect.signature(original)

    def generate(self: Any, *args: Any, **kwargs: Any) -> Iterator[int]:
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        call = dict(bound.arguments)
        call.pop("self")
        if eligible(self, call):
            return lookup_generate(self, config, **call)
        STATS.fallbacks += 1
        return original(self, **call)  # type: ignore[no-any-return]

    generate.__doc__ = original.__doc__
    generate.__wrapped__ = original  # type: ignore[attr-defined]
    cls.generate = generate  # type: ignore[method-assign,assignment]
    print(f"tandem: prompt-lookup decoding of greedy requests ({config})", file=sys.stderr)


def uninstall() -> None:
    """Restore llama-cpp-python's own ``Llama.generate`` (tests)."""
    if _ORIGINAL is not None:
        import llama_cpp

        llama_cpp.Llama.generate = _ORIGINAL  # type: ignore[method-assign]
