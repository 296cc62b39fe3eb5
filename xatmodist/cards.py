"""Typed model cards: one dataclass per task, read from and written to ``card.json``.

A card holds everything needed to rebuild and use a network (architecture,
args, variables, grid, patch size, task-specific entries), its training
record and its held-out metrics.  :meth:`Card.from_dict` validates a card once
(every :class:`~xatmodist.errors.ModelError` about a card's structure comes
from here) and returns the card of its task; :meth:`Card.to_dict` writes it
back with the keys in the order they were read, so that re-saving a shipped
model gives the same ``card.json``.  Keys this version does not know are kept
in :attr:`Card.extra`.

Examples
--------
>>> from xatmodist.cards import Card
>>> card = Card.from_dict(xatmodist.load_model("atmodist-swe-vd").card.to_dict())
>>> card.task, card.variable_names
('encoder', ['vo', 'd'])
"""

from __future__ import annotations

import copy
import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .errors import ModelError

__all__ = [
    "Card",
    "DownscalerCard",
    "EncoderCard",
    "Grid",
    "InpainterCard",
    "AnalogCard",
    "TASKS",
    "Variable",
]

TASKS = ("encoder", "downscaler", "inpainter", "analog")
REQUIRED = ("name", "task", "architecture", "args", "variables", "grid", "patch_size")
#: the order of the keys a card gains after it was read (sha256 on save, ...)
KEY_ORDER = (
    "name",
    "version",
    "task",
    "architecture",
    "args",
    "factor",
    "variables",
    "grid",
    "patch_size",
    "min_input_size",
    "max_hole_radius",
    "feature_reduction",
    "lag_step_seconds",
    "lag_classes",
    "encoder",
    "lead_seconds",
    "normalisation",
    "distance",
    "training",
    "metrics",
    "sha256",
    "weights_bytes",
)


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_number(x) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


@dataclass(frozen=True)
class Variable:
    """An input variable: ``name`` in the model, CF ``standard_name`` and ``units``."""

    name: str
    standard_name: str | None = None
    units: str | None = None
    #: any other keys of the card's entry, kept as they were
    extra: dict = field(default_factory=dict, hash=False, repr=False)

    @classmethod
    def from_dict(cls, d: dict) -> Variable:
        """The variable of one entry of a card's ``variables`` list."""
        rest = {k: v for k, v in d.items() if k not in ("name", "standard_name", "units")}
        return cls(d["name"], d.get("standard_name"), d.get("units"), rest)

    def to_dict(self) -> dict:
        """The card entry ``{name, standard_name, units}`` (unset entries left out)."""
        out: dict[str, Any] = {"name": self.name}
        if self.standard_name is not None:
            out["standard_name"] = self.standard_name
        if self.units is not None:
            out["units"] = self.units
        return {**out, **self.extra}


@dataclass(frozen=True)
class Grid:
    """The grid a model was trained on (older cards may lack all but the spacing)."""

    dlat: float
    dlon: float
    nlat: int | None = None
    nlon: int | None = None
    #: the grid wraps around in longitude (JSON key ``"global"``)
    is_global: bool | None = None
    lat_descending: bool | None = None
    extra: dict = field(default_factory=dict, hash=False, repr=False)

    _KEYS: ClassVar[tuple[tuple[str, str], ...]] = (
        ("nlat", "nlat"),
        ("nlon", "nlon"),
        ("dlat", "dlat"),
        ("dlon", "dlon"),
        ("global", "is_global"),
        ("lat_descending", "lat_descending"),
    )

    @classmethod
    def from_dict(cls, d: dict) -> Grid:
        """The grid of a card's ``grid`` object."""
        known = {attr: d[key] for key, attr in cls._KEYS if key in d}
        rest = {k: v for k, v in d.items() if k not in {key for key, _ in cls._KEYS}}
        return cls(**known, extra=rest)

    def to_dict(self) -> dict:
        """The card's ``grid`` object (unset entries left out)."""
        out = {key: getattr(self, attr) for key, attr in self._KEYS}
        return {**{k: v for k, v in out.items() if v is not None}, **self.extra}

    @property
    def descending(self) -> bool:
        """Whether latitude runs north to south (the default when a card does not say)."""
        return True if self.lat_descending is None else bool(self.lat_descending)

    @property
    def shape_text(self) -> str:
        """``"64 x 128 global"``, ``"25 x 53 regional"`` or the spacing if the size is unknown."""
        if self.nlat is None or self.nlon is None:
            return f"{self.dlat:.4g} x {self.dlon:.4g} deg"
        kind = {True: " global", False: " regional"}.get(self.is_global, "")
        return f"{self.nlat} x {self.nlon}{kind}"


