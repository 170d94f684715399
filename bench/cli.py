"""``tandem bench ...``: benchmarks, printed as tables or one JSON object.

The benchmarks live outside the product: ``tandem`` finds this module through the entry point
``bench = "bench.cli:register"`` of the group ``tandem.cli`` (see ``pyproject.toml``), and an
installation without ``bench/`` (the Docker image) simply has no ``tandem bench``.

* ``retrieval``, ``answers``: retrieval quality and answers on SQuAD-format files;
* ``serve``: HTTP serving speed against an index;
* ``faithfulness``, ``swapped``: the groundedness checker's AUC;
* ``cascade``, ``speculative``: small and LLM answers together (issue 16);
* ``suite``: the whole benchmark suite into BENCHMARKS.md (what ``make bench`` runs);
* ``scale``: FAISS flat / HNSW / IVF-PQ at 100k and 1M synthetic vectors (``--quick``: 50k);
* ``speed``: embedder texts/s in PyTorch and ONNX Runtime (fp32, int8), and a reranker's;
* ``llamaindex``: the same corpus and models through plain llama-index, beside Tandem;
* ``ingest``: ingestion documents/s and PDF pages/s on a mixed corpus, before and after.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from app.output import emit, json_mode
from app.settings import get_settings
from core.errors import UsageError

app = typer.Typer(
    help="Benchmarks: retrieval quality, serving speed, answers, faithfulness.",
    no_args_is_help=True,
)


def register(cli: typer.Typer) -> None:
    """Add ``tandem bench`` to the ``tandem`` CLI (the ``tandem.cli`` entry point)."""
    cli.add_typer(app, name="bench")


def _log(message: str) -> None:
    if not json_mode():
        typer.echo(message, err=True)


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
            "--reader",
            help="Reader spec (default TANDEM_READER, else models/reader-minilm or released).",
        ),
    ] = None,
    reranker: Annotated[str | None, typer.Option("--reranker", help="Reranker spec.")] = None,
    min_confidence: Annotated[
        float | None,
        typer.Option("--min-confidence", min=0, max=1, help="Small answers' abstention floor."),
    ] = None,
    model: Annotated[str | None, typer.Option("--model", help="Embedder spec.")] = None,
    checker: Annotated[
        str | None,
        typer.Option("--checker", help="Checker spec (default TANDEM_CHECKER; none: off)."),
    ] = None,
    unanswerable: Annotated[
        Path | None,
        typer.Option(
            "--unanswerable",
            help="Questions asked against the index that it cannot answer (SQuAD-format or "
            "JSONL with a question field): the abstention rate on them.",
        ),
    ] = None,
    max_unanswerable: Annotated[
        int | None, typer.Option("--max-unanswerable", min=1, help="Default: --max-questions.")
    ] = None,
    unanswerable_offset: Annotated[
        int,
        typer.Option(
            "--unanswerable-offset",
            min=0,
            help="Skip the first N questions of --unanswerable (e.g. 3000: HaluEval QA rows the "
            "checker was not trained on).",
        ),
    ] = 0,
    split: Annotated[
        str,
        typer.Option(
            "--split",
            help="all, cal or test: halves by article (and question id) for honest "
            "calibration; report test figures.",
        ),
    ] = "all",
    calibration: Annotated[
        Path | None,
        typer.Option(
            "--calibration", help="Calibration JSON (default app/answers/calibration.json)."
        ),
    ] = None,
    fit: Annotated[
        Path | None,
        typer.Option(
            "--fit",
            help="Fit abstention and confidence on this run (--split cal and "
            "--unanswerable) and write them into this JSON file.",
        ),
    ] = None,
    check_candidates: Annotated[
        int | None,
        typer.Option("--check-candidates", min=0, help="Reader candidates checked (0: off)."),
    ] = None,
    kind_penalty: Annotated[
        float | None,
        typer.Option("--kind-penalty", min=0, max=1, help="1: no when/who/how-many preference."),
    ] = None,
    reader_passages: Annotated[
        int | None,
        typer.Option(
            "--reader-passages", min=1, max=50, help="Passages the reader reads (default 3)."
        ),
    ] = None,
    rank_prior: Annotated[
        float | None,
        typer.Option(
            "--rank-prior", min=0, max=10, help="Reader candidates' passage-rank prior (0.7)."
        ),
    ] = None,
    rows: Annotated[
        Path | None, typer.Option("--rows", help="Write per-question rows (JSONL) here.")
    ] = None,
    index_dir: Annotated[
        Path | None,
        typer.Option("--index-dir", help="Keep the set's index here and reuse it next time."),
    ] = None,
) -> None:
    """EM, F1, abstention (answerable and unanswerable), calibration, wrong-entity answers and
    latency of answers from retrieved passages."""
    import json

    from bench.answers import fit_calibration, format_table, run_answers_bench

    if not squad.is_file():
        raise UsageError(f"file not found: {squad}")
    if unanswerable is not None and not unanswerable.is_file():
        raise UsageError(f"file not found: {unanswerable}")
    if mode not in ("small", "llm"):
        raise UsageError(f"unknown mode {mode!r}: choose small or llm")
    if split not in ("all", "cal", "test"):
        raise UsageError(f"unknown split {split!r}: choose all, cal or test")
    if fit is not None and (split != "cal" or unanswerable is None or mode != "small"):
        raise UsageError("--fit needs --split cal, --unanswerable FILE and --mode small")
    options: dict[str, Any] = {}
    if check_candidates is not None:
        options["check_candidates"] = check_candidates
    if kind_penalty is not None:
        options["kind_penalty"] = kind_penalty
    if reader_passages is not None:
        options["reader_passages"] = reader_passages
    if rank_prior is not None:
        options["rank_prior"] = rank_prior
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
        checker=checker,
        unanswerable=unanswerable,
        max_unanswerable=max_unanswerable,
        unanswerable_offset=unanswerable_offset,
        split=split,
        calibration=str(calibration) if calibration else None,
        small_options=options,
        index_dir=index_dir,
        keep_rows=True,
        log=_log,
    )
    if rows is not None:
        rows.write_text("".join(json.dumps(r) + "\n" for r in result["rows"]))
    if fit is not None:
        from app.answers.calibration import save_calibration

        fitted = fit_calibration(
            result,
            result["feature_set"],
            {
                "answerer": result["answerer"].split(" (")[0],
                "reader": result["reader"],
                "checker": result["checker"],
            },
        )
        save_calibration(fitted, fit)
        result["fitted"] = fitted.as_dict()
        _log(f"calibration {fitted.name} written to {fit}: threshold {fitted.threshold:.3f}")
    result.pop("rows")
    emit(result, format_table(result))


@app.command("serve")
def serve(
    index: Annotated[str, typer.Argument(help="Index to query (in --data-dir).")],
    requests: Annotated[
        int, typer.Option("--requests", min=10, max=100_000, help="Requests per phase.")
    ] = 200,
    reranker: Annotated[
        str | None, typer.Option("--reranker", help="Reranker spec: adds the rerank phase.")
    ] = None,
    rerank_candidates: Annotated[
        int, typer.Option("--rerank-candidates", min=1, max=200, help="Candidates reranked.")
    ] = 20,
    concurrency: Annotated[
        list[int] | None,
        typer.Option("--concurrency", min=1, max=256, help="Concurrent clients (repeatable)."),
    ] = None,
    max_seconds: Annotated[
        float, typer.Option("--max-seconds", min=1, help="Time limit of each phase.")
    ] = 30.0,
    redis_url: Annotated[
        str | None, typer.Option("--redis-url", help="Cache in this Redis (default: in-process).")
    ] = None,
) -> None:
    """p50/p95 of search, search+rerank and cache hits, and req/s at 1, 4 and 16 clients."""
    from bench.serve import format_table, run_serve_bench
    from stores.layout import IndexLayout

    data_dir = get_settings().data_dir
    if not IndexLayout(data_dir, index).exists():
        raise UsageError(f"index {index!r} not found in {data_dir}")

    result = run_serve_bench(
        index,
        data_dir,
        reranker,
        requests,
        concurrency=tuple(concurrency or (1, 4, 16)),
        max_seconds=max_seconds,
        rerank_candidates=rerank_candidates,
        redis_url=redis_url,
        log=_log,
    )
    emit(result, format_table(result))


def _need_file(path: Path, what: str) -> None:
    if not path.is_file():
        raise UsageError(f"{what} file not found: {path}")


@app.command("faithfulness")
def faithfulness(
    halueval: Annotated[
        Path,
        typer.Option(
            "--halueval", help="HaluEval rows (JSONL): QA, dialogue or summarization, as they are."
        ),
    ],
    limit: Annotated[int | None, typer.Option("--limit", min=1)] = None,
    offset: Annotated[int, typer.Option("--offset", min=0)] = 0,
    checker: Annotated[str | None, typer.Option("--checker", help="Checker spec.")] = None,
    threads: Annotated[
        int | None,
        typer.Option("--threads", min=1, help="Torch threads (default TANDEM_TORCH_THREADS)."),
    ] = None,
) -> None:
    """ROC AUC and accuracy of the groundedness checker on HaluEval QA, dialogue or
    summarization rows (told apart by their fields)."""
    import contextlib

    from bench.faithfulness import run_faithfulness

    with contextlib.suppress(ImportError):  # a released (ONNX) checker needs no torch
        import torch

        torch.set_num_threads(threads or get_settings().torch_threads or torch.get_num_threads())

    _need_file(halueval, "HaluEval")
    if offset < 0 or (limit is not None and limit < 1):
        raise UsageError("--offset must be >= 0 and --limit >= 1")
    result = run_faithfulness(halueval, checker, limit, offset)
    emit(
        result,
        f"faithfulness ({result.get('kind')}) on {result.get('n', 0)} answers: AUC "
        f"{result.get('auc')}, accuracy {result.get('accuracy')}"
        + (f", {result['ms_per_sentence']} ms/sentence" if result.get("ms_per_sentence") else ""),
    )


@app.command("swapped")
def swapped(
    squad: Annotated[Path, typer.Option("--squad", help="SQuAD-format file.")],
    limit: Annotated[int | None, typer.Option("--limit", min=1)] = 300,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    checker: Annotated[str | None, typer.Option("--checker", help="Checker spec.")] = None,
) -> None:
    """Checker AUC: right answers vs answers to other questions on the same passage."""
    from bench.faithfulness import run_swapped

    _need_file(squad, "SQuAD")
    result = run_swapped(squad, checker, limit, seed)
    emit(
        result,
        f"swapped answers, {result.get('n', 0)} scored: AUC {result.get('auc')}, "
        f"accuracy {result.get('accuracy')}",
    )


@app.command("cascade")
def cascade(
    squad: Annotated[Path, typer.Option("--squad", help="SQuAD-format file.")],
    llm_url: Annotated[
        str | None, typer.Option("--llm-url", help="OpenAI-compatible API root of the LLM.")
    ] = None,
    llm_gguf: Annotated[
        str | None,
        typer.Option("--llm-gguf", help="In-process GGUF (a path, or 'default': Gemma 3 270M)."),
    ] = None,
    llm_model: Annotated[
        str | None, typer.Option("--llm-model", help="Model name sent to --llm-url.")
    ] = None,
    max_questions: Annotated[int | None, typer.Option("--max-questions", min=1)] = 100,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    table: Annotated[
        Path | None,
        typer.Option("--table", help="JSONL oracle table (reused; default bench/results/...)."),
    ] = None,
    chart: Annotated[
        Path | None, typer.Option("--chart", help="PNG of the curve (default: beside the table).")
    ] = None,
    cost_model: Annotated[
        Path | None,
        typer.Option(
            "--cost-model",
            help="Write the LLM cost model here (the service reads app/answers/llm_cost.json).",
        ),
    ] = None,
    index_dir: Annotated[
        Path | None, typer.Option("--index-dir", help="Keep the set's index here and reuse it.")
    ] = None,
    refresh: Annotated[
        bool,
        typer.Option(
            "--refresh",
            help="Answer the held rows again in small mode and re-check their LLM answers with "
            "the reader and checker configured now (the LLM answers are kept; no LLM needed).",
        ),
    ] = False,
) -> None:
    """The oracle table (small and LLM answers to the same passages), the cascade's
    cost-quality curve beside always-small, always-LLM and random routing, APGR, the threshold
    chosen on a calibration split, the checker on real LLM answers, the ungrounded policies."""
    import json

    from bench.cascade import analyse, build_table, default_table_path, read_table
    from bench.cascade import chart as draw

    _need_file(squad, "SQuAD")
    if llm_url and llm_gguf:
        raise UsageError("give --llm-url or --llm-gguf, not both")
    settings = get_settings()
    # The table records the LLM's own answers and their whole cost: no policy, no time limits
    # that would cut a slow answer short, no circuit that would skip the LLM.
    update: dict[str, Any] = {
        "ungrounded": "flag", "llm_first_token_timeout_s": 600.0, "llm_timeout_s": 1200.0,
        "ask_timeout_s": 1800.0, "llm_child_hang_timeouts": 0, "llm_breaker_failures": 1000,
    }  # fmt: skip
    if llm_url:
        update.update(llm_url=llm_url, llm_gguf=None)
    if llm_gguf:
        update.update(llm_gguf=llm_gguf, llm_url=None)
    if llm_model:
        update["llm_model"] = llm_model
    settings = settings.model_copy(update=update)
    name = llm_model or settings.llm_model or (settings.llm_gguf and Path(settings.llm_gguf).stem)
    name = name or (settings.llm_url or "llm").split("//")[-1]
    table = table or default_table_path(squad, str(name))
    held = read_table(table)
    if not (settings.llm_url or settings.llm_gguf) and not held:
        raise UsageError("no LLM: give --llm-url or --llm-gguf (or a --table that holds rows)")
    if settings.llm_url or settings.llm_gguf or refresh:
        rows = build_table(
            squad, table, settings, max_questions=max_questions, seed=seed,
            index_dir=index_dir, refresh=refresh, log=_log,
        )  # fmt: skip
    else:
        rows = held[:max_questions] if max_questions else held
    if not rows:
        raise UsageError(f"the table {table} holds no rows")
    result = analyse(rows, settings.checker_threshold, seed)
    result["table"] = str(table)
    result["set"] = squad.name
    result["chart"] = str(draw(result, chart or table.with_suffix(".png")))
    if cost_model is not None and result["cost_model"]:
        cost_model.write_text(json.dumps(result["cost_model"], indent=2) + "\n")
    emit(result, _cascade_text(result))


def _cascade_text(result: dict[str, Any]) -> str:
    from bench.cascade import format_table

    return format_table(result)


@app.command("speculative")
def speculative(
    table: Annotated[Path, typer.Option("--table", help="Oracle table of `bench cascade`.")],
    llm_gguf: Annotated[
        str, typer.Option("--llm-gguf", help="GGUF path, or 'default' (Gemma 3 270M).")
    ] = "default",
    max_prompts: Annotated[int, typer.Option("--max-prompts", min=1)] = 20,
    max_tokens: Annotated[int, typer.Option("--max-tokens", min=2, max=4096)] = 96,
    num_pred_tokens: Annotated[
        int, typer.Option("--num-pred-tokens", min=1, max=64, help="Draft tokens per step.")
    ] = 4,
    max_ngram: Annotated[
        int, typer.Option("--max-ngram", min=1, max=16, help="Longest n-gram looked up.")
    ] = 4,
    min_ngram: Annotated[
        int, typer.Option("--min-ngram", min=1, max=16, help="Shortest n-gram looked up.")
    ] = 3,
    threads: Annotated[int | None, typer.Option("--threads", min=1)] = None,
) -> None:
    """Decode tokens/s of the oracle prompts with and without prompt-lookup decoding, and
    whether greedy outputs are byte-identical."""
    from bench.cascade import read_table
    from bench.speculative import run_speculative

    _need_file(table, "oracle table")
    rows = read_table(table)
    if not rows:
        raise UsageError(f"the table {table} holds no rows")
    result = run_speculative(
        rows, llm_gguf, max_prompts=max_prompts, max_tokens=max_tokens, threads=threads,
        num_pred_tokens=num_pred_tokens, max_ngram=max_ngram, min_ngram=min_ngram, log=_log,
    )  # fmt: skip
    emit(
        result,
        f"{result['prompts']} prompts: plain {result['plain']['tokens_per_s']} tokens/s, prompt "
        f"lookup {result['prompt_lookup']['tokens_per_s']} tokens/s ({result['speedup']}x); "
        f"identical outputs: {result['identical_count']}/{result['prompts']}",
    )


def _check(*files: Path | None) -> None:
    for f in files:
        if f is not None and not f.is_file():
            raise UsageError(f"file not found: {f}")


@app.command("suite")
def suite(
    squad: Annotated[Path | None, typer.Option("--squad", help="SQuAD v1.1 dev file.")] = None,
    nyt: Annotated[Path | None, typer.Option("--nyt", help="NYT file, SQuAD format.")] = None,
    halueval: Annotated[Path | None, typer.Option("--halueval", help="HaluEval QA JSONL.")] = None,
    quick: Annotated[bool, typer.Option("--quick", help="The small version (minutes).")] = False,
    only: Annotated[
        list[str] | None, typer.Option("--only", help="Run only these steps (repeatable).")
    ] = None,
    reranker: Annotated[str | None, typer.Option("--reranker", help="Reranker spec.")] = None,
    page: Annotated[Path, typer.Option("--page", help="Markdown file to update.")] = Path(
        "BENCHMARKS.md"
    ),
) -> None:
    """Every benchmark, written to BENCHMARKS.md (between its markers) and bench/results/."""
    from bench.run import main

    _check(squad, nyt, halueval)
    if squad is None and nyt is None:
        raise UsageError("give --squad and/or --nyt")
    argv = ["--page", str(page)]
    for flag, value in (("--squad", squad), ("--nyt", nyt), ("--halueval", halueval)):
        if value is not None:
            argv += [flag, str(value)]
    if quick:
        argv.append("--quick")
    if reranker:
        argv += ["--reranker", reranker]
    for step in only or []:
        argv += ["--only", step]
    main(argv)
    emit({"page": str(page)}, f"wrote {page}")


@app.command("scale")
def scale(
    quick: Annotated[
        bool, typer.Option("--quick", help="50k vectors instead of 100k and 1M.")
    ] = False,
    queries: Annotated[int, typer.Option("--queries", min=10, help="Timed queries.")] = 200,
    threads: Annotated[int, typer.Option("--threads", min=1, help="FAISS threads.")] = 2,
    device: Annotated[str, typer.Option("--device", help="cpu, cuda or auto.")] = "cpu",
) -> None:
    """Build time, memory, p50/p95 search and recall@10 of FAISS indexes at scale."""
    from bench.scale import FULL_POINTS, QUICK_POINTS, format_table, run_scale_bench

    if device not in ("cpu", "cuda", "auto"):
        raise UsageError("--device: cpu, cuda or auto")
    result = run_scale_bench(
        QUICK_POINTS if quick else FULL_POINTS,
        queries=queries,
        threads=threads,
        device=device,
        log=_log,
    )
    emit(result, format_table(result))


@app.command("speed")
def speed(
    squad: Annotated[Path, typer.Option("--squad", help="SQuAD-format file (its paragraphs).")],
    texts: Annotated[int, typer.Option("--texts", min=8, help="Paragraphs encoded.")] = 256,
    model: Annotated[str | None, typer.Option("--model", help="Embedder spec.")] = None,
    reranker: Annotated[
        str | None, typer.Option("--reranker", help="Also time this cross-encoder.")
    ] = None,
    rounds: Annotated[int, typer.Option("--rounds", min=1, help="Interleaved rounds.")] = 2,
) -> None:
    """Texts/s of the embedder in PyTorch and ONNX Runtime (fp32, int8), same texts, same run."""
    from bench.speed import encoder_speed, rerank_items, reranker_speed
    from training.squad import load_squad

    _check(squad)
    questions = load_squad(squad)
    paragraphs = list(dict.fromkeys(q.context for q in questions))[:texts]
    out: dict[str, Any] = {
        "encoder": encoder_speed(paragraphs, model=model, rounds=rounds, log=_log)
    }
    if reranker:
        items = rerank_items(questions, max(10, texts // 10))
        out["reranker"] = reranker_speed(reranker, items, rounds=rounds, log=_log)
    enc = out["encoder"]
    lines = [
        f"{name:<12}{rate:>10.1f} texts/s"
        + (
            f"  {enc['speedup_vs_raw_torch'][name]:.2f}x"
            if name in enc["speedup_vs_raw_torch"]
            else ""
        )
        for name, rate in enc["texts_per_s"].items()
    ]
    if "reranker" in out:
        r = out["reranker"]
        lines.append(
            f"reranker {r['model']}: torch {r['pairs_per_s']['torch']} pairs/s, onnx-int8 "
            f"{r['pairs_per_s']['onnx-int8']} pairs/s ({r['speedup']:.2f}x)"
        )
    emit(out, "\n".join(lines))


@app.command("llamaindex")
def llamaindex(
    squad: Annotated[list[Path], typer.Option("--squad", help="SQuAD-format file(s).")],
    max_questions: Annotated[int | None, typer.Option("--max-questions", min=1)] = 300,
    reranker: Annotated[str | None, typer.Option("--reranker", help="Reranker folder.")] = None,
) -> None:
    """nDCG@10, build time and query latency of a plain llama-index pipeline, beside Tandem's."""
    import tempfile

    from bench.baseline_llamaindex import run_llamaindex_baseline
    from bench.retrieval import run_retrieval_bench

    _check(*squad)
    results = []
    for f in squad:
        with tempfile.TemporaryDirectory(prefix="tandem-bench-") as tmp:
            tandem = run_retrieval_bench(
                f,
                max_questions=max_questions,
                data_dir=Path(tmp),
                methods=("dense", "hybrid"),
                log=_log,
            )
            res, _ = run_llamaindex_baseline(
                f,
                tandem_data_dir=Path(tmp),
                tandem_index="bench-" + f.stem.replace(".", "-"),
                max_questions=max_questions,
                reranker_path=reranker,
                log=_log,
            )
        res["tandem"] = {
            "build_s": tandem["build"]["seconds"],
            "ndcg@10": {m: v["ndcg@10"] for m, v in tandem["methods"].items()},
        }
        results.append(res)
    lines = []
    for r in results:
        lines.append(
            f"{r['set']}: build Tandem {r['tandem']['build_s']}s / llama-index {r['build_s']}s; "
            + ", ".join(f"{m} nDCG@10 {v['ndcg@10']:.4f}" for m, v in r["methods"].items())
            + ", "
            + ", ".join(f"Tandem {m} {v:.4f}" for m, v in r["tandem"]["ndcg@10"].items())
            + "; latency p50 ratio "
            + ", ".join(f"{k} {v}" for k, v in r["ratios"].items())
        )
    emit({"sets": results}, "\n".join(lines))


