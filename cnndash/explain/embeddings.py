"""Embeddings: what a trained model's penultimate layer makes of each validation image, in 2-D.

The features are the input of the model's last ``nn.Linear`` (the classifier head), captured by a forward
hook that one object owns and removes on exit, as :mod:`cnndash.explain.cam` does. They are projected to 2-D with
PCA (linear, axes comparable between runs) and t-SNE (scikit-learn; neighbourhoods kept, distances between
clusters meaningless). The result is cached in the run folder per checkpoint fingerprint
(``embeddings_<checkpoint>.npz``, keyed with the run's data key too), so each checkpoint is embedded once.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE
from threadpoolctl import threadpool_limits
from torch import nn

from cnndash.data.pins import run_data_key
from cnndash.evaluate.metrics import EvaluationError
from cnndash.modes import eval_mode
from cnndash.runs import Run, load_run

CACHE_VERSION = 2  # 2: the data key joined the checkpoint's fingerprint
BATCH_SIZE = 256
MIN_TSNE_IMAGES = 5  # t-SNE needs a perplexity below the number of points


@dataclass
class Embedding:
    """Penultimate features of a run's validation images and their 2-D projections (same order as
    :func:`cnndash.evaluate.predict.predict_run`)."""

    features: np.ndarray  # (N, D) float32
    pca: np.ndarray  # (N, 2)
    tsne: np.ndarray  # (N, 2)
    targets: np.ndarray  # (N,) given class index
    preds: np.ndarray  # (N,) predicted class index
    classes: list[str]


def penultimate_layer(model: nn.Module) -> tuple[str, nn.Linear]:
    """The model's last ``nn.Linear`` (its classifier head), whose input is the penultimate feature."""
    linears = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise EvaluationError("The model has no Linear layer, so it has no penultimate features to embed.")
    return linears[-1]


class PenultimateFeatures:
    """Context manager: while open, every forward pass stores the head's input in ``self.batches``."""

    def __init__(self, model: nn.Module) -> None:
        self.layer = penultimate_layer(model)[1]
        self.batches: list[np.ndarray] = []
        self._handle = None

    def _hook(self, module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        self.batches.append(inputs[0].detach().flatten(1).float().cpu().numpy())

    def __enter__(self) -> PenultimateFeatures:
        self._handle = self.layer.register_forward_hook(self._hook)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None


def project(features: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(PCA, t-SNE) 2-D projections of ``features`` (t-SNE = PCA below ``MIN_TSNE_IMAGES`` points)."""
    n = len(features)
    if n < 2:
        flat = np.zeros((n, 2))
        return flat, flat
    pca = PCA(n_components=min(2, features.shape[1]), random_state=seed).fit_transform(features)
    pca = np.pad(pca, ((0, 0), (0, 2 - pca.shape[1])))
    if n < MIN_TSNE_IMAGES:
        return pca, pca
    tsne = TSNE(n_components=2, perplexity=min(30.0, (n - 1) / 3), init="pca", random_state=seed)
    # One thread: on a shared CPU (a web server, training in the background) OpenMP threads fight for the
    # cores and t-SNE of a few hundred points took 18 s instead of 2 s.
    with threadpool_limits(limits=1):
        return pca, tsne.fit_transform(features.astype(np.float64))


def _cache_path(run: Run, checkpoint: str) -> Path:
    return run.cache_path("embeddings", checkpoint)


def _read_cache(path: Path, digest: str, classes: list[str]) -> Embedding | None:
    try:
        with np.load(path, allow_pickle=False) as d:
            if int(d["version"]) != CACHE_VERSION or str(d["fingerprint"]) != digest:
                return None
            return Embedding(d["features"], d["pca"], d["tsne"], d["targets"], d["preds"], classes)
    except (OSError, KeyError, ValueError):
        return None


def _write_cache(path: Path, emb: Embedding, digest: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, version=np.int64(CACHE_VERSION), fingerprint=np.str_(digest), features=emb.features,
                     pca=emb.pca, tsne=emb.tsne, targets=emb.targets, preds=emb.preds)  # fmt: skip
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def embed_run(run: Run | str | os.PathLike, checkpoint: str = "best", *, use_cache: bool = True) -> Embedding:
    """The :class:`Embedding` of ``run``'s validation images, computed once per checkpoint."""
    run = run if isinstance(run, Run) else load_run(run)
    digest = f"{run.fingerprint(checkpoint)}|{run_data_key(run.config, run.dataset_info)}"
    cache = _cache_path(run, checkpoint)
    classes = list(run.classes)
    if use_cache:
        cached = _read_cache(cache, digest, classes)
        if cached is not None:
            return cached
    model = run.load_model(checkpoint)
    val = run.dataset().val
    logits = []
    with PenultimateFeatures(model) as hook, eval_mode(model), torch.inference_mode():
        for start in range(0, len(val), BATCH_SIZE):
            images = [val[i][0] for i in range(start, min(start + BATCH_SIZE, len(val)))]
            logits.append(model(run.preprocess(images)).float().numpy())
    features = np.concatenate(hook.batches) if hook.batches else np.zeros((0, 0), np.float32)
    preds = np.concatenate(logits).argmax(axis=1) if logits else np.zeros(0, np.int64)
    pca, tsne = project(features)
    emb = Embedding(features.astype(np.float32), pca, tsne, np.asarray(val.targets), preds, classes)
    _write_cache(cache, emb, digest)
    return emb
