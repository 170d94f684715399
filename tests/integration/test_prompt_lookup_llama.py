"""Prompt-lookup decoding on the packaged Gemma 3 270M through llama-cpp-python (issue 16):
greedy answers to prompts built from passages are the same text with and without it, drafts are
really checked and kept, and a sampling request takes llama-cpp-python's own path. In process
(the child runs the same code after ``install``). Needs the ``[llama]`` extra; skipped with the
reason otherwise.

Identity is not guaranteed in general (llama.cpp computes rows of a multi-token batch with other
kernels than a token alone, BENCHMARKS.md): these prompts were chosen short and unambiguous, and
gave identical text with llama-cpp-python 0.3.36 on x86-64 AVX2; another build or CPU may flip a
near-tie, and this test would then say so."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.needs_llama import skip_without_llama

pytestmark = [pytest.mark.llama, pytest.mark.slow]

skip_without_llama()

PASSAGES = [
    "Apollo 11 was the American spaceflight that first landed humans on the Moon. Commander "
    "Neil Armstrong and lunar module pilot Buzz Aldrin landed the Apollo Lunar Module Eagle on "
    "July 20, 1969, and Armstrong became the first person to step onto the Moon's surface.",
    "Penicillin was discovered in 1928 by the Scottish physician Alexander Fleming, who noticed "
    "that a mould, Penicillium notatum, had killed the bacteria on a culture plate at St Mary's "
    "Hospital in London.",
    "The Eiffel Tower is a wrought-iron lattice tower on the Champ de Mars in Paris, France. It "
    "is named after the engineer Gustave Eiffel, whose company designed and built the tower for "
    "the 1889 World's Fair.",
]
QUESTIONS = ["Who landed Eagle on the Moon?", "Who discovered penicillin?", "Who built it?"]


def prompt(passage: str, question: str) -> str:
    from app.generators.llama_inprocess import completion_prompt

    return completion_prompt(
        [
            {"role": "system", "content": "Answer using only the numbered passages."},
            {"role": "user", "content": f"Passages:\n[1] {passage}\n\nQuestion: {question}"},
        ]
    )


@pytest.fixture(scope="module")
def gemma() -> Iterator[Any]:
    """The packaged Gemma 3 270M in this process (2 threads, 2,048 tokens of context)."""
    import llama_cpp

    from app.generators.llama_inprocess import default_gguf

    llama = llama_cpp.Llama(
        str(default_gguf()), n_ctx=2048, n_threads=2, n_threads_batch=2, verbose=False
    )
    yield llama
    llama.close()


def complete(llama: Any, text: str, *, lookup: bool, **kwargs: Any) -> str:
    """One completion as llama_cpp.server makes it (repeat penalty 1.1, Tandem's stops)."""
    from app.generators import prompt_lookup
    from app.generators.llama_inprocess import COMPLETION_STOP

    if lookup:
        prompt_lookup.install(prompt_lookup.LookupConfig(draft_tokens=4))
    try:
        out = llama.create_completion(
            text, max_tokens=48, repeat_penalty=1.1, stop=COMPLETION_STOP, **kwargs
        )
    finally:
        prompt_lookup.uninstall()
    return str(out["choices"][0]["text"])


def test_greedy_text_is_the_same_with_prompt_lookup(gemma: Any) -> None:
    from app.generators.prompt_lookup import STATS

    before = (STATS.steps, STATS.drafted, STATS.accepted)
    for passage, question in zip(PASSAGES, QUESTIONS, strict=True):
        text = prompt(passage, question)
        gemma.reset()
        plain = complete(gemma, text, lookup=False, temperature=0.0)
        plain_state = gemma.input_ids[: gemma.n_tokens].tolist()
        gemma.reset()
        drafted = complete(gemma, text, lookup=True, temperature=0.0)
        assert drafted == plain and plain.strip()
        # The evaluated tokens are left as plain decoding leaves them (rejected drafts are not
        # among them), which llama_cpp's prefix reuse of the next request relies on.
        assert gemma.input_ids[: gemma.n_tokens].tolist() == plain_state
    steps, drafted_n, accepted = (STATS.steps, STATS.drafted, STATS.accepted)
    assert steps > before[0] and drafted_n > before[1]  # drafts were checked ...
    assert accepted > before[2]  # ... and some kept: answers copy their passages


def test_sampling_takes_llama_cpps_own_path(gemma: Any) -> None:
    from app.generators.prompt_lookup import STATS

    fallbacks = STATS.fallbacks
    gemma.reset()
    text = complete(gemma, prompt(PASSAGES[0], QUESTIONS[0]), lookup=True, temperature=0.8, seed=1)
    assert STATS.fallbacks == fallbacks + 1
    assert isinstance(text, str)