@app.command("ingest")
def bench_ingest(
    docs: Annotated[int, typer.Option(help="Generated non-PDF files.")] = 120,
    pdfs: Annotated[int, typer.Option(help="Generated PDFs.")] = 12,
    pages: Annotated[int, typer.Option(help="Pages per PDF.")] = 3,
    before: Annotated[
        bool, typer.Option(help="Also build with the committed code (git archive HEAD).")
    ] = True,
) -> None:
    """Ingestion throughput (documents/s, PDF pages/s) on a generated mixed corpus."""
    from bench.ingest import run_ingest

    res = run_ingest(docs, pdfs, pages, before)
    lines = [f"corpus: {res['corpus']['files']} files, {res['corpus']['pdf_pages']} PDF pages"]
    for label in ("before", "after"):
        if label in res:
            r = res[label]
            lines.append(
                f"{label}: {r['documents_per_s']} documents/s, {r['pdf_pages_per_s']} PDF "
                f"pages/s ({r['documents']} documents, {r['failed']} failed, {r['seconds']}s)"
            )
    if "slowdown_pct" in res:
        lines.append(f"slower by {res['slowdown_pct']}%")
    emit(res, "\n".join(lines))


@app.command("load")
def load(
    quick: Annotated[bool, typer.Option(help="Seconds, not minutes (what the tests run).")] = False,
    soak_requests: Annotated[
        int | None, typer.Option(help="Requests of the soak (default 20000; 600 with --quick).")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Write the results as JSON here.")] = None,
) -> None:
    """Load on 127.0.0.1 with faults (Redis killed and back), zero-stale checks, and a soak."""
    from bench.load import run_all

    res = run_all(quick=quick, out=out, soak_requests=soak_requests)
    lines = []
    for phase in res["faults"]["phases"]:
        lines.append(str(phase))
    stale = res["stale"]
    lines.append(
        f"stale: {stale['stale']} of {stale['checked']} checked ({stale['publications']} "
        f"publications, {stale['unchecked']} unchecked)"
    )
    soak = res["soak"]
    lines.append(
        f"soak: {soak['requests']} requests in {soak['seconds']}s, RSS growth "
        f"{soak['rss_growth']}, fds {soak['fds_after_warmup']} -> {soak['fds_end']}, p50 "
        f"{soak['p50_first_fifth_ms']} -> {soak['p50_last_fifth_ms']} ms"
    )
    emit(res, "\n".join(lines))


@app.command("ray")
def bench_ray(
    docs: Annotated[int, typer.Option(min=10, max=100_000, help="Small corpus files.")] = 150,
    workers: Annotated[list[int] | None, typer.Option(help="Ray worker counts (1 2).")] = None,
) -> None:
    """Index build chunks/s on Ray Data by workers, beside the local build (issue 18)."""
    from bench.ray_build import format_table, run_ray_bench

    res = run_ray_bench(docs, workers or [1, 2], log=_log)
    emit(res, format_table(res))


@app.command("tracing")
def bench_tracing(
    docs: Annotated[int, typer.Option(min=10, max=100_000, help="Documents indexed.")] = 400,
    requests: Annotated[
        int, typer.Option(min=20, max=100_000, help="Searches per configuration.")
    ] = 300,
    rounds: Annotated[int, typer.Option(min=1, max=100, help="Interleaved rounds.")] = 10,
) -> None:
    """Search p50 with tracing off, on (in-memory exporter) and without the tracing code."""
    from bench.tracing import format_table, run_tracing_bench

    result = run_tracing_bench(docs, requests, rounds, log=_log)
    emit(result, format_table(result))
