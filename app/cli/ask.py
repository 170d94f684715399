"""``tandem ask``: grounded, cited answers from an index on the command line.

``tandem ask NAME "QUESTION" [--mode auto|llm|small]`` prints the answer, its sources and how
it was made (``--json``: the object of ``POST /v1/indexes/{name}/ask``).
``tandem ask NAME --questions FILE.jsonl`` answers one ``{"id", "question"}`` per line with the
models loaded once, printing one JSON line per question (the same fields plus ``id``).

The LLM comes from ``TANDEM_LLM_URL`` (+ ``TANDEM_LLM_MODEL``, ``TANDEM_LLM_API_KEY``) or
``TANDEM_LLM_GGUF``; the reader and checker from ``TANDEM_READER`` / ``TANDEM_CHECKER`` (or
``--reader`` / ``--checker``). With no LLM, ``auto`` serves small answers.
"""

from __future__ import annotations

import asyncio
import textwrap
import time
from pathlib import Path
from typing import Annotated, Any, cast

import typer

from app.cli.common import load_reranker_if, parse_filters, read_jsonl
from app.output import emit, json_mode
from app.settings import Settings, get_settings
from core.errors import UsageError

WIDTH = 88
#: Below this calibrated confidence an answer is labelled low-confidence (as in the playground).
LOW_CONFIDENCE = 0.5


def _wrap(text: str, indent: str = "  ") -> str:
    return textwrap.fill(
        " ".join(text.split()), WIDTH, initial_indent=indent, subsequent_indent=indent
    )


def _ms(timings: dict[str, float]) -> str:
    parts = [f"{k} {v:.0f}" for k, v in timings.items() if k != "total" and v >= 0.5]
    return f"{timings.get('total', 0):.0f} ms" + (f" ({', '.join(parts)})" if parts else "")


def format_answer(result: dict[str, Any], question: str | None = None) -> str:
    """A cited answer for a terminal: the answer, the quoted sentence, sources, provenance."""
    lines: list[str] = []
    if question:
        lines += [f"Q: {question}", ""]
    confidence = result.get("confidence")
    how = f"{result['served_by']} · {result['reason']}"
    if confidence is not None:
        how += f" · confidence {confidence:.2f}"
    extract = result.get("extract") or {}
    if extract.get("found") and confidence is not None and confidence < LOW_CONFIDENCE:
        how += " · low confidence: check the sources"
    lines.append(f"Answer ({how})")
    lines.append(_wrap(result["answer"]))
    sentence = extract.get("sentence")
    if extract.get("found") and sentence and sentence.strip() != (extract.get("span") or ""):
        lines += ["", _wrap(f"“{sentence}”", "    ")]
    elif extract and not extract.get("found") and sentence:
        lines += ["", _wrap(f"closest sentence found (not an answer): “{sentence}”", "    ")]
    citations = result.get("citations") or []
    if citations:
        lines += ["", "Sources"]
        for c in citations:
            lines.append(f"  [{c['n']}] {c['source']}  ({c['chunk_id']})")
            snippet = " ".join(c["text"].split())
            lines.append(_wrap(snippet[:220] + ("…" if len(snippet) > 220 else ""), "      "))
    grounded = result.get("grounded") or {}
    notes = []
    if grounded.get("method") == "checker":
        notes.append(f"grounded {grounded['score']:.2f}")
        for sentence_text in grounded.get("unsupported") or []:
            notes.append(f"unsupported: {sentence_text}")
    elif grounded.get("method") == "extractive":
        notes.append("quoted from the source")
    elif grounded.get("reason"):
        reason = str(grounded["reason"])
        notes.append(reason if reason.startswith("not checked") else f"not checked: {reason}")
    if result.get("invalid_citations"):
        removed = ", ".join(f"[{n}]" for n in result["invalid_citations"])
        notes.append(f"removed citations of passages never given: {removed}")
    if result.get("model"):
        notes.append(f"model {result['model']}")
    notes.append(_ms(result.get("timings_ms") or {}))
    lines += ["", *(f"· {n}" for n in notes)]
    return "\n".join(lines)


