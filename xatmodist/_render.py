"""A model card as a markdown page: the documentation's model pages and ``Model._repr_markdown_``.

Built from the typed card (:mod:`xatmodist.cards`); entries a card lacks are
left out.  ``docs/conf.py`` writes one page per shipped model with
:func:`render_card`.
"""

from __future__ import annotations

from .cards import Card, EncoderCard, InpainterCard

__all__ = ["render_card"]

_MD_SPECIAL = set("\\`*_[]<>|#~")

_TRAINING_KEYS = (
    "series",
    "time_steps",
    "block_length",
    "train_blocks",
    "val_blocks",
    "epochs",
    "pairs_per_epoch",
    "batch_size",
    "lr",
    "weight_decay",
    "seed",
    "torch_threads",
    # an analogue metric's fit
    "method",
    "n_states",
    "first",
    "last",
    "components",
    "ridge",
    "train_r2",
)
_HISTORY_COLUMNS = (
    "epoch",
    "train_loss",
    "train_top1",
    "val_top1",
    "val_within1",
    "loss",
    "samples_per_second",
    "seconds",
)
_ENCODER_METRICS = {
    "n_pairs": "pairs",
    "chance_top1": "chance (top-1)",
    "top1": "top-1 accuracy of the lag head",
    "within1": "within ±1 class",
    "mean_abs_class_error": "mean absolute class error",
    "spearman_learned": "Spearman ρ, learned distance vs lag",
    "spearman_l2": "Spearman ρ, l2 distance vs lag",
}


def _hours(seconds) -> str:
    h = float(seconds) / 3600
    return f"{h:g} h"


def _md(text) -> str:
    """Free text from a card as literal markdown (``*``, ``_``, ``|`` ... escaped)."""
    return "".join("\\" + c if c in _MD_SPECIAL else c for c in str(text))


def _fmt(x) -> str:
    if isinstance(x, bool) or x is None:
        return str(x)
    if isinstance(x, str):
        return x if x.startswith("`") and x.endswith("`") else _md(x)
    if isinstance(x, float):
        if 100 <= abs(x) < 1e6:
            return f"{x:.1f}"
        return f"{x:.3f}" if 0.01 <= abs(x) < 100 else f"{x:.3g}"
    return str(x)


def _table(rows, header=("", "")) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(_fmt(c) for c in r) + " |" for r in rows]
    return out + [""]


def render_card(card: Card, files: str | None = None, load_as: str | None = None) -> str:
    """Markdown page for one model card (missing fields are left out).

    ``files``: where the card and weights lie, as shown on the page (default
    ``pretrained/<name>/``); ``load_as``: the argument of ``load_model`` in
    the page's example (default the name).
    """
    files = f"pretrained/{card.name}/" if files is None else files
    load_as = card.name if load_as is None else load_as
    lines = [f"# `{card.name}`", ""]
    lines += [
        f"*{card.task}* — architecture `{card.architecture}`, "
        f"files in `{files}` (`card.json`, `weights.safetensors`).",
        "",
        "```python",
        "import xatmodist",
        f'model = xatmodist.load_model("{load_as}")',
        "```",
        "",
    ]
    if card.task == "analog":
        enc = card.encoder
        lines += [
            f"Reads the fields with the encoder `{enc['name']}` (sha256 "
            f"`{str(enc.get('sha256'))[:16]}...`) and predicts each state's successor "
            f"{_hours(card.lead_seconds)} later; pass it as `model=` to `xatmodist.analogs`.",
            "",
        ]
    lines += _data(card) + _grid(card) + _normalisation(card) + _distance(card)
    lines += _training(card.training or {}) + _heldout(card)
    if card.sha256:
        lines += [f"Weights sha256: `{card.sha256}`", ""]
    return "\n".join(lines)


def _data(card: Card) -> list[str]:
    lines = ["## Data", ""]
    if (card.training or {}).get("data"):
        lines += [_md(card.training["data"]), ""]
    rows = [
        (f"`{v.name}`", f"`{v.standard_name or ''}`", f"`{v.units or ''}`") for v in card.variables
    ]
    return lines + _table(rows, ("variable", "standard_name", "units"))


