"""``tandem bench suite|scale|speed|llamaindex`` (registered by ``app.commands.bench``).

* ``suite``: the whole benchmark suite into BENCHMARKS.md (what ``make bench`` runs);
* ``scale``: FAISS flat / HNSW / IVF-PQ at 100k and 1M synthetic vectors (``--quick``: 50k);
* ``speed``: embedder texts/s in PyTorch and ONNX Runtime (fp32, int8), and a reranker's;
* ``llamaindex``: the same corpus and models through plain llama-index, beside Tandem.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from app.output import emit, json_mode
from smallmodels.errors import UsageError


def _log(message: str) -> None:
    if not json_mode():
        typer.echo(message, err=True)


def _check(*files: Path | None) -> None:
    for f in files:
        if f is not None and not f.is_file():
            raise UsageError(f"file not found: {f}")


def suite_command(
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


def scale_command(
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


def speed_command(
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
    from smallmodels.training.squad import load_squad

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


def llamaindex_command(
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


def register(app: typer.Typer) -> None:
    """Add the commands to the ``tandem bench`` app."""
    app.command("suite")(suite_command)
    app.command("scale")(scale_command)
    app.command("speed")(speed_command)
    app.command("llamaindex")(llamaindex_command)
