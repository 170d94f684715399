"""Calibrated abstention and confidence for small answers: small logistic models in a JSON file.

Small mode describes its best answer by a few numbers (:data:`FEATURES`): the reader's mass on
the span and its no-answer probability, the checker's score of the span, how close the span's
sentence and the best passage are to the question (embedder cosine, the retrieval score that
means the same on every index) and how many of the question's words they share. Two logistic
models read them:

* ``answerable``: the probability that the passages answer the question at all; below the
  stored ``threshold`` small mode says "no answer found";
* ``right``: the probability that the served answer is right (token F1 >= 0.8 against a gold
  answer, or containing one): the ``confidence`` of the response.

Both are fit by ``tandem bench answers --fit FILE`` on a *calibration split* (questions of the
held-out NYT set, and questions of another set asked against it as the unanswerable ones),
never on the questions they are measured on; ``app/answers/calibration.json`` is the shipped
fit, one entry per feature set (``reader+checker``, ``reader``, ``sentence``), each naming the
models it was fit with. A configuration with no entry falls back to the raw score and says so.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

DEFAULT_CALIBRATION = Path(__file__).with_name("calibration.json")
#: Every feature small mode computes; a feature set uses some of them.
FEATURES = (
    "mass", "raw", "no_answer", "checker", "sim", "retrieval", "overlap", "passage_overlap",
    "kind_ok", "score",
)  # fmt: skip
#: The features of each feature set (what the configuration can compute).
FEATURE_SETS: dict[str, tuple[str, ...]] = {
    "reader+checker": (
        "mass", "raw", "no_answer", "checker", "sim", "retrieval", "overlap", "passage_overlap",
        "kind_ok",
    ),
    "reader": (
        "mass", "raw", "no_answer", "sim", "retrieval", "overlap", "passage_overlap", "kind_ok",
    ),
    "sentence": ("score", "sim", "retrieval", "overlap", "passage_overlap", "kind_ok"),
}  # fmt: skip


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, x))))


@dataclass(frozen=True)
class Logistic:
    """``sigmoid(intercept + sum(coef * (x - mean) / scale))`` over named features."""

    features: tuple[str, ...]
    coef: tuple[float, ...]
    intercept: float
    mean: tuple[float, ...]
    scale: tuple[float, ...]

    def prob(self, values: Mapping[str, float]) -> float:
        z = self.intercept
        for name, c, m, s in zip(self.features, self.coef, self.mean, self.scale, strict=True):
            z += c * (float(values.get(name, m)) - m) / (s or 1.0)
        return _sigmoid(z)

    def as_dict(self) -> dict[str, Any]:
        return {
            "features": list(self.features),
            "coef": [round(c, 6) for c in self.coef],
            "intercept": round(self.intercept, 6),
            "mean": [round(m, 6) for m in self.mean],
            "scale": [round(s, 6) for s in self.scale],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Logistic:
        return cls(
            tuple(d["features"]),
            tuple(float(x) for x in d["coef"]),
            float(d["intercept"]),
            tuple(float(x) for x in d["mean"]),
            tuple(float(x) for x in d["scale"]),
        )

    @classmethod
    def fit(
        cls,
        rows: Sequence[Mapping[str, float]],
        labels: Sequence[int],
        features: Sequence[str],
        c_grid: Sequence[float] = (1.0,),
    ) -> Logistic:
        """Fit on ``rows`` (feature dicts) and 0/1 ``labels`` (scikit-learn, L2).

        ``c_grid``: the inverse regularisation strengths tried; with more than one, the one
        with the lowest 5-fold cross-validated log loss on ``rows`` is used (standard model
        selection: the probabilities, not only their order, are what a calibrated model is
        for). Raises ``ValueError`` when ``labels`` hold one class only.
        """
        import numpy as np
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import StratifiedKFold

        x = np.array([[float(r.get(f, 0.0)) for f in features] for r in rows], dtype=np.float64)
        y = np.array(labels, dtype=np.int64)
        mean, scale = x.mean(axis=0), x.std(axis=0)
        scale[scale < 1e-9] = 1.0
        z = (x - mean) / scale
        best_c = float(c_grid[0])
        folds = min(5, int(np.bincount(y, minlength=2).min()))
        if len(c_grid) > 1 and folds >= 2:
            best_loss = math.inf
            for c in c_grid:
                out = np.zeros(len(y))
                splits = StratifiedKFold(folds, shuffle=True, random_state=0).split(z, y)
                for train, held in splits:
                    fold = LogisticRegression(C=c, max_iter=1000).fit(z[train], y[train])
                    out[held] = fold.predict_proba(z[held])[:, 1]
                out = np.clip(out, 1e-9, 1 - 1e-9)
                loss = float(-np.mean(y * np.log(out) + (1 - y) * np.log(1 - out)))
                if loss < best_loss:
                    best_c, best_loss = float(c), loss
        model = LogisticRegression(C=best_c, max_iter=1000).fit(z, y)
        return cls(
            tuple(features),
            tuple(float(c) for c in model.coef_[0]),
            float(model.intercept_[0]),
            tuple(float(m) for m in mean),
            tuple(float(s) for s in scale),
        )


@dataclass(frozen=True)
class Calibration:
    """The abstention and confidence models of one feature set."""

    name: str
    answerable: Logistic
    threshold: float
    """Answer when ``answerable`` reaches this; else "no answer found"."""
    right: Logistic
    fitted_on: dict[str, Any]
    """What it was fit with and on: models, data, split, counts, figures on the split."""

    def judge(self, values: Mapping[str, float]) -> tuple[bool, float, float]:
        """``(answer?, P(answerable), confidence)`` for one answer's features."""
        p = self.answerable.prob(values)
        return p >= self.threshold, p, self.right.prob(values)

    def as_dict(self) -> dict[str, Any]:
        return {
            "answerable": self.answerable.as_dict(),
            "threshold": round(self.threshold, 6),
            "right": self.right.as_dict(),
            "fitted_on": self.fitted_on,
        }

    @classmethod
    def from_dict(cls, name: str, d: Mapping[str, Any]) -> Calibration:
        return cls(
            name,
            Logistic.from_dict(d["answerable"]),
            float(d["threshold"]),
            Logistic.from_dict(d["right"]),
            dict(d.get("fitted_on") or {}),
        )


def load_calibrations(path: str | Path | None = None) -> dict[str, Calibration]:
    """The calibrations in ``path`` (default: the shipped ``calibration.json``), by feature set;
    empty when the file is missing."""
    return dict(_load(str(path or DEFAULT_CALIBRATION)))


@lru_cache(maxsize=4)
def _load(path: str) -> tuple[tuple[str, Calibration], ...]:
    p = Path(path)
    if not p.is_file():
        return ()
    data = json.loads(p.read_text())
    return tuple((k, Calibration.from_dict(k, v)) for k, v in data.get("sets", {}).items())


def save_calibration(calibration: Calibration, path: str | Path) -> None:
    """Write (or replace) ``calibration``'s entry in the JSON file at ``path``."""
    p = Path(path)
    data: dict[str, Any] = json.loads(p.read_text()) if p.is_file() else {}
    data.setdefault(
        "about",
        "Small-mode abstention and confidence (app/answers/calibration.py), fit by "
        "`tandem bench answers --fit` on a calibration split; see BENCHMARKS.md.",
    )
    data.setdefault("sets", {})[calibration.name] = calibration.as_dict()
    p.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n")
    _load.cache_clear()