class Asker:
    """The index's retriever and the answer models, loaded once for many questions."""

    def __init__(self, settings: Settings, name: str) -> None:
        from app.answers.service import load_answer_service
        from retrievers.retriever import Retriever

        self.settings = settings
        reranker = load_reranker_if(settings.reranker, None)
        self.retriever = Retriever(
            settings.data_dir, name, reranker=reranker, **settings.retriever_options()
        )
        self.service = load_answer_service(
            settings, reranker=reranker, embedder=self.retriever.embedder
        )

    async def ask(
        self, question: str, mode: str, top_k: int, filters: dict[str, list[str]]
    ) -> dict[str, Any]:
        from app.answers.router import Mode
        from app.answers.service import run_in_thread
        from app.security import is_blank

        question = " ".join(question.split())
        if is_blank(question):
            raise UsageError("question: must contain some visible text")
        started = time.perf_counter()
        res = await run_in_thread(self.retriever.search, question, top_k, "hybrid", filters or None)
        timings = {"search": (time.perf_counter() - started) * 1000}
        result = await self.service.answer(
            question,
            res.hits,
            index=res.index,
            version=res.version,
            mode=cast(Mode, mode),
            embedder=self.retriever.embedder,
            timings=timings,
        )
        result.timings_ms["total"] = (time.perf_counter() - started) * 1000
        return result.as_dict()

    async def aclose(self) -> None:
        await self.service.aclose()
        self.retriever.close()


def ask(
    name: Annotated[str, typer.Argument(help="The index to ask.")],
    question: Annotated[str | None, typer.Argument(help="The question.")] = None,
    mode: Annotated[
        str, typer.Option("--mode", help="auto (default), llm or small (no LLM).")
    ] = "auto",
    questions: Annotated[
        Path | None,
        typer.Option("--questions", help="JSONL of {id, question}: one JSON line each."),
    ] = None,
    top_k: Annotated[
        int | None,
        typer.Option("--top-k", min=1, max=50, help="Passages used (TANDEM_ASK_TOP_K)."),
    ] = None,
    filters: Annotated[list[str] | None, typer.Option("--filter", help="key=value")] = None,
    reader: Annotated[
        str | None, typer.Option("--reader", help="Reader spec (TANDEM_READER); none: off.")
    ] = None,
    checker: Annotated[
        str | None, typer.Option("--checker", help="Checker spec (TANDEM_CHECKER); none: off.")
    ] = None,
) -> None:
    """Answer QUESTION (or every question of --questions) from index NAME, with citations."""
    from app.answers.router import MODES
    from stores.errors import IndexNotFound
    from stores.layout import IndexLayout

    if mode not in MODES:
        raise UsageError(f"unknown mode {mode!r}: choose auto, llm or small")
    from app.security import is_blank

    if (question is None) == (questions is None):
        raise UsageError("give either QUESTION or --questions FILE")
    if question is not None and is_blank(question):
        raise UsageError("question: must contain some visible text")  # the API's 422
    rows = read_jsonl(questions, "question") if questions else None
    parsed = parse_filters(filters)
    settings = get_settings()
    updates = {k: v for k, v in (("reader", reader), ("checker", checker)) if v is not None}
    if updates:
        settings = settings.model_copy(update=updates)
    if not IndexLayout(settings.data_dir, name).exists():  # exit 1, as search and the API's 404
        raise IndexNotFound(f"index {name!r} not found in {settings.data_dir}")
    k = top_k or settings.ask_top_k
    asker = Asker(settings, name)

    async def run() -> None:
        try:
            if rows is None:
                assert question is not None
                result = await asker.ask(question, mode, k, parsed)
                emit(result, format_answer(result, question if not json_mode() else None))
                return
            for row in rows:
                result = await asker.ask(row["question"], mode, k, parsed)
                emit({"id": row["id"], **result})
        finally:
            await asker.aclose()

    asyncio.run(run())


def register(cli: typer.Typer) -> None:
    """Add ``tandem ask`` to the CLI."""
    cli.command("ask")(ask)
