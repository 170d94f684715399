"""Markdown for BENCHMARKS.md from the stored step results (``bench/results/<step>.json``).

Every table says which command produced it, when, and on what machine; timing figures are
ratios or pairs measured in the same run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

RESULTS_LINK = "bench/results"
Records = Mapping[str, Mapping[str, Any]]


def _f(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += [
        "| " + " | ".join(_f(c) if not isinstance(c, str) else c for c in r) + " |" for r in rows
    ]
    return "\n".join(lines)


def _provenance(record: Mapping[str, Any]) -> str:
    m = record.get("machine", {})
    libs = ", ".join(f"{k} {v}" for k, v in m.get("libraries", {}).items())
    return (
        f"_Command: `{record.get('command')}` (part of `{record.get('make')}`), "
        f"{record.get('date')}, {record.get('seconds')} s. Machine: {m.get('cpu')}, "
        f"{m.get('cores')} cores, {m.get('memory_gb')} GB, load average {m.get('load_avg_1m')} "
        f"when the step ended; {libs}. Raw figures: "
        f"[`{RESULTS_LINK}/{record.get('step')}.json`]({RESULTS_LINK}/{record.get('step')}.json)._"
    )


def _error(record: Mapping[str, Any]) -> str | None:
    fig = record.get("figures", {})
    if "error" in fig:
        return f"**This step failed:** `{fig['error']}`"
    if "skipped" in fig:
        return f"_Skipped: {fig['skipped']}_"
    return None


def _figures(records: Records, step: str) -> Mapping[str, Any]:
    record = records.get(step)
    return record.get("figures", {}) if record else {}


# -- sections ----------------------------------------------------------------------------------
def retrieval_section(records: Records) -> list[str]:
    record = records.get("retrieval")
    if not record:
        return []
    out = ["## Retrieval quality", _provenance(record)]
    if err := _error(record):
        return [*out, err]
    fig = record["figures"]
    for s in fig["sets"]:
        out.append(
            f"**{s['set']}**: {s['questions']:,} questions over {s['documents']:,} paragraphs "
            f"({s['build']['chunks']:,} chunks). ms/q is per query in batches of 256."
        )
        rows = [
            [
                m,
                v["ndcg@10"],
                v["recall@10"],
                v["recall@100"],
                v["mrr@10"],
                s["ms_per_query"].get(m),
            ]
            for m, v in s["methods"].items()
        ]
        out.append(_table(["method", "nDCG@10", "R@10", "R@100", "MRR@10", "ms/q"], rows))
        bm25 = s["methods"].get("bm25", {}).get("ndcg@10")
        rr = s["methods"].get("hybrid+rerank", {}).get("ndcg@10")
        if bm25 is not None and rr is not None:
            out.append(f"hybrid+rerank − BM25 nDCG@10: **{rr - bm25:+.4f}**")
    mean = fig.get("mean", {})
    if mean and len(fig["sets"]) > 1:
        out.append("**Mean over the sets**")
        rows = [
            [m, v["ndcg@10"], v["recall@10"], v["recall@100"], v["mrr@10"]] for m, v in mean.items()
        ]
        out.append(_table(["method", "nDCG@10", "R@10", "R@100", "MRR@10"], rows))
    if fig.get("reranker"):
        out.append(f"Reranker: `{fig['reranker']}`.")
    out.append(f"![quality per method and set]({RESULTS_LINK}/quality.png)")
    return out


def build_section(records: Records) -> list[str]:
    rows = []
    for step, label in (("retrieval", "torch"), ("onnx", "onnx-int8")):
        for s in _figures(records, step).get("sets", []):
            b = s["build"]
            p = b.get("pipeline", {})
            rows.append(
                [
                    s["set"],
                    label,
                    b["chunks"],
                    b["seconds"],
                    b["chunks_per_s"],
                    b["raw_encode_per_s"],
                    f"**{_f(b['ratio'], 2)}x**",
                    f"{100 * p['overhead']:.1f}%" if p.get("overhead") is not None else "–",
                ]
            )
    if not rows:
        return []
    return [
        "## Index builds",
        "Reading, chunking, curation and encoding overlap (a reader thread, the chunker, and a "
        "background encoder fed as chunks appear). *Build chunks/s* is the whole build (load, "
        "chunk, dedup, embed, write FAISS + BM25 + SQLite, publish); *raw* is a plain PyTorch "
        "`SentenceTransformer.encode` (batch 64) of the same chunk texts, measured right after "
        "the build in the same run; *overhead* is the share of the build's wall time that was "
        "not spent in model calls. Same commands as the retrieval and ONNX sections.",
        _table(
            [
                "set",
                "embedder backend",
                "chunks",
                "build s",
                "build chunks/s",
                "raw PyTorch texts/s",
                "build / raw",
                "overhead",
            ],
            rows,
        ),
    ]


def onnx_section(records: Records) -> list[str]:
    record = records.get("onnx")
    if not record:
        return []
    out = ["## ONNX Runtime int8", _provenance(record)]
    if err := _error(record):
        return [*out, err]
    fig = record["figures"]
    enc = fig.get("encoder", {})
    if enc:
        out.append(
            f"**Embedder speed** ({enc['texts']} paragraphs, batch {enc['batch_size']}, "
            f"{enc['rounds']} interleaved rounds, best round each):"
        )
        rows = [["raw torch", enc["texts_per_s"]["raw torch"], "1.00x", "–", "–"]]
        for k, v in enc["speedup_vs_raw_torch"].items():
            cos = enc["cosine_vs_torch"].get(k, {})
            rows.append(
                [k, enc["texts_per_s"][k], f"**{v:.2f}x**", cos.get("mean"), cos.get("min")]
            )
        out.append(
            _table(["backend", "texts/s", "vs raw torch", "cosine mean", "cosine min"], rows)
        )
    sets = fig.get("sets", [])
    torch_sets = {s["set"]: s for s in _figures(records, "retrieval").get("sets", [])}
    if sets:
        out.append(
            f"**Quality cost** (`{fig['spec']}` against the PyTorch embedder, same questions):"
        )
        rows = []
        for s in sets:
            ref = torch_sets.get(s["set"], {}).get("methods", {})
            for m, v in s["methods"].items():
                if m == "bm25":
                    continue
                base = ref.get(m, {}).get("ndcg@10")
                loss = s.get("ndcg@10_loss", {}).get(m)
                rows.append([s["set"], m, base, v["ndcg@10"], loss])
        out.append(_table(["set", "method", "nDCG@10 torch", "nDCG@10 int8", "loss"], rows))
    rr = fig.get("reranker")
    if rr and "error" not in rr:
        out.append(
            f"**Reranker** `{rr['model']}` ({rr['pairs']:,} pairs, max_length {rr['max_length']}):"
            f" torch {rr['pairs_per_s']['torch']} pairs/s, onnx-int8 "
            f"{rr['pairs_per_s']['onnx-int8']} pairs/s, **{rr['speedup']:.2f}x**; gold paragraph "
            f"among 10: accuracy@1 torch {rr['ranking']['torch']['accuracy@1']}, int8 "
            f"{rr['ranking']['onnx-int8']['accuracy@1']} (loss {rr['accuracy@1_loss']}); "
            f"score correlation {rr['score_correlation']}."
        )
    elif rr:
        out.append(f"Reranker: failed ({rr['error']}).")
    out.append(f"![encoder speed]({RESULTS_LINK}/encoder_speed.png)")
    return out


def llamaindex_section(records: Records) -> list[str]:
    record = records.get("llamaindex")
    if not record:
        return []
    out = ["## Tandem and llama-index side by side", _provenance(record)]
    if err := _error(record):
        return [*out, err]
    for s in record["figures"]["sets"]:
        t = s.get("tandem", {})
        pipe = s["pipeline"]
        out.append(
            f"**{s['set']}** — llama-index: {pipe['embed']}, {pipe['store']}, {pipe['splitter']}"
            + (f", {pipe['reranker']}" if pipe.get("reranker") else "")
            + f"; {s['nodes']:,} nodes."
        )
        lat = s.get("latency_ms", {})
        rows = [
            ["build time (s)", t.get("build_s"), s["build_s"], t.get("build_ratio")],
        ]
        if "build_s_onnx_int8" in t:
            rows.append(
                [
                    "build time, Tandem onnx-int8 (s)",
                    t["build_s_onnx_int8"],
                    s["build_s"],
                    t["build_ratio_onnx_int8"],
                ]
            )
        for key, stats in lat.items():
            if not key.startswith("tandem ") or "llama-index" not in lat:
                continue
            label = key.removeprefix("tandem ")
            rows.append(
                [
                    f"query latency p50, Tandem {label} (ms)",
                    stats["p50"],
                    lat["llama-index"]["p50"],
                    s["ratios"].get(f"latency_p50_{label.replace(' ', '_')}"),
                ]
            )
        lm = s["methods"]
        nd = t.get("ndcg@10", {})
        if nd:
            rows.append(
                [
                    "nDCG@10 dense",
                    nd.get("dense"),
                    lm["llama-index dense"]["ndcg@10"],
                    t.get("ndcg@10_ratio_dense"),
                ]
            )
            rows.append(
                [
                    "nDCG@10 Tandem hybrid vs llama-index dense",
                    nd.get("hybrid"),
                    lm["llama-index dense"]["ndcg@10"],
                    t.get("ndcg@10_ratio_hybrid_vs_llama_dense"),
                ]
            )
            if "llama-index +rerank" in lm:
                rows.append(
                    [
                        "nDCG@10 with the reranker",
                        nd.get("hybrid+rerank"),
                        lm["llama-index +rerank"]["ndcg@10"],
                        t.get("ndcg@10_ratio_rerank"),
                    ]
                )
        out.append(_table(["figure", "Tandem", "llama-index", "Tandem / llama-index"], rows))
    out.append(
        "Latency: the same questions, one at a time, Tandem and llama-index alternating so both "
        "see the same load; Tandem's build includes BM25, SQLite and curation, llama-index's "
        "only its FAISS index."
    )
    return out


def serve_section(records: Records) -> list[str]:
    record = records.get("serve")
    if not record:
        return []
    out = ["## Serving throughput", _provenance(record)]
    if err := _error(record):
        return [*out, err]
    fig = record["figures"]
    services = fig["services"]
    llama = {x["clients"]: x for x in fig.get("llamaindex", [])}
    first = next(iter(services.values()))
    out.append(
        f"Index `{first['index']}` ({first['chunks']:,} chunks of {fig['set']}), built once with "
        f"each embedder backend; Tandem: `tandem serve` over HTTP (hybrid search, no reranking, "
        f"cache misses only, keep-alive clients on the same machine); llama-index: its retriever "
        f"called by as many threads in-process (no HTTP at all). Queries are word windows of the "
        f"indexed chunks."
    )
    header = ["clients"]
    for backend in services:
        header += [f"Tandem {backend} req/s", "p50 / p95 ms"]
    header += ["llama-index req/s", "p50 / p95 ms"]
    header += [f"{b} / llama-index" for b in services]
    clients = [t["clients"] for t in first["throughput"]]
    rows = []
    for c in clients:
        row: list[Any] = [c]
        for svc in services.values():
            t: dict[str, Any] = next((x for x in svc["throughput"] if x["clients"] == c), {})
            row += [t.get("rps"), f"{t.get('p50')} / {t.get('p95')}"]
        lx = llama.get(c, {})
        row += [lx.get("rps"), f"{lx.get('p50')} / {lx.get('p95')}" if lx else "–"]
        for b in services:
            r = fig["rps_ratio"].get(b, {}).get(str(c))
            row.append(f"**{_f(r, 2)}x**" if r is not None else "–")
        rows.append(row)
    out.append(_table(header, rows))
    lat_rows = []
    for b, svc in services.items():
        for k, v in svc.get("latency_ms", {}).items():
            lat_rows.append([b, k, v["n"], v["p50"], v["p95"]])
    if lat_rows:
        out.append(
            _table(["embedder", "service phase (1 client)", "n", "p50 ms", "p95 ms"], lat_rows)
        )
    out.append(f"![throughput against concurrency]({RESULTS_LINK}/throughput.png)")
    return out


def scale_section(records: Records) -> list[str]:
    record = records.get("scale")
    if not record:
        return []
    out = ["## Large indexes", _provenance(record)]
    if err := _error(record):
        return [*out, err]
    fig = record["figures"]
    out.append(
        f"Vectors: {fig['vectors']} — synthetic because embedding a million real chunks does not "
        f"fit in a benchmark run on this machine. Each point is its own process; search is one "
        f"query at a time (top 10) with {fig['threads']} FAISS threads on {fig['device']}; "
        f"recall@10 is against exact search over the same vectors; *+index MB* is the RSS the "
        f"built index added."
    )
    rows = []
    for p in fig["points"]:
        if "error" in p:
            rows.append([p["n"], p["kind"], "failed", "", "", "", "", "", p["error"][:60]])
            continue
        params = {
            k: v
            for k, v in p["params"].items()
            if k not in {"backend", "metric", "kind", "hnsw_threshold", "ivfpq_threshold", "device"}
        }
        rows.append(
            [
                p["n"],
                p["kind"],
                p["build_s"],
                round(p["index_rss_mb"]),
                round(p["rss_mb"]),
                p["search_ms"]["p50"],
                p["search_ms"]["p95"],
                p["recall@10"],
                ", ".join(f"{k} {v}" for k, v in params.items()) or "exact",
            ]
        )
    out.append(
        _table(
            [
                "vectors",
                "kind",
                "build s",
                "+index MB",
                "RSS MB",
                "p50 ms",
                "p95 ms",
                "recall@10",
                "parameters",
            ],
            rows,
        )
    )
    out.append(f"![latency against index size]({RESULTS_LINK}/latency_vs_size.png)")
    return out


def faithfulness_section(records: Records) -> list[str]:
    record = records.get("faithfulness")
    if not record:
        return []
    out = ["## Faithfulness (groundedness checker)", _provenance(record)]
    if err := _error(record):
        return [*out, err]
    fig = record["figures"]
    rows = [[k, v.get("n"), v.get("auc"), v.get("accuracy")] for k, v in fig.items()]
    out.append(_table(["set", "answers", "AUC", "accuracy@0.5"], rows))
    return out


def answers_section(records: Records) -> list[str]:
    record = records.get("answers")
    if not record:
        return []
    out = ["## Answers (small mode, from retrieved passages)", _provenance(record)]
    if err := _error(record):
        return [*out, err]
    rows = []
    for s in record["figures"].get("sets", []):
        lat = s.get("latency_ms", {})
        rows.append(
            [
                s.get("set"),
                s.get("questions"),
                s.get("exact_match"),
                s.get("f1"),
                s.get("f1_answered"),
                s.get("cited_gold"),
                s.get("abstention_rate"),
                s.get("retrieval_recall"),
                f"{lat.get('p50')} / {lat.get('p95')}",
            ]
        )
    out.append(
        _table(
            [
                "set",
                "questions",
                "EM",
                "F1",
                "F1 answered",
                "cites gold",
                "abstains",
                "gold retrieved",
                "p50 / p95 ms",
            ],
            rows,
        )
    )
    out.append(
        "Tandem's own reader (`make models`) is trained on SQuAD dev: the SQuAD rows measure "
        "answers it has seen; the NYT rows are held out."
    )
    return out


# -- targets -----------------------------------------------------------------------------------
def targets(records: Records, goals: Mapping[str, float]) -> list[str]:
    rows: list[list[Any]] = []

    def add(name: str, value: Any, goal: str, met: bool | None) -> None:
        rows.append([name, value, goal, "met" if met else ("not met" if met is False else "–")])

    default = _figures(records, "onnx").get("default_backend", "onnx-int8")
    for step, label in (("retrieval", "torch"), ("onnx", "onnx-int8")):
        for s in _figures(records, step).get("sets", []):
            b = s["build"]
            if b.get("ratio") is not None:
                is_default = label == default
                add(
                    f"build / raw PyTorch encode, {label}"
                    f"{' (default backend)' if is_default else ''}, {s['set']}",
                    f"{b['ratio']:.2f}x",
                    f">= {goals['build_vs_raw']}x" if is_default else "(reference)",
                    b["ratio"] >= goals["build_vs_raw"] if is_default else None,
                )
            ov = b.get("pipeline", {}).get("overhead")
            if ov is not None:
                add(
                    f"build overhead, {label}, {s['set']}",
                    f"{100 * ov:.1f}%",
                    f"< {100 * goals['build_overhead']:.0f}%",
                    ov < goals["build_overhead"],
                )
    for s in _figures(records, "onnx").get("sets", []):
        for m, loss in s.get("ndcg@10_loss", {}).items():
            if m == "bm25":
                continue
            add(
                f"int8 nDCG@10 loss, {m}, {s['set']}",
                loss,
                f"< {goals['onnx_ndcg_loss']}",
                loss < goals["onnx_ndcg_loss"],
            )
    for s in _figures(records, "retrieval").get("sets", []):
        bm25 = s["methods"].get("bm25", {}).get("ndcg@10")
        rr = s["methods"].get("hybrid+rerank", {}).get("ndcg@10")
        if bm25 is not None and rr is not None:
            add(f"hybrid+rerank − BM25 nDCG@10, {s['set']}", f"{rr - bm25:+.4f}", "> 0", rr > bm25)
    for backend, ratios in _figures(records, "serve").get("rps_ratio", {}).items():
        for clients, r in ratios.items():
            is_default = backend == default
            add(
                f"service req/s / llama-index, {backend} embedder"
                f"{' (default)' if is_default else ''}, {clients} clients",
                f"{r:.2f}x",
                f">= {goals['serve_vs_llamaindex']}x" if is_default else "(reference)",
                r >= goals["serve_vs_llamaindex"] if is_default else None,
            )
    for p in _figures(records, "scale").get("points", []):
        if "error" in p:
            continue
        if p["kind"] != "flat":
            add(
                f"recall@10, {p['kind']} at {p['n']:,}",
                p["recall@10"],
                f">= {goals['recall@10']}",
                p["recall@10"] >= goals["recall@10"],
            )
        if p["n"] >= 1_000_000 and p["kind"] != "flat":
            add(
                f"search p95, {p['kind']} at {p['n']:,}",
                f"{p['search_ms']['p95']} ms",
                f"< {goals['scale_p95_ms_1m']:.0f} ms",
                p["search_ms"]["p95"] < goals["scale_p95_ms_1m"],
            )
    if not rows:
        return []
    return ["## Targets", _table(["target", "measured", "goal", ""], rows)]


def render(records: Records, goals: Mapping[str, float]) -> str:
    """The whole generated block."""
    modes = sorted({str(r.get("mode")) for r in records.values()})
    dates = sorted(str(r.get("date")) for r in records.values())
    head = [
        "<!-- Generated by `make bench` (bench/run.py): edits between the markers are lost. -->",
        f"_Generated from {len(records)} step results ({', '.join(modes)} mode"
        f"{'s' if len(modes) > 1 else ''}), {dates[0] if dates else ''} to "
        f"{dates[-1] if dates else ''}. Timing figures are ratios or pairs measured in the same "
        f"run; the machine was shared with other jobs, so absolute times are noisy. Every "
        f"process ran with `OMP_WAIT_POLICY=PASSIVE` (OpenMP's spin-waiting makes "
        f"multi-threaded PyTorch many times slower on a busy machine, for every contender)._",
    ]
    parts = [
        *head,
        *targets(records, goals),
        *retrieval_section(records),
        *build_section(records),
        *onnx_section(records),
        *llamaindex_section(records),
        *serve_section(records),
        *scale_section(records),
        *faithfulness_section(records),
        *answers_section(records),
    ]
    return "\n\n".join(parts) + "\n"
