"""Prompt-lookup decoding in the in-process llama.cpp path (``TANDEM_LLM_DRAFT``): the option
reaches the packaged Gemma 3 270M's child, which answers with it, and ``bench speculative``
reports both speeds and how many greedy outputs agree. Needs the ``[llama]`` extra; skipped
with the reason otherwise."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.integration.needs_llama import skip_without_llama

pytestmark = [pytest.mark.llama, pytest.mark.slow]

skip_without_llama()

PASSAGE = (
    "Apollo 11 was the American spaceflight that first landed humans on the Moon. Commander "
    "Neil Armstrong and lunar module pilot Buzz Aldrin landed the Apollo Lunar Module Eagle on "
    "July 20, 1969, and Armstrong became the first person to step onto the Moon's surface."
)
MESSAGES: list[dict[str, str]] = [
    {"role": "system", "content": "You answer questions using only the numbered passages."},
    {"role": "user", "content": f"Passages:\n[1] {PASSAGE}\n\nQuestion: Who landed Eagle?"},
]


def row(messages: list[dict[str, str]]) -> dict[str, Any]:
    return {"llm": {"messages": messages}}


def test_prompt_lookup_decoding_reaches_the_child_and_answers() -> None:
    from app.answers.router import draft_options
    from app.generators.llama_inprocess import LlamaGenerator
    from app.settings import Settings

    settings = Settings(_env_file=None, llm_draft="prompt-lookup", llm_draft_tokens=8)  # type: ignore[call-arg]
    config = draft_options(settings)
    assert config is not None and config.draft_tokens == 8
    gen = LlamaGenerator("default", threads=2, prompt_lookup=config)
    try:
        # Tandem's own prompt lookup, not llama-cpp-python's draft model (its logits_all).
        assert "draft_model" not in gen.supervisor.options.server_config(0)["models"][0]
        assert gen.supervisor.options.boot_args()[0] == "--tandem-prompt-lookup"
        out = asyncio.run(gen.generate(MESSAGES, max_tokens=24, temperature=0.0))
        described = gen.describe()
    finally:
        asyncio.run(gen.aclose())
    assert out.text.strip()
    assert gen.supervisor.prompt_lookup and "prompt lookup" in described  # the child said so


def test_bench_speculative_reports_both_speeds() -> None:
    from bench.speculative import run_speculative

    result = run_speculative([row(MESSAGES)] * 2, "default", max_prompts=2, max_tokens=32)
    # Greedy text is not guaranteed byte-identical: llama.cpp computes a row of a batch with
    # other kernels than a token alone (BENCHMARKS.md); the bench counts the agreements.
    assert result["prompts"] == 2 and 0 <= result["identical_count"] <= 2
    for name in ("plain", "prompt_lookup"):
        assert result[name]["decode_tokens"] > 0 and result[name]["tokens_per_s"] > 0
    assert result["speedup"] > 0
