"""``tandem bench ...``: benchmarks, printed as tables or one JSON object."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from app.output import emit, json_mode
from smallmodels.errors import UsageError

app = typer.Typer(
    help="Benchmarks: retrieval quality, serving speed, answers, faithfulness.",
    no_args_is_help=True,
)


def _log(msg: str) -> None:
    if not json_mode():
        typer.echo(msg, err=True)


def _table(result: dict[str, Any]) -> str:
    lines = [
        f"{result['set']}: {result['questions']} questions, {result['documents']} documents",
        f"{'method':<16}{'nDCG@10':>9}{'R@10':>8}{'R@100':>8}{'MRR@10':>8}{'ms/q':>8}",
    ]
    for method, m in result["methods"].items():
        lines.append(
            f"{method:<16}{m['ndcg@10']:>9.4f}{m['recall@10']:>8.4f}"
            f"{m['recall@100']:>8.4f}{m['mrr@10']:>8.4f}"
            f"{result['ms_per_query'].get(method, 0):>8.1f}"
        )
    b = result["build"]
    lines.append(
        f"build: {b['chunks']} chunks in {b['seconds']}s = {b['chunks_per_s']} chunks/s;"
        f" raw encode {b['raw_encode_per_s']}/s; ratio {b['ratio']}"
    )
    return "\n".join(lines)


@app.command("retrieval")
def retrieval(
    squad: Annotated[list[Path], typer.Option("--squad", help="SQuAD-format file(s).")],
    max_questions: Annotated[int | None, typer.Option("--max-questions", min=1)] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    model: Annotated[str | None, typer.Option("--model", help="Embedder spec.")] = None,
    reranker: Annotated[str | None, typer.Option("--reranker", help="Reranker spec.")] = None,
) -> None:
    """nDCG@10, Recall@10/100, MRR@10 for bm25, dense and hybrid (and hybrid+rerank)."""
    from bench.retrieval import run_retrieval_bench

    for f in squad:
        if not f.is_file():
            raise UsageError(f"file not found: {f}")
    extra, rr = _rerank_method(reranker)
    results = [
        run_retrieval_bench(
            f,
            max_questions=max_questions,
            seed=seed,
            model=model,
            reranker=rr,
            extra_methods=extra,
            log=_log,
        )
        for f in squad
    ]
    if len(results) == 1:
        emit(results[0], _table(results[0]))
        return
    mean = _mean(results)
    emit(
        {"sets": results, "mean": mean},
        "\n\n".join(_table(r) for r in results)
        + "\n\nmean: "
        + ", ".join(f"{k} nDCG@10 {v['ndcg@10']:.4f}" for k, v in mean.items()),
    )


def _rerank_method(spec: str | None) -> tuple[dict[str, Any] | None, Any]:
    if not spec:
        return None, None
    from bench.rerank import rerank_method

    return rerank_method(spec)


def _mean(results: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    methods = results[0]["methods"].keys()
    return {
        m: {
            k: round(sum(r["methods"][m][k] for r in results) / len(results), 4)
            for k in results[0]["methods"][m]
        }
        for m in methods
    }


@app.command("answers")
def answers(
    squad: Annotated[Path, typer.Option("--squad", help="SQuAD-format file.")],
    max_questions: Annotated[int | None, typer.Option("--max-questions", min=1)] = 300,
    mode: Annotated[str, typer.Option("--mode", help="small (no LLM) or llm.")] = "small",
    seed: Annotated[int, typer.Option("--seed")] = 0,
    top_k: Annotated[
        int | None, typer.Option("--top-k", min=1, max=50, help="Passages per question.")
    ] = None,
    reader: Annotated[
        str | None,
        typer.Option(
            "--reader", help="Reader spec (default TANDEM_READER or models/reader-minilm)."
        ),
    ] = None,
    reranker: Annotated[str | None, typer.Option("--reranker", help="Reranker spec.")] = None,
    min_confidence: Annotated[
        float | None,
        typer.Option("--min-confidence", min=0, max=1, help="Small answers' abstention floor."),
    ] = None,
    model: Annotated[str | None, typer.Option("--model", help="Embedder spec.")] = None,
) -> None:
    """EM, F1, gold citations, abstentions and latency of answers from retrieved passages."""
    from app.settings import get_settings
    from bench.answers import format_table, run_answers_bench

    if not squad.is_file():
        raise UsageError(f"file not found: {squad}")
    if mode not in ("small", "llm"):
        raise UsageError(f"unknown mode {mode!r}: choose small or llm")
    settings = get_settings()
    if min_confidence is not None:
        settings = settings.model_copy(update={"small_min_confidence": min_confidence})
    rr = None
    if reranker:
        from smallmodels.reranker import load_reranker

        rr = load_reranker(reranker)
    result = run_answers_bench(
        squad,
        max_questions=max_questions,
        seed=seed,
        mode=mode,
        top_k=top_k,
        reader=reader,
        reranker=rr,
        model=model,
        settings=settings,
        log=_log,
    )
    emit(result, format_table(result))


def _register_optional_benches() -> None:
    """Benchmarks whose commands live beside their own modules."""
    from app.commands.bench_serve import serve_bench_command

    app.command("serve")(serve_bench_command)
    try:
        from app.commands.checker import faithfulness_command, swapped_command
    except ImportError:
        return

    @app.command("faithfulness")
    def faithfulness(
        halueval: Annotated[Path, typer.Option("--halueval", help="HaluEval QA rows (JSONL).")],
        limit: Annotated[int | None, typer.Option("--limit", min=1)] = None,
        offset: Annotated[int, typer.Option("--offset", min=0)] = 0,
        checker: Annotated[str | None, typer.Option("--checker", help="Checker spec.")] = None,
    ) -> None:
        """ROC AUC and accuracy of the groundedness checker on HaluEval rows."""
        result = faithfulness_command(halueval, limit, offset, checker)
        emit(
            result,
            f"faithfulness on {result.get('n', 0)} answers: AUC {result.get('auc')}, "
            f"accuracy {result.get('accuracy')}",
        )

    @app.command("swapped")
    def swapped(
        squad: Annotated[Path, typer.Option("--squad", help="SQuAD-format file.")],
        limit: Annotated[int | None, typer.Option("--limit", min=1)] = 300,
        seed: Annotated[int, typer.Option("--seed")] = 0,
        checker: Annotated[str | None, typer.Option("--checker", help="Checker spec.")] = None,
    ) -> None:
        """Checker AUC: right answers vs answers to other questions on the same passage."""
        result = swapped_command(squad, limit, seed, checker)
        emit(
            result,
            f"swapped answers, {result.get('n', 0)} scored: AUC {result.get('auc')}, "
            f"accuracy {result.get('accuracy')}",
        )


_register_optional_benches()


def _register_suite() -> None:
    """``suite``, ``scale``, ``speed`` and ``llamaindex`` (app.commands.bench_suite)."""
    from app.commands.bench_suite import register

    register(app)


_register_suite()