@dataclass(kw_only=True)
class Card:
    """The card of a model of any task (see :meth:`from_dict` for the subclass per task).

    Attributes
    ----------
    name, version, task, architecture : str
        ``architecture`` names a class of :mod:`xatmodist.nn`, rebuilt with ``args``.
    args : dict
        Keyword arguments of the architecture.
    variables : list of Variable
        The input variables, in channel order.
    grid : Grid
        The training grid.
    patch_size : int
        Patch side in grid points.
    normalisation, training, metrics : dict
        Free-form records: the input statistics, the training record (data,
        settings, ``history``, ``config``...), the metrics (``heldout``...).
    sha256, weights_bytes
        Of the weights file, filled by :meth:`xatmodist.Model.save`.
    extra : dict
        Any other keys of the JSON card, kept as they were.
    """

    name: str
    task: str
    architecture: str
    args: dict
    variables: list[Variable]
    grid: Grid
    patch_size: int
    version: Any = None
    normalisation: dict | None = None
    training: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    sha256: Any = None
    weights_bytes: int | None = None
    extra: dict = field(default_factory=dict)
    #: the JSON keys in the order they were read (to_dict writes them back so)
    key_order: tuple = field(default=(), repr=False, compare=False)

    #: task-specific JSON keys of the subclass (set per subclass)
    TASK_KEYS: ClassVar[tuple[str, ...]] = ()

    # -- reading and writing ---------------------------------------------------

    @classmethod
    def from_dict(cls, d: Any, source: str = "card") -> Card:
        """Validate a card read from JSON and return the card of its task.

        Raises :class:`~xatmodist.errors.ModelError` naming ``source`` (the
        file) when the card lacks a required key or an entry has the wrong
        type.  ``d`` is not modified; the card holds its own copies.
        """
        _check_common(d, source)
        kind = _BY_TASK[d["task"]]
        kind._check_task(d, source)
        d = copy.deepcopy(d)
        base = {f.name for f in dataclasses.fields(Card)} - {"extra", "key_order"}
        known = base | set(kind.TASK_KEYS)
        values = {k: d[k] for k in known if k in d}
        values["variables"] = [Variable.from_dict(v) for v in d["variables"]]
        values["grid"] = Grid.from_dict(d["grid"])
        for k in ("training", "metrics"):
            if values.get(k) is None:
                values.pop(k, None)
        extra = {k: v for k, v in d.items() if k not in known}
        return kind(**values, extra=extra, key_order=tuple(d))

    def to_dict(self) -> dict:
        """The card as a JSON-ready dict: keys in the order read, then new ones (KEY_ORDER)."""
        values: dict[str, Any] = {}
        for k in KEY_ORDER:
            if k not in self._json_keys():
                continue
            v = getattr(self, k)
            if k == "variables":
                v = [x.to_dict() for x in v]
            elif k == "grid":
                v = v.to_dict()
            if k in self.key_order or v not in (None, {}, []):
                values[k] = copy.deepcopy(v)
        values.update(copy.deepcopy(self.extra))
        order = [k for k in self.key_order if k in values]
        return {k: values[k] for k in order + [k for k in values if k not in order]}

    def to_json(self) -> str:
        """The text of ``card.json``."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"

    @classmethod
    def _json_keys(cls) -> set[str]:
        return {f.name for f in dataclasses.fields(cls)} - {"extra", "key_order"}

    @classmethod
    def _check_task(cls, d: dict, source: str) -> None:
        """The task-specific checks (none for the base)."""

    # -- derived -----------------------------------------------------------------

    @property
    def variable_names(self) -> list[str]:
        """Names of the input variables, in channel order."""
        return [v.name for v in self.variables]

    @property
    def variable_dicts(self) -> list[dict]:
        """The variables as ``{name, standard_name, units}`` dicts (the checks take those)."""
        return [v.to_dict() for v in self.variables]

    @property
    def data_kind(self) -> str | None:
        """What the model learned on: ``"reanalysis"``, or None (the simulator)."""
        return self.training.get("data_kind")

    @property
    def heldout(self) -> dict:
        """The held-out metrics (``metrics["heldout"]``; empty if the card has none)."""
        return (self.metrics or {}).get("heldout") or {}

    @property
    def input_factor(self) -> int:
        """How much coarser the input grid is than :attr:`grid` (a downscaler's factor, else 1)."""
        return 1

    @property
    def size_mb(self) -> float | None:
        """Size of the weights file in MB (None before the first save)."""
        return None if self.weights_bytes is None else self.weights_bytes / 1e6

    @property
    def headline(self) -> str:
        """The main held-out number as a short phrase (``''`` if the card has none)."""
        return self._rmse_headline(self.heldout.get("this_model") or {})

    @property
    def noise_maps(self) -> int:
        """Noise maps of a generator that samples (``args.noise``); 0 for every other model."""
        return int(self.args.get("noise", 0) or 0)

    def _rmse_headline(self, mine: dict) -> str:
        first = self.variables[0].name
        scores = mine.get(first, {})
        where = f", {mine['holes']} holes" if "holes" in mine else ""
        if isinstance(scores, dict) and "rmse" in scores:
            return f"held-out {first} RMSE {scores['rmse']:.3f}{where}"
        if isinstance(scores, dict) and "crps" in scores:  # a sampling model's ensemble
            members = self.heldout.get("members", "?")
            return f"held-out {first} CRPS {scores['crps']:.3f} ({members} members{where})"
        return ""

    @property
    def summary(self) -> str:
        """One line: what the model does, on which variables and grid."""
        loss = self.training.get("content_loss") or self.training.get("loss")
        what = self._what()
        if loss and self.task != "encoder":
            what += f", {loss} loss"
        if self.training.get("adversarial"):
            what += " + adversarial"
        if self.noise_maps:
            what += f", samples ({self.noise_maps} noise maps + CRPS)"
        extra = [e.get("name") for e in self.training.get("extra_encoders") or []]
        if extra:
            what += f" (+ {', '.join(map(str, extra))})"
        return f"{what}; {', '.join(self.variable_names)} on {self.grid.shape_text}"

    def _what(self) -> str:
        return self.task


@dataclass(kw_only=True)
class EncoderCard(Card):
    """The card of an AtmoDist encoder: lag classes and distance."""

    lag_step_seconds: float
    lag_classes: list[float]
    feature_reduction: int | None = None
    distance: dict | None = None

    TASK_KEYS: ClassVar[tuple[str, ...]] = (
        "lag_step_seconds",
        "lag_classes",
        "feature_reduction",
        "distance",
    )

    @classmethod
    def _check_task(cls, d: dict, source: str) -> None:
        for k in ("lag_step_seconds", "lag_classes"):
            if k not in d:
                raise ModelError(f"{source}: an encoder card needs {k!r}.")
        step = d["lag_step_seconds"]
        if not _is_number(step) or not step > 0:
            raise ModelError(
                f"{source}: 'lag_step_seconds' must be a positive number, got {step!r}."
            )
        lc = d["lag_classes"]
        if not isinstance(lc, list) or not lc or not all(_is_number(x) and x > 0 for x in lc):
            raise ModelError(
                f"{source}: 'lag_classes' must be a non-empty list of positive numbers "
                f"(seconds), got {lc!r}."
            )

    @property
    def lag_step(self):
        """The lag step as ``pandas.Timedelta``."""
        import pandas as pd

        return pd.Timedelta(seconds=float(self.lag_step_seconds))

    @property
    def lag_classes_timedelta(self):
        """The lag classes as ``pandas.TimedeltaIndex``."""
        import numpy as np
        import pandas as pd

        return pd.to_timedelta(np.asarray(self.lag_classes, dtype=np.float64), unit="s")

    @property
    def max_lag(self):
        """The largest lag class as ``pandas.Timedelta``."""
        import pandas as pd

        return pd.Timedelta(seconds=float(self.lag_classes[-1]))

    @property
    def headline(self) -> str:
        """Held-out Spearman rho of the learned distance and the lag head's top-1."""
        held = self.heldout
        if "spearman_learned" not in held:
            return ""
        top1 = held.get("top1", float("nan"))
        return f"held-out rho {held['spearman_learned']:.3f} (top-1 {top1:.3f})"

    def _what(self) -> str:
        step = self.lag_step_seconds / 3600
        return f"encoder, {len(self.lag_classes)} lags of {step:g} h"


@dataclass(kw_only=True)
class DownscalerCard(Card):
    """The card of a downscaler: ``factor`` (its ``grid`` is the output grid)."""

    factor: int

    TASK_KEYS: ClassVar[tuple[str, ...]] = ("factor",)

    @classmethod
    def _check_task(cls, d: dict, source: str) -> None:
        if not _is_int(d.get("factor")) or d["factor"] < 1:
            raise ModelError(
                f"{source}: a downscaler card needs an integer 'factor' (at least 1); "
                f"got {d.get('factor')!r}."
            )

    @property
    def input_factor(self) -> int:
        """The refinement factor: the input grid is this much coarser."""
        return int(self.factor)

    def _what(self) -> str:
        return f"downscaler x{self.factor}"


@dataclass(kw_only=True)
class InpainterCard(Card):
    """The card of an inpainter: the largest hole and the smallest field it takes."""

    max_hole_radius: float
    min_input_size: int | None = None

    TASK_KEYS: ClassVar[tuple[str, ...]] = ("min_input_size", "max_hole_radius")

    @classmethod
    def _check_task(cls, d: dict, source: str) -> None:
        r = d.get("max_hole_radius")
        if not _is_number(r) or not r > 0:
            raise ModelError(
                f"{source}: an inpainter card needs a positive number 'max_hole_radius' "
                f"(grid cells); got {r!r}."
            )
        m = d.get("min_input_size")
        if m is not None and (not _is_int(m) or m < 1):
            raise ModelError(
                f"{source}: an inpainter's 'min_input_size' must be a positive int, got {m!r}."
            )

    @property
    def headline(self) -> str:
        """Held-out RMSE of the first variable in the smallest holes."""
        mine = self.heldout.get("this_model") or {}
        if mine:  # by hole size: the smallest first
            size = sorted(mine)[0]
            mine = {**mine[size], "holes": size}
        return self._rmse_headline(mine)

    def _what(self) -> str:
        return f"inpainter, holes up to {self.max_hole_radius:g} cells"


@dataclass(kw_only=True)
class AnalogCard(Card):
    """The card of an analogue metric: the encoder it reads and the lead it predicts."""

    encoder: dict
    lead_seconds: float

    TASK_KEYS: ClassVar[tuple[str, ...]] = ("encoder", "lead_seconds")

    @classmethod
    def _check_task(cls, d: dict, source: str) -> None:
        enc = d.get("encoder")
        if not isinstance(enc, dict) or not isinstance(enc.get("name"), str):
            raise ModelError(
                f"{source}: an analogue metric's card needs 'encoder': {{name, sha256}} (the "
                f"encoder whose features it maps); got {enc!r}."
            )
        lead = d.get("lead_seconds")
        if not _is_number(lead) or not lead > 0:
            raise ModelError(f"{source}: 'lead_seconds' must be a positive number, got {lead!r}.")

    @property
    def headline(self) -> str:
        """Held-out analogue-forecast RMSE at the first lead against Euclidean analogues."""
        first = (self.heldout.get("leads") or [None])[0]
        rows = self.heldout.get("rmse") or {}
        if first is None or "this_model" not in rows or "l2" not in rows:
            return ""
        mine, l2 = rows["this_model"][0], rows["l2"][0]
        return f"held-out {first} analogue RMSE {mine:.3f} (Euclidean {l2:.3f})"

    def _what(self) -> str:
        hours = self.lead_seconds / 3600
        return f"analogue metric of {self.encoder['name']}, successors {hours:g} h later"


_BY_TASK: dict[str, type[Card]] = {
    "encoder": EncoderCard,
    "downscaler": DownscalerCard,
    "inpainter": InpainterCard,
    "analog": AnalogCard,
}


def _check_common(d: Any, source: str) -> None:
    """The checks every card passes, whatever its task."""
    if not isinstance(d, dict):
        raise ModelError(f"{source}: expected a JSON object, got {type(d).__name__}.")
    missing = [k for k in REQUIRED if k not in d]
    if missing:
        raise ModelError(
            f"{source}: missing required keys {missing}; a card needs {list(REQUIRED)}. "
            "Regenerate it with Model.save()."
        )
    if d["task"] not in TASKS:
        raise ModelError(f"{source}: task must be one of {TASKS}, got {d['task']!r}.")
    from .nn import ARCHITECTURES

    if not isinstance(d["architecture"], str) or d["architecture"] not in ARCHITECTURES:
        raise ModelError(
            f"{source}: unknown architecture {d['architecture']!r}; "
            f"this version of xatmodist knows {sorted(ARCHITECTURES)}. "
            "Upgrade xatmodist or use a model made for this version."
        )
    if not isinstance(d["args"], dict):
        raise ModelError(f"{source}: 'args' must be an object, got {d['args']!r}.")
    vs = d["variables"]
    if not isinstance(vs, list) or not vs or not all(_is_variable(v) for v in vs):
        raise ModelError(
            f"{source}: 'variables' must be a non-empty list of {{name, standard_name, units}}; "
            f"got {vs!r}."
        )
    ps = d["patch_size"]
    if not _is_int(ps) or ps < 1:
        raise ModelError(
            f"{source}: 'patch_size' must be a positive int, got {ps!r}. "
            "Regenerate the card with Model.save()."
        )
    grid = d["grid"]
    if (
        not isinstance(grid, dict)
        or not {"dlat", "dlon"} <= set(grid)
        or not all(_is_number(grid[k]) for k in ("dlat", "dlon"))
    ):
        raise ModelError(
            f"{source}: 'grid' needs at least dlat and dlon (numbers, degrees); got {grid!r}."
        )
    for k in ("training", "metrics", "normalisation", "distance"):
        if d.get(k) is not None and not isinstance(d[k], dict):
            raise ModelError(f"{source}: {k!r} must be an object, got {d[k]!r}.")


def _is_variable(v) -> bool:
    return isinstance(v, dict) and isinstance(v.get("name"), str)
