"""The grounded prompt: passages numbered in rank order and packed into the token budget."""

from __future__ import annotations

from dataclasses import dataclass

from app.answers.prompt import (
    SYSTEM_PROMPT,
    Passage,
    build_prompt,
    format_passage,
    number_passages,
)
from app.generators.base import estimate_tokens


@dataclass
class FakeHit:  # the shape of retrievers.retriever.Hit
    text: str
    source: str
    doc_id: str
    chunk_id: str
    score: float = 1.0


def hits(n: int, words: int = 50) -> list[FakeHit]:
    return [
        FakeHit(" ".join(f"w{i}x{j}" for j in range(words)), f"doc{i}.txt", f"d{i}", f"d{i}::0")
        for i in range(n)
    ]


def words(text: str) -> int:
    return len(text.split())


def test_passages_are_numbered_in_rank_order_and_empty_ones_skipped() -> None:
    raw = [*hits(2), FakeHit("  ", "blank.txt", "b", "b::0"), *hits(1)]
    passages = number_passages(raw)
    assert [p.n for p in passages] == [1, 2, 3]
    assert passages[2].source == "doc0.txt" and passages[0].citation() == {
        "n": 1,
        "source": "doc0.txt",
        "doc_id": "d0",
        "chunk_id": "d0::0",
        "text": raw[0].text,
    }


def test_everything_fits_in_a_large_context() -> None:
    passages = number_passages(hits(5))
    packed = build_prompt("what?", passages, estimate_tokens, 8192, 256)
    assert [p.n for p in packed.passages] == [1, 2, 3, 4, 5]
    assert packed.dropped == 0 and not packed.truncated
    assert packed.messages[0] == {"role": "system", "content": SYSTEM_PROMPT}
    user = packed.messages[1]["content"]
    assert f"\n[5] {passages[4].text}\n" in user and user.startswith("Answer the question")
    assert user.endswith("Question: what?")


def test_packing_stops_at_the_budget_counting_tokens() -> None:
    passages = number_passages(hits(10, words=100))
    packed = build_prompt("what?", passages, words, 600, 100)
    total = sum(words(m["content"]) for m in packed.messages)
    assert total + 100 <= 600  # prompt + answer budget fit in the context
    assert 1 <= len(packed.passages) < 10
    assert packed.dropped == 10 - len(packed.passages)
    assert [p.n for p in packed.passages] == list(range(1, len(packed.passages) + 1))
    # The prompt count the packer reports is the real count of what it built.
    assert packed.prompt_tokens >= total - 2


def test_a_first_passage_too_long_for_the_budget_is_cut() -> None:
    long = number_passages(hits(1, words=2000)) + number_passages(hits(1))
    packed = build_prompt("what?", long, words, 400, 100)
    assert packed.truncated and len(packed.passages) == 1 and packed.dropped == 1
    assert packed.passages[0].text.endswith("…")
    assert sum(words(m["content"]) for m in packed.messages) + 100 <= 400


def test_format_passage() -> None:
    p = Passage(3, "Text\n here.", "a/b.md", "a/b.md", "a/b.md::2")
    assert format_passage(p) == "[3] Text here."