def _grid(card: Card) -> list[str]:
    grid = card.grid.to_dict()
    rows = [(k, grid[k]) for k in ("nlat", "nlon", "dlat", "dlon", "global") if k in grid]
    rows.append(("patch size (grid points)", card.patch_size))
    if isinstance(card, EncoderCard):
        if "feature_reduction" in card.key_order or card.feature_reduction is not None:
            rows.append(("feature grid reduction", card.feature_reduction))
        lc = card.lag_classes
        rows.append(("lag step", _hours(card.lag_step_seconds)))
        rows.append(("lag classes", f"{len(lc)}: {_hours(lc[0])} ... {_hours(lc[-1])}"))
    return ["## Grid, patches and lag classes", ""] + _table(rows, ("", "value"))


def _normalisation(card: Card) -> list[str]:
    norm = card.normalisation
    if not norm:
        return []
    lines = ["## Normalisation", ""]
    if norm.get("method"):
        lines += [_md(norm["method"]), ""]
    names = card.variable_names
    rows = []
    for i, n in enumerate(names):
        mean = norm.get("mean", [None] * len(names))[i]
        std = norm.get("std", [None] * len(names))[i]
        rows.append((f"`{n}`", mean, std, n in norm.get("log_variables", [])))
    return lines + _table(rows, ("variable", "mean", "std", "log transform"))


def _distance(card: Card) -> list[str]:
    dist = card.distance if isinstance(card, EncoderCard) else None
    if not dist:
        return []
    rows = [(k, dist[k]) for k in ("definition", "alpha", "alpha_fit") if k in dist]
    return ["## Distance", ""] + _table(rows, ("", "value"))


def _training(training: dict) -> list[str]:
    if not training:
        return []
    lines = ["## Training", ""]
    rows = [(k, training[k]) for k in _TRAINING_KEYS if k in training]
    if "train_seconds" in training:
        s = float(training["train_seconds"])
        rows.append(("training time", f"{s / 60:.1f} min ({s:.0f} s)"))
    lines += _table(rows, ("", "value"))
    if training.get("command"):
        lines += ["Reproduce with", "", "```bash", training["command"], "```", ""]
    hist = training.get("history") or []
    if hist:
        cols = [c for c in _HISTORY_COLUMNS if c in hist[0]]
        lines += ["Per epoch (validation: held-out time blocks of the training runs):", ""]
        lines += _table([[h.get(c) for c in cols] for h in hist], cols)
    return lines


def _heldout(card: Card) -> list[str]:
    held = card.heldout
    lines = ["## Held-out metrics", ""]
    if not held:
        return lines + ["This card records no held-out metrics.", ""]
    if held.get("data"):
        lines += [f"Data: {_md(held['data'])}.", ""]
    rows = _encoder_metric_rows(held)
    if rows:
        lines += _table(rows, ("metric", "value"))
    if "members" in held:  # a sampling model, evaluated as an ensemble
        lines += _ensemble_tables(held)
    elif isinstance(card, InpainterCard):
        lines += _inpainter_tables(card.name, held)
    elif card.task == "analog":
        lines += _analog_tables(held)
    else:
        lines += _downscaler_tables(card.name, held)
    if "per_class_top1" in held and isinstance(card, EncoderCard):
        rows = [
            (_hours(lag), acc)
            for lag, acc in zip(card.lag_classes, held["per_class_top1"], strict=False)
        ]
        lines += ["Top-1 accuracy per lag class:", ""]
        lines += _table(rows, ("lag", "top-1"))
    lines += _lag_curve(held.get("lag_curve")) + _diurnal(held.get("diurnal"))
    if held.get("command"):
        lines += ["Re-measure with", "", "```bash", held["command"], "```", ""]
    return lines


def _analog_tables(held: dict) -> list[str]:
    """Analogue-forecast RMSE / std and anomaly correlation per lead and search metric."""
    if held.get("what"):
        lines = [f"{_md(held['what'])}.", ""]
    else:
        lines = []
    leads = held.get("leads") or []
    for key, title in (("rmse", "RMSE / std"), ("acc", "anomaly correlation")):
        table = held.get(key) or {}
        rows = [[name, *(_fmt(x) for x in values)] for name, values in table.items()]
        if rows:
            lines += [f"{title} by lead (`this_model`: this metric):", ""]
            lines += _table(rows, ("search metric", *leads))
    return lines


