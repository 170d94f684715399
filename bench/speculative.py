"""Speculative decoding measured on the oracle table's prompts (``tandem bench speculative``).

The in-process LLM (a llama.cpp child, :mod:`app.generators.llama_supervisor`) is started twice
on the same GGUF: plain (llama-cpp-python's own decoding) and with Tandem's prompt-lookup
decoding (:mod:`app.generators.prompt_lookup`; Saxena 2023): the draft tokens are n-grams of
the prompt itself, i.e. of the retrieved passages, which hold the small model's extractive
answer as well. Greedy decoding should give byte-identical text either way; the figures are
decode tokens/s and how many outputs are identical.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

Row = dict[str, Any]


def run_speculative(
    rows: Sequence[Row],
    gguf: str,
    *,
    max_prompts: int = 20,
    max_tokens: int = 96,
    threads: int | None = None,
    num_pred_tokens: int = 4,
    max_ngram: int = 4,
    min_ngram: int = 3,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Decode tokens/s of the oracle prompts with and without prompt-lookup decoding (greedy),
    and whether every output is byte-identical.

    ``num_pred_tokens``, ``max_ngram``, ``min_ngram``: the drafts (:class:`LookupConfig`).
    Returns the counts (``prompts``, ``decode_tokens``), seconds, ``tokens_per_s`` of each
    variant, their ``speedup`` and ``identical_count``; raises ``httpx.HTTPError`` when a child
    fails a request.

    Each prompt is sent twice to each llama.cpp child (non-streaming, so token counts are
    llama.cpp's own): once for one token (the prefill), then in full; the child keeps the
    prompt's state, so the second call's time is the decoding of its tokens. The two children
    run side by side and take turns.
    """
    import httpx

    from app.generators.llama_inprocess import COMPLETION_STOP, LlamaGenerator, completion_prompt
    from app.generators.prompt_lookup import LookupConfig

    prompts = [r["llm"]["messages"] for r in rows if r["llm"].get("messages")][:max_prompts]
    lookup = LookupConfig(draft_tokens=num_pred_tokens, max_ngram=max_ngram, min_ngram=min_ngram)
    variants: dict[str, LookupConfig | None] = {"plain": None, "prompt_lookup": lookup}
    outputs: dict[str, list[str]] = {name: [] for name in variants}
    counts = {name: [0, 0.0] for name in variants}  # decode tokens, seconds
    gens = {
        name: LlamaGenerator(gguf, threads=threads, prompt_lookup=config)
        for name, config in variants.items()
    }
    try:
        with httpx.Client(timeout=600) as client:

            def call(name: str, prompt: str, n: int) -> tuple[str, int, float]:
                url = gens[name].supervisor.base_url.rstrip("/") + "/completions"
                body = {"prompt": prompt, "max_tokens": n, "temperature": 0.0,
                        "stop": COMPLETION_STOP, "seed": 0}  # fmt: skip
                t = time.perf_counter()
                resp = client.post(url, json=body)
                resp.raise_for_status()
                data = resp.json()
                took = time.perf_counter() - t
                text = data["choices"][0]["text"]
                return text, int(data.get("usage", {}).get("completion_tokens", 0)), took

            # Both children are up at once and take turns, prompt by prompt, so that the load
            # of a shared machine weighs on both alike.
            for k, messages in enumerate(prompts):
                prompt = completion_prompt(messages)
                order = list(variants) if k % 2 == 0 else list(reversed(variants))
                for name in order:
                    call(name, prompt, 1)  # the prefill, kept by the child for the next call
                    text, n, took = call(name, prompt, max_tokens)
                    outputs[name].append(text)
                    counts[name][0] += n
                    counts[name][1] += took
                if log:
                    log(f"{k + 1}/{len(prompts)} prompts decoded both ways")
    finally:
        for gen in gens.values():
            asyncio.run(gen.aclose())
    figures: dict[str, dict[str, float]] = {
        name: {
            "decode_tokens": int(tokens),
            "decode_s": round(seconds, 3),
            "tokens_per_s": round(tokens / seconds, 2) if seconds else 0.0,
        }
        for name, (tokens, seconds) in counts.items()
    }
    same = [a == b for a, b in zip(outputs["plain"], outputs["prompt_lookup"], strict=True)]
    plain = figures["plain"]["tokens_per_s"]
    return {
        "prompts": len(prompts),
        "max_tokens": max_tokens,
        "num_pred_tokens": num_pred_tokens,
        "ngram": [min_ngram, max_ngram],
        **figures,
        "speedup": round(figures["prompt_lookup"]["tokens_per_s"] / plain, 3) if plain else None,
        "identical": all(same),
        "identical_count": sum(same),
        "differing": [k for k, ok in enumerate(same) if not ok],
    }
