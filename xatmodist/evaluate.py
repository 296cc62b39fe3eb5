"""Held-out evaluation of trained models (what the cards' ``metrics.heldout`` report)."""

from __future__ import annotations

import numpy as np

from .errors import InputError
from .zoo import load_model

__all__ = ["evaluate_encoder"]


def _bootstrap_ci(x: np.ndarray, y: np.ndarray, seed: int, n: int = 200) -> list[float]:
    """95% percentile interval of Spearman rho(x, y) over ``n`` bootstrap resamples of the pairs.

    The spread a different draw of pairs from the same data would give (pairs are the
    unit of sampling); it does not cover run-to-run differences of the data.
    """
    from scipy.stats import rankdata

    rng = np.random.default_rng([seed, 104729])
    rhos = []
    for _ in range(n):
        i = rng.integers(0, len(x), len(x))
        rhos.append(np.corrcoef(rankdata(x[i]), rankdata(y[i]))[0, 1])
    lo, hi = np.percentile(rhos, [2.5, 97.5])
    return [float(lo), float(hi)]


def evaluate_encoder(
    model,
    ds,
    *,
    n_pairs: int = 4096,
    seed: int = 1,
    variables=None,
    dim=None,
    spatial_dims=None,
    batch: int = 256,
) -> dict:
    """Held-out metrics of an encoder on fresh data (all of ``ds`` is used).

    Returns top-1 and +-1-class accuracy of the lag head, the confusion matrix,
    Spearman rho between true lag and (a) the learned distance, (b) the l2
    distance of the normalised fields, (c) the head's expected lag, all on the
    same patch pairs (for (a) also ``spearman_learned_ci95``, a bootstrap 95%
    interval over the pairs: the spread another draw of pairs would give), and the
    accuracy of
    an l2 nearest-centroid classifier (centroids fitted on one half of the
    pairs, scored on the other), and ``variable_share``: for each variable, the
    mean learned distance when only that variable moves on to the later time,
    as a fraction of the sum over variables (which variables the distance sees).
    """
    import torch
    from scipy.stats import spearmanr

    from .train._content import swap_variable
    from .train._pairs import make_blocks
    from .train._source import FieldSource
    from .train.encoder import PairStream

    model = load_model(model, task="encoder")
    card, net = model.card, model.module
    names = list(variables) if variables is not None else [x.name for x in card.variables]
    src = FieldSource(ds, names, dim, spatial_dims)
    n_classes = len(card.lag_classes)
    stride_f = card.lag_step_seconds / src.step_seconds
    stride = int(round(stride_f))
    if abs(stride_f - stride) > 1e-6 or stride < 1:
        raise InputError(
            f"The data's time step ({src.step_seconds} s) does not divide the model's lag step "
            f"({card.lag_step_seconds} s)."
        )
    blocks, _ = make_blocks(
        n_series=src.n_series,
        n_time=src.n_time,
        block_length=src.n_time,
        max_lag=n_classes * stride,
        val_every=0,
    )
    stream = PairStream(src, n_classes, stride, card.patch_size, None)
    a, b, c = stream.fixed(blocks, n_pairs, seed)
    a, b = torch.from_numpy(a), torch.from_numpy(b)
    with torch.inference_mode():
        logits, dist, l2, alone = [], [], [], []
        for i in range(0, len(c), batch):
            xa, xb = a[i : i + batch], b[i : i + batch]
            logits.append(net(xa, xb))
            dist.append(net.distance(xa, xb))
            l2.append((net.normaliser(xa) - net.normaliser(xb)).pow(2).mean(dim=(1, 2, 3)))
            # the distance when only one variable moves on to the later time (xa encoded once)
            fa = net.features(xa)
            alone.append(
                torch.stack(
                    [
                        net.alpha * net.feature_distance(net.features(swap_variable(xa, xb, k)), fa)
                        for k in range(xa.shape[1])
                    ],
                    dim=1,
                )
            )
    logits = torch.cat(logits)
    expected = (torch.softmax(logits, 1) * torch.arange(n_classes)).sum(1).numpy()
    pred = logits.argmax(1).numpy()
    dist, l2 = torch.cat(dist).numpy(), torch.cat(l2).numpy()
    alone = torch.cat(alone).mean(0).numpy()
    err = np.abs(pred - c)
    conf = np.zeros((n_classes, n_classes), dtype=int)
    np.add.at(conf, (c, pred), 1)
    half = len(c) // 2
    centroid = {}
    for name, d in (("l2", l2), ("learned", dist)):
        cent = np.array([d[:half][c[:half] == k].mean() for k in range(n_classes)])
        guess = np.abs(d[half:, None] - cent[None, :]).argmin(1)
        e = np.abs(guess - c[half:])
        centroid[name] = {"top1": float((e == 0).mean()), "within1": float((e <= 1).mean())}
    return {
        "n_pairs": int(len(c)),
        "chance_top1": 1.0 / n_classes,
        "top1": float((err == 0).mean()),
        "within1": float((err <= 1).mean()),
        "mean_abs_class_error": float(err.mean()),
        "per_class_top1": [float(conf[k, k] / max(conf[k].sum(), 1)) for k in range(n_classes)],
        "confusion": conf.tolist(),
        "spearman_learned": float(spearmanr(dist, c).statistic),
        "spearman_learned_ci95": _bootstrap_ci(dist, c, seed),
        "spearman_l2": float(spearmanr(l2, c).statistic),
        "spearman_expected_lag": float(spearmanr(expected, c).statistic),
        "l2_nearest_centroid": centroid["l2"],
        "learned_nearest_centroid": centroid["learned"],
        "variable_share": {
            str(name): float(x / alone.sum()) for name, x in zip(names, alone, strict=True)
        },
    }
