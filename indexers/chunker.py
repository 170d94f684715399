"""Token-aware chunking on sentence boundaries with the embedder's own tokenizer."""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property

from llama_index.core.node_parser import SentenceSplitter

DEFAULT_CHUNK_TOKENS = 200
DEFAULT_OVERLAP_TOKENS = 32
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
        if len(self.tokenize(text)) <= self.chunk_tokens:
            return [text]
        return [c.strip() for c in self.splitter.split_text(text) if c.strip()]
