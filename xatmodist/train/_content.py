"""The content loss of the field trainers: l2, or the frozen AtmoDist encoder's distance.

:class:`Content` is what a downscaler or inpainter task calls on (prediction,
truth): the MSE alone, or the encoder's calibrated feature distance plus an l2
share, optionally per variable (measured or given weights) and with extra
encoders on some variables.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from ..errors import InputError
from ..zoo import Model, load_model, require_task
from ._common import model_id
from ._source import FieldSource

__all__ = ["Content", "load_encoder", "swap_variable"]


class Content:
    """A trainer's content loss, built from its :class:`~xatmodist.train.config.ContentLoss`.

    ``kind`` is (argument name, value) of the trainer's loss choice (e.g.
    ``("content_loss", "l2")``); ``distance(enc)`` returns the task's feature
    distance ``dist(x, truth, *extra, ft=None)`` of an encoder.
    """

    def __init__(self, cfg, kind: tuple[str, str], src: FieldSource, distance: Callable):
        if cfg.balance_variables:
            require_atmodist("balance_variables", kind)
        self.cfg, self.src = cfg, src
        self.enc = load_encoder(cfg.encoder, src) if kind[1] == "atmodist" else None
        self.extra = load_extra_encoders(cfg.extra_encoders, src, kind)
        self.distance = distance
        self.dist = distance(self.enc) if self.enc is not None else None
        self.extra_terms = [(float(e.module.alpha), distance(e), idx) for e, idx in self.extra]
        self.weights = fixed_weights(cfg.variable_weights, src, cfg.balance_variables, kind)

    def to(self, device) -> None:
        """Copies of the loss's encoders on ``device`` (the loaded models stay where they are)."""
        if device.type == "cpu":
            return
        self.enc = _on(self.enc, device)
        self.extra = [(_on(e, device), idx) for e, idx in self.extra]
        self.dist = self.distance(self.enc) if self.enc is not None else None
        self.extra_terms = [
            (alpha, self.distance(e), idx)
            for (alpha, _, idx), (e, _) in zip(self.extra_terms, self.extra, strict=True)
        ]

    def balance(self, truth, baseline, *extra) -> None:
        """Measure the per-variable weights on a simple method's output ``baseline``."""
        dist = self.dist
        self.weights = measured_weights(self.enc, truth, baseline, lambda x, t: dist(x, t, *extra))

    def __call__(self, pred, truth, mse, *extra, per_input: bool = False):
        """The loss of ``pred`` against ``truth`` given their ``mse`` (``extra``: a mask).

        ``per_input``: one loss per input (B,), ``mse`` then being one per input too.
        """
        if self.enc is None:
            return mse
        kw = {"per_input": True} if per_input else {}
        feat = balanced_distance(self.enc, self.dist, pred, truth, self.weights, *extra, **kw)
        loss = float(self.enc.module.alpha) * feat + self.cfg.l2_weight * mse
        for alpha, d, idx in self.extra_terms:
            loss = loss + alpha * d(pred[:, idx], truth[:, idx], *extra, **kw)
        return loss

    def resolved(self) -> dict:
        """The settings as run (models by name and sha256, weights by variable)."""
        return {
            "encoder": model_id(self.enc),
            "variable_weights": None if self.cfg.balance_variables else self.weights_card(),
            "extra_encoders": [model_id(e) for e, _ in self.extra],
        }

    def weights_card(self) -> dict | None:
        """The card's ``training.variable_weights``: per variable name, or None."""
        if self.weights is None:
            return None
        return {s["name"]: w for s, w in zip(self.src.specs, self.weights, strict=True)}

    def card(self) -> dict:
        """The loss's entries of the card's ``training``."""
        enc = self.enc
        return {
            "variable_weights": self.weights_card(),
            "extra_encoders": [
                {
                    "name": e.name,
                    "sha256": e.sha256,
                    "variables": [self.src.specs[k]["name"] for k in idx],
                    "alpha": float(e.module.alpha),
                }
                for e, idx in self.extra
            ],
            "encoder": enc.name if enc is not None else None,
            "encoder_sha256": enc.sha256 if enc is not None else None,
            "l2_weight": self.cfg.l2_weight if enc is not None else 1.0,
        }


def _on(model: Model | None, device) -> Model | None:
    """A copy of ``model`` whose network is on ``device`` (same card, path and weights)."""
    if model is None:
        return None
    import copy

    return Model(card=model.card, module=copy.deepcopy(model.module).to(device), path=model.path)


def _an_encoder(encoder: str | Model, role: str) -> Model:
    enc = load_model(encoder)
    require_task(enc, "encoder", role=role, purpose="the AtmoDist loss")
    return enc


def load_encoder(encoder: str | Model, src: FieldSource) -> Model:
    """The frozen encoder of the AtmoDist loss, checked against the training variables."""
    enc = _an_encoder(encoder, "encoder")
    want = enc.card.variables
    fits = len(want) == len(src.specs) and all(
        _match_variable(w, src.specs) == i for i, w in enumerate(want)
    )
    if not fits:
        mine = [(v.name, v.standard_name) for v in want]
        have = [(s["name"], s.get("standard_name")) for s in src.specs]
        raise InputError(
            f"The encoder {enc.name!r} of the AtmoDist loss takes {mine} "
            f"(name, standard_name); the training data gives {have}. If these are "
            "the same quantities, pass variables= in the encoder's order (and set their "
            "standard_name attributes). Otherwise this encoder cannot judge them: train with "
            "the l2 loss (fit_downscaler(content_loss='l2'), fit_inpainter(loss='l2')), or "
            "first train an encoder on your variables (xatmodist.train.fit_encoder(ds, "
            "variables=[...])) and pass it as encoder=."
        )
    return enc