def _encoder_metric_rows(held: dict) -> list[tuple]:
    rows = [(label, held[k]) for k, label in _ENCODER_METRICS.items() if k in held]
    if held.get("spearman_learned_ci95"):
        lo, hi = held["spearman_learned_ci95"]
        rows.append(("Spearman ρ, learned: bootstrap 95% interval", f"{lo:.3f} .. {hi:.3f}"))
    for k, label in (
        ("learned_nearest_centroid", "learned-distance nearest centroid"),
        ("l2_nearest_centroid", "l2 nearest centroid"),
    ):
        if isinstance(held.get(k), dict):
            top1 = held[k].get("top1", float("nan"))
            within1 = held[k].get("within1", float("nan"))
            rows.append((f"{label}: top-1 / ±1", f"{top1:.3f} / {within1:.3f}"))
    return rows


def _inpainter_tables(name: str, held: dict) -> list[str]:
    lines = []
    for hole, mine in (held.get("this_model") or {}).items():
        methods = {name: mine, **(held.get("baselines") or {}).get(hole, {})}
        rows = [
            (f"`{method}`", f"`{var}`", m[var]["rmse"], m[var]["hf_spectral_error"])
            for method, m in methods.items()
            for var in m
            if isinstance(m[var], dict)
        ]
        lines += [f"Holes of {hole} cells:", ""]
        lines += _table(rows, ("method", "variable", "RMSE / std in the hole", "spectral error"))
    return lines


#: the columns of an ensemble's table: (key in the card, header)
_ENSEMBLE_COLUMNS = (
    ("crps", "CRPS / std"),
    ("spread_skill", "spread / skill"),
    ("mean_rmse", "ensemble-mean RMSE / std"),
    ("member_band_spectral_error", "member band spectral error"),
    ("member_hf_spectral_error", "member spectral error"),
    ("member_semivariogram_error", "member semivariogram error"),
)


def _ensemble_tables(held: dict) -> list[str]:
    """A sampling model's probabilistic scores per variable (per hole size for inpainters)."""
    mine = held.get("this_model") or {}
    groups = mine if all(k not in ("vo", "d") and "x" in k for k in mine) else {"": mine}
    lines = [f"An ensemble of {held['members']} members (seed {held.get('seed', 0)}).", ""]
    det = held.get("deterministic_mae") or {}
    for group, scores in groups.items():
        variables = [v for v, m in scores.items() if isinstance(m, dict)]
        if not variables:
            continue
        cols = [(k, h) for k, h in _ENSEMBLE_COLUMNS if k in scores[variables[0]]]
        rows = [(f"`{v}`", *(scores[v][k] for k, _ in cols)) for v in variables]
        if group:
            lines += [f"Holes of {group} cells:", ""]
        lines += _table(rows, ("variable", *(h for _, h in cols)))
        maes = det.get(group, det) if group else det
        mae_rows = [
            (f"`{method}`", *(m.get(v, float("nan")) for v in variables))
            for method, m in maes.items()
            if isinstance(m, dict) and all(isinstance(m.get(v), float) for v in variables)
        ]
        if mae_rows:
            lines += ["Mean absolute error / std of the deterministic fills or refinements:", ""]
            lines += _table(mae_rows, ("method", *(f"`{v}`" for v in variables)))
    return lines


def _downscaler_tables(name: str, held: dict) -> list[str]:
    lines = []
    for method in ("this_model", "bicubic"):
        if isinstance(held.get(method), dict):
            title = name if method == "this_model" else "bicubic interpolation"
            rows = [
                (f"`{var}`", m["rmse"], m["band_spectral_error"], m["semivariogram_error"])
                for var, m in held[method].items()
                if isinstance(m, dict)
            ]
            lines += [f"{title}:", ""]
            lines += _table(
                rows, ("variable", "RMSE / std", "band spectral error", "semivariogram error")
            )
    return lines


def _lag_curve(curve) -> list[str]:
    if not isinstance(curve, dict):
        return []
    rows = list(zip(curve["lag_hours"], curve["learned"], curve["l2"], strict=False))
    lines = ["Mean distance against lag over the held-out data (`lag_curve`):", ""]
    lines += _table(rows, ("lag (h)", "learned", "l2"))
    return lines + [
        f"The learned distance grows with every lag: {curve['learned_monotonic']}; "
        f"the l2 distance: {curve['l2_monotonic']}.",
        "",
    ]


def _diurnal(day) -> list[str]:
    if not isinstance(day, dict):
        return []
    rows = [
        ("predicted lag has the true lag's time of day", day["same_time_of_day"]),
        ("  by chance", day["chance_same_time_of_day"]),
        ("top-1 among those (beyond the diurnal phase)", day["top1_given_time_of_day"]),
    ]
    return ["The diurnal phase:", ""] + _table(rows, ("", "share"))
