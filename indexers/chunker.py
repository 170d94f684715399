"""Token-aware chunking on sentence boundaries with the embedder's own tokenizer."""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property

from llama_index.core.node_parser import SentenceSplitter

DEFAULT_CHUNK_TOKENS = 200
DEFAULT_OVERLAP_TOKENS = 32
#: Characters per chunk at most, per chunk token (a long unknown word is one [UNK] token).
CHARS_PER_TOKEN = 8
#: Room for the special tokens ([CLS], [SEP]) the model adds.
SPECIAL_TOKENS = 2


class Chunker:
    """Splits text into chunks of at most ``chunk_tokens`` model tokens.

    ``chunk_tokens`` is capped at the embedder's max sequence length minus its special tokens,
    so a chunk is never truncated by the model.
    """

    def __init__(
        self,
        tokenize: Callable[[str], list[int]],
        max_seq_length: int,
        chunk_tokens: int | None = None,
        overlap_tokens: int = DEFAULT_OVERLAP_TOKENS,
    ) -> None:
        limit = max_seq_length - SPECIAL_TOKENS
        self.chunk_tokens = min(chunk_tokens or DEFAULT_CHUNK_TOKENS, limit)
        if self.chunk_tokens < 16:
            from core.errors import UsageError

            raise UsageError(f"--chunk-tokens must be at least 16 (max {limit})")
        self.overlap_tokens = min(overlap_tokens, self.chunk_tokens // 4)
        self.tokenize = tokenize
        self.max_chars = self.chunk_tokens * CHARS_PER_TOKEN

    @cached_property
    def splitter(self) -> SentenceSplitter:
        return SentenceSplitter(
            chunk_size=self.chunk_tokens,
            chunk_overlap=self.overlap_tokens,
            tokenizer=self.tokenize,
            paragraph_separator="\n\n",
        )

    def split(self, text: str) -> list[str]:
        text = text.strip()
        if not text:
            return []
        if len(text) <= self.max_chars and len(self.tokenize(text)) <= self.chunk_tokens:
            return [text]
        out: list[str] = []
        for c in self.splitter.split_text(text):
            out.extend(_cut(c.strip(), self.max_chars))
        return [c for c in out if c]


def _cut(text: str, max_chars: int) -> list[str]:
    """``text`` in pieces of at most ``max_chars`` characters, cut at spaces when there are."""
    out = []
    while len(text) > max_chars:
        cut = text.rfind(" ", max_chars // 2, max_chars)
        cut = cut if cut > 0 else max_chars
        out.append(text[:cut].strip())
        text = text[cut:].strip()
    out.append(text)
    return out
