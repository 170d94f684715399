"""FAISS, the embedded default: exact when small, HNSW past one size, IVF-PQ past another.

* up to ``hnsw_threshold`` vectors (default 100,000): ``IndexFlatIP``, exact inner product;
* up to ``ivfpq_threshold`` (default 500,000): ``IndexHNSWFlat`` (``M`` 32, efConstruction 200,
  efSearch 128);
* beyond: IVF-PQ (``nlist`` ~ 2·√n lists, ``pq_m`` = dim/8 sub-quantisers of 8 bits, searched
  with ``nprobe`` = nlist/8 lists, 64 to 1024) whose candidates are re-scored from 8-bit
  scalar-quantised copies of the vectors (``refine_k`` 128 times the wanted hits): about a
  quarter of the memory of a flat index, and a training step instead of a graph build.

The defaults reach a recall@10 against exact search of at least 0.98 (see ``bench/scale.py`` and
``tests/unit/stores/test_faiss_large.py``). The thresholds can be changed per build (store
options, which the application fills from its faiss_hnsw_threshold / faiss_ivfpq_threshold
settings).

``device``: ``cpu``, ``cuda`` or ``auto`` (default ``auto``; the application's faiss_device
setting): with
faiss-gpu and a GPU, flat and IVF-PQ indexes are built and searched on the GPU (HNSW has no GPU
version and stays on the CPU); files are always written in the CPU format, so an index built on a
GPU machine opens anywhere. Search parameters are kept beside the index in ``vectors.json``.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from core.errors import UsageError

log = logging.getLogger(__name__)

FILE = "vectors.faiss"
PARAMS_FILE = "vectors.json"
#: Up to this many vectors an exact (flat) index is used; beyond it HNSW.
DEFAULT_HNSW_THRESHOLD = 100_000
#: Beyond this many vectors IVF-PQ (with a scalar-quantised refinement) replaces HNSW.
DEFAULT_IVFPQ_THRESHOLD = 500_000
#: IVF lists searched: ``nlist / 8`` between these bounds (unless given).
NPROBE_RANGE = (64, 1024)
DEFAULT_REFINE_K = 128
#: Training vectors per IVF list (k-means needs ~30-40; more only costs time).
TRAIN_PER_LIST = 40
KMEANS_ITERATIONS = 12
DEVICES = ("auto", "cpu", "cuda")


def gpu_count() -> int:
    """GPUs FAISS can use (0 with faiss-cpu)."""
    getter = getattr(faiss, "get_num_gpus", None)
    try:
        return int(getter()) if getter is not None else 0
    except Exception:  # noqa: BLE001 - a broken CUDA install means no GPU
        return 0


def use_gpu(device: str) -> bool:
    """Whether ``device`` (``auto``, ``cpu``, ``cuda``) means the GPU here."""
    if device not in DEVICES:
        raise UsageError(f"unknown FAISS device {device!r}: choose {', '.join(DEVICES)}")
    if device == "cpu":
        return False
    available = gpu_count() > 0 and hasattr(faiss, "StandardGpuResources")
    if device == "cuda" and not available:
        raise UsageError("FAISS device 'cuda' asked for, but faiss-gpu or a GPU is missing")
    return available


def default_nlist(n: int) -> int:
    """IVF lists for ``n`` vectors: ~2·√n, a power of two, between 64 and 65,536."""
    return int(min(65_536, max(64, 2 ** round(math.log2(max(1.0, 2 * math.sqrt(n)))))))


def default_pq_m(dimension: int) -> int:
    """Sub-quantisers: ``dimension / 8`` (8 dimensions each), else the nearest divisor."""
    target = max(1, dimension // 8)
    for m in sorted(range(1, dimension + 1), key=lambda m: (abs(m - target), -m)):
        if dimension % m == 0:
            return m
    return 1  # pragma: no cover - 1 always divides


class FaissStore:
    backend = "faiss"

    def __init__(
        self,
        folder: Path,
        dimension: int,
        *,
        create: bool = False,
        hnsw_threshold: int | None = None,
        ivfpq_threshold: int | None = None,
        hnsw_m: int = 32,
        ef_construction: int = 200,
        ef_search: int | None = None,
        nlist: int | None = None,
        pq_m: int | None = None,
        nprobe: int | None = None,
        refine_k: int | None = None,
        device: str | None = None,
        seed: int = 1234,
    ) -> None:
        self.folder = Path(folder)
        self.dimension = dimension
        self.hnsw_threshold = int(
            hnsw_threshold if hnsw_threshold is not None else DEFAULT_HNSW_THRESHOLD
        )
        self.ivfpq_threshold = int(
            ivfpq_threshold if ivfpq_threshold is not None else DEFAULT_IVFPQ_THRESHOLD
        )
        self.hnsw_m = hnsw_m
        self.ef_construction = ef_construction
        self.nlist = nlist
        self.pq_m = pq_m
        self.seed = seed
        self.device = device or "auto"
        self.on_gpu = use_gpu(self.device)
        saved: dict[str, Any] = {}
        if not create:
            saved = self._read_params()
            self.hnsw_threshold = int(saved.get("hnsw_threshold", self.hnsw_threshold))
            self.ivfpq_threshold = int(saved.get("ivfpq_threshold", self.ivfpq_threshold))
        self.ef_search = int(ef_search or saved.get("efSearch") or 128)
        self._nprobe = nprobe or saved.get("nprobe")
        self.refine_k = int(refine_k or saved.get("refine_k") or DEFAULT_REFINE_K)
        self.kind = "flat"
        self.index: Any = None
        self._gpu_resources: Any = None
        if not create:
            index = faiss.read_index(str(self.folder / FILE))
            self.kind = _kind_of(index)
            if self.kind == "hnsw":
                index.hnsw.efSearch = self.ef_search
            elif self.kind == "ivfpq":
                self.nlist = int(faiss.extract_index_ivf(index).nlist)
                self.pq_m = int(_ivf_pq(index).pq.M)
            self.index = self._to_device(index)

    @property
    def nprobe(self) -> int:
        """IVF lists searched: as given, else ``nlist / 8`` within :data:`NPROBE_RANGE`."""
        if self._nprobe:
            return int(self._nprobe)
        low, high = NPROBE_RANGE
        return int(min(high, max(low, (self.nlist or 0) // 8)))

    # -- building ----------------------------------------------------------------------------
    def kind_for(self, n: int) -> str:
        """``flat``, ``hnsw`` or ``ivfpq`` for ``n`` vectors."""
        if n > self.ivfpq_threshold:
            return "ivfpq"
        if n > self.hnsw_threshold:
            return "hnsw"
        return "flat"

    def build(self, vectors: np.ndarray) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.kind = self.kind_for(len(vectors))
        if self.kind == "ivfpq":
            self.index = self._build_ivfpq(vectors)
            return
        if self.kind == "hnsw":
            index = faiss.IndexHNSWFlat(self.dimension, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = self.ef_construction
            index.hnsw.efSearch = self.ef_search
        else:
            index = self._to_device(faiss.IndexFlatIP(self.dimension))
        if len(vectors):
            index.add(vectors)
        self.index = index

    def _build_ivfpq(self, vectors: np.ndarray) -> Any:
        n = len(vectors)
        self.nlist = int(self.nlist or default_nlist(n))
        self.pq_m = int(self.pq_m or default_pq_m(self.dimension))
        if self.dimension % self.pq_m:
            raise UsageError(f"pq_m={self.pq_m} does not divide the dimension {self.dimension}")
        factory = f"IVF{self.nlist},PQ{self.pq_m}x8,Refine(SQ8)"
        index = faiss.index_factory(self.dimension, factory, faiss.METRIC_INNER_PRODUCT)
        ivf = faiss.downcast_index(faiss.extract_index_ivf(index))
        ivf.do_polysemous_training = False  # costs minutes, unused by refined searches
        for cp in (ivf.cp, ivf.pq.cp):
            cp.niter = KMEANS_ITERATIONS
            cp.seed = self.seed
            cp.min_points_per_centroid = 8  # small builds (tests) train on what there is
        ivf.cp.max_points_per_centroid = TRAIN_PER_LIST
        ivf.cp.spherical = True  # inner product over unit vectors: unit centroids
        train_n = min(n, self.nlist * TRAIN_PER_LIST)
        rng = np.random.default_rng(self.seed)
        sample = vectors if train_n == n else vectors[np.sort(rng.choice(n, train_n, False))]
        # The coarse k-means (nlist centroids in full dimension) gains from threads, on the GPU
        # when there is one; the PQ's many 8-dimension k-means do not: on a busy machine
        # OpenMP's spinning makes them several times slower with more than one thread.
        quantizer_index = ivf.quantizer
        if self.on_gpu:
            quantizer_index = faiss.index_cpu_to_gpu(
                self._resources(), 0, faiss.IndexFlatIP(self.dimension)
            )
        clustering = faiss.Clustering(self.dimension, self.nlist, ivf.cp)
        clustering.train(sample, quantizer_index)
        if self.on_gpu:
            centroids = faiss.vector_to_array(clustering.centroids).reshape(self.nlist, -1)
            ivf.quantizer.add(centroids)
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        try:
            index.train(sample)  # the quantiser is trained: this trains the PQ and the SQ8
        finally:
            faiss.omp_set_num_threads(threads)
        index.add(vectors)
        log.info("IVF-PQ %s over %d vectors (trained on %d)", factory, n, train_n)
        return index

    # -- devices ------------------------------------------------------------------------------
    def _resources(self) -> Any:
        if self._gpu_resources is None:
            self._gpu_resources = faiss.StandardGpuResources()
        return self._gpu_resources

    def _to_device(self, index: Any) -> Any:
        """A GPU copy of a flat index when on the GPU; anything else stays on the CPU."""
        if self.on_gpu and isinstance(index, faiss.IndexFlat):
            return faiss.index_cpu_to_gpu(self._resources(), 0, index)
        return index

    def _cpu_index(self) -> Any:
        if self.on_gpu and hasattr(faiss, "index_gpu_to_cpu") and _is_gpu(self.index):
            return faiss.index_gpu_to_cpu(self.index)
        return self.index

    # -- persistence --------------------------------------------------------------------------
    def save(self) -> None:
        faiss.write_index(self._cpu_index(), str(self.folder / FILE))
        (self.folder / PARAMS_FILE).write_text(json.dumps(self.params(), indent=2) + "\n")

    def _read_params(self) -> dict[str, Any]:
        try:
            data = json.loads((self.folder / PARAMS_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    @property
    def count(self) -> int:
        return int(self.index.ntotal) if self.index is not None else 0

    # -- search -------------------------------------------------------------------------------
    def search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if queries.ndim == 1:
            queries = queries[None, :]
        k = max(1, min(k, self.count)) if self.count else 1
        if self.count == 0 or (allowed is not None and len(allowed) == 0):
            empty = np.full((len(queries), k), -1, dtype=np.int64)
            return np.zeros((len(queries), k), dtype=np.float32), empty
        selector = None
        if allowed is not None:
            selector = faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64))
        index = self.index
        if selector is not None and _is_gpu(index):
            index = self._cpu_index()  # GPU indexes take no selector: filter on the CPU copy
        params = self._search_params(k, selector)
        scores, rows = index.search(queries, k, params=params)
        return scores, rows

    def _search_params(self, k: int, selector: Any) -> Any:
        if self.kind == "hnsw":
            if selector is None and k <= self.ef_search:
                return None
            return faiss.SearchParametersHNSW(sel=selector, efSearch=max(self.ef_search, k))
        if self.kind == "ivfpq":
            ivf = faiss.SearchParametersIVF(nprobe=self.nprobe)
            if selector is not None:
                ivf.sel = selector
            return faiss.IndexRefineSearchParameters(k_factor=self.refine_k, base_index_params=ivf)
        return faiss.SearchParameters(sel=selector) if selector is not None else None

    def params(self) -> dict[str, Any]:
        out: dict[str, Any] = {"backend": "faiss", "kind": self.kind, "metric": "inner_product"}
        if self.kind == "hnsw":
            out |= {
                "M": self.hnsw_m,
                "efConstruction": self.ef_construction,
                "efSearch": self.ef_search,
            }
        elif self.kind == "ivfpq":
            out |= {
                "nlist": self.nlist,
                "pq_m": self.pq_m,
                "nprobe": self.nprobe,
                "refine": "SQ8",
                "refine_k": self.refine_k,
            }
        out["hnsw_threshold"] = self.hnsw_threshold
        out["ivfpq_threshold"] = self.ivfpq_threshold
        out["device"] = "cuda" if self.on_gpu else "cpu"
        return out

    def close(self) -> None:
        self.index = None
        self._gpu_resources = None


def _kind_of(index: Any) -> str:
    if isinstance(index, faiss.IndexHNSW):
        return "hnsw"
    if isinstance(index, faiss.IndexRefine):
        return "ivfpq"
    return "flat"


def _ivf_pq(index: Any) -> Any:
    base = faiss.downcast_index(index.base_index) if isinstance(index, faiss.IndexRefine) else index
    return faiss.downcast_index(base)


def _is_gpu(index: Any) -> bool:
    return type(index).__name__.startswith("Gpu")