def _match_variable(var, specs: list[dict]) -> int | None:
    """Index of the training variable that ``var`` (a card's Variable) is.

    The one with the same standard_name, else the one of the same name.
    """
    std = var.standard_name
    if std:
        hits = [i for i, s in enumerate(specs) if s.get("standard_name") == std]
        if len(hits) == 1:
            return hits[0]
    hits = [i for i, s in enumerate(specs) if s["name"] == var.name]
    return hits[0] if len(hits) == 1 else None


def load_extra_encoders(
    encoders: Sequence[str | Model], src: FieldSource, loss: tuple[str, str]
) -> list[tuple[Model, list[int]]]:
    """Each of ``encoders`` with the indices of the training variables it takes.

    A variable is found by its standard_name, else by its name.  ``loss`` is
    (argument name, value) of the trainer's loss: extra encoders need the
    AtmoDist loss.
    """
    if isinstance(encoders, (str, Model)):
        encoders = [encoders]
    encoders = list(encoders)
    if encoders:
        require_atmodist("extra_encoders", loss)
    have = [f"{s['name']} ({s.get('standard_name') or 'no standard_name'})" for s in src.specs]
    out = []
    for e in encoders:
        enc = _an_encoder(e, "extra_encoders")
        idx = []
        for var in enc.card.variables:
            k = _match_variable(var, src.specs)
            if k is None:
                raise InputError(
                    f"The extra encoder {enc.name!r} takes {var.name!r} (standard_name "
                    f"{var.standard_name!r}); the training data has {have}, none of them "
                    "matching. Give the variable that standard_name or name."
                )
            idx.append(k)
        out.append((enc, idx))
    return out


def swap_variable(truth, pred, k: int):
    """``truth`` with variable ``k`` replaced by ``pred``'s (gradients flow through it)."""
    import torch

    return torch.cat([truth[:, :k], pred[:, k : k + 1], truth[:, k + 1 :]], dim=1)


def measured_weights(enc: Model, truth, baseline, distance: Callable) -> list[float]:
    """Weights that make every variable count alike in a per-variable AtmoDist loss.

    ``w_k = mean_j(D_j) / D_k`` with ``D_k = distance(truth with variable k from
    baseline, truth)``: the loss's own distance for a simple method's error
    (bicubic upsampling, a flat fill) in that variable alone.  The mean of
    ``1 / w_k`` is 1, so the weighted sum keeps the size of the plain loss.
    """
    import torch

    with torch.no_grad():
        d = [
            float(distance(swap_variable(truth, baseline, k), truth)) for k in range(truth.shape[1])
        ]
    if not all(math.isfinite(x) and x > 0 for x in d):
        raise InputError(
            f"The encoder {enc.name!r} does not respond to every variable (feature distances "
            f"{d} for a baseline's error in each variable alone), so balance_variables cannot "
            "weight them; train without balance_variables."
        )
    mean = sum(d) / len(d)
    return [mean / x for x in d]


#: what each option of the AtmoDist loss does, for the error when another loss is chosen
_ATMODIST_ONLY = {
    "balance_variables": (
        "balance_variables=True weights the AtmoDist feature distance per variable"
    ),
    "variable_weights": "variable_weights weight the AtmoDist feature distance per variable",
    "extra_encoders": "extra_encoders add feature distances to the AtmoDist loss",
}


def require_atmodist(option: str, loss: tuple[str, str]) -> None:
    """Refuse ``option`` (of ``_ATMODIST_ONLY``) unless ``loss``, (argument, value), is AtmoDist."""
    arg, value = loss
    if value != "atmodist":
        raise InputError(
            f"{_ATMODIST_ONLY[option]}; {arg}={value!r} has none. "
            f"Use {arg}='atmodist' or drop {option}."
        )


def fixed_weights(
    variable_weights, src: FieldSource, balance_variables: bool, loss: tuple[str, str]
) -> list[float] | None:
    """``variable_weights`` (name -> weight) checked and ordered as the training variables."""
    if variable_weights is None:
        return None
    names = [s["name"] for s in src.specs]
    require_atmodist("variable_weights", loss)
    if balance_variables:
        raise InputError(
            "Pass either balance_variables=True (weights measured before training) or "
            "variable_weights (weights given), not both."
        )
    if not hasattr(variable_weights, "keys") or sorted(map(str, variable_weights)) != sorted(
        map(str, names)
    ):
        raise InputError(
            f"variable_weights must map every training variable {names} to a weight, "
            f"e.g. {dict.fromkeys(names, 1.0)}; got {variable_weights!r}."
        )
    w = []
    for n in names:
        x = variable_weights[n]
        ok = isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x >= 0
        if not ok:
            raise InputError(f"variable_weights[{n!r}] must be a finite number >= 0; got {x!r}.")
        w.append(float(x))
    if not any(w):
        raise InputError(
            f"variable_weights are all zero ({variable_weights!r}): the encoder would judge "
            "nothing. Give at least one variable a positive weight, or use content_loss='l2'."
        )
    return w


def balanced_distance(enc: Model, distance: Callable, pred, truth, weights, *extra, **kw):
    """``distance(pred, truth, *extra, **kw)``, or its weighted per-variable sum if ``weights``.

    Per variable ``k``: ``distance`` of the truth with variable ``k`` from
    ``pred`` (the truth's features computed once and passed as ``ft=``);
    variables of weight 0 cost nothing.
    """
    import torch

    if weights is None:
        return distance(pred, truth, *extra, **kw)
    with torch.no_grad():
        ft = enc.module.features(truth)
    return sum(
        w * distance(swap_variable(truth, pred, k), truth, *extra, ft=ft, **kw)
        for k, w in enumerate(weights)
        if w
    )
