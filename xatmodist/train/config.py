"""Typed training settings: the one source of every trainer's defaults.

Each trainer's settings are a few groups (dataclasses): the **data** (which
variables, dims, patch size), the **schedule** (epochs, batch, learning rate,
seed, the model to start from), the **architecture**, the **loss** and, apart
from them, the **run** (where to write, resume, threads, ...; nothing that
changes the weights).  The keyword arguments of :func:`~xatmodist.train.fit_encoder`,
:func:`~xatmodist.train.fit_downscaler` and :func:`~xatmodist.train.fit_inpainter`,
their documentation, the ``xatmodist train`` command line and the recipe files
are all generated from these classes, so a default is written once.

A finished model's card records its settings (``training.config``, grouped as
here), so ``xatmodist.train.fit(card_or_recipe, data)`` trains it again.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import math
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._validate import check_bool
from ..errors import InputError
from ..zoo import DEFAULT_ENCODER

__all__ = [
    "LOSSES",
    "TRAINERS",
    "Adversarial",
    "ContentLoss",
    "Distillation",
    "Ensemble",
    "DownscalerArchitecture",
    "EncoderArchitecture",
    "EncoderData",
    "EncoderSchedule",
    "FieldData",
    "FieldSchedule",
    "Holes",
    "InpainterArchitecture",
    "LagTask",
    "Run",
    "Schedule",
    "Settings",
    "Trainer",
]

_NO_DEFAULT = dataclasses.MISSING


def opt(default: Any = _NO_DEFAULT, cli: Mapping | None = None, *, low: float | None = None):
    """A settings field: its default and command-line hints.

    Each field is documented by the string literal under it (an attribute
    docstring, as Sphinx reads it); :func:`documentation` collects them for
    the trainers' docs and the command line.  ``cli`` holds argparse keywords
    the type alone does not give (``nargs``, ``type``, ``choices``,
    ``metavar``, ``action``, ``flags``); a field a subclass redefines (another
    default) keeps its base's documentation and hints.  Values are checked by
    type (:func:`check_setting`): integers >= ``low`` (default 1), numbers >=
    0 (``low=0.0``: > 0), bools, and text among the ``choices``.
    """
    meta = {"cli": dict(cli or {}), "low": low}
    if default is _NO_DEFAULT:
        return field(metadata=meta)
    if isinstance(default, list | dict):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


@functools.cache
def documentation(group: type) -> dict[str, tuple[str, dict]]:
    """(help text, CLI hints) of each field of ``group``, from it or its nearest base."""
    out: dict[str, tuple[str, dict]] = {}
    for cls in reversed(group.__mro__[:-1]):
        body = ast.parse(textwrap.dedent(inspect.getsource(cls))).body[0].body
        for st, nxt in zip(body, body[1:] + [None], strict=True):
            if not isinstance(st, ast.AnnAssign):
                continue
            name = st.target.id
            doc = out.get(name, ("", {}))[0]
            if isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant):
                doc = inspect.cleandoc(nxt.value.value)
            cli = cls.__dataclass_fields__[name].metadata["cli"] or out.get(name, ("", {}))[1]
            out[name] = (doc, cli)
    return out


def check_setting(name: str, value: Any, f: dataclasses.Field) -> None:
    """Refuse a setting of the wrong type or range, saying what was expected."""
    kinds = [k for k in str(f.type).split(" | ") if k != "None"]
    if (value is None and "None" in str(f.type)) or len(kinds) != 1:
        return  # None where allowed; unions (lags, lat_reflection) are checked by the task
    kind = kinds[0]
    low = f.metadata.get("low")
    if kind == "bool":
        check_bool(value, name)
    elif kind == "int":
        low = 1 if low is None else low
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
            want = "a positive integer" if low == 1 else f"an integer >= {low}"
            raise InputError(f"{name} must be {want}; got {value!r}.")
    elif kind == "float":
        real = isinstance(value, int | float | np.number) and not isinstance(value, bool)
        if not real or not math.isfinite(value) or value < 0 or (low == 0.0 and value == 0):
            raise InputError(
                f"{name} must be a finite number {'>' if low == 0.0 else '>='} 0; got {value!r}."
            )
    choices = f.metadata["cli"].get("choices")
    if kind == "str" and choices and value not in choices:
        raise InputError(f"{name} must be one of {choices}; got {value!r}.")


def lag_value(text: str) -> int | str:
    """A lag on the command line: digits are a number of time steps, anything else a duration."""
    return int(text) if text.strip().isdigit() else text


# --------------------------------------------------------------------------- groups


@dataclass(kw_only=True)
class FieldData:
    """Which fields to train on."""

    variables: list[str] | None = opt(None, {"nargs": "+"})
    """Variables to use.  Default: vorticity and divergence, found by CF standard_name
    (``atmosphere_relative_vorticity``, ``divergence_of_wind``) if the dataset has both as
    fields, else every variable that has the time and both spatial dims (static 2-D fields such
    as a land mask, and bounds such as ``time_bnds``, are left out); the choice is logged at
    INFO level and recorded in the card.
    """
    dim: str | None = opt(None)
    """Time dim, if cf-xarray cannot find it."""
    spatial_dims: list[str] | None = opt(None, {"nargs": 2})
    """The (lat, lon) dims, if cf-xarray cannot find them."""
    patch_size: int | None = opt(64)
    """Side of the square training patches, in grid points."""


@dataclass(kw_only=True)
class EncoderData(FieldData):
    """Which fields to train on, and where."""

    patch_size: int | None = opt(None)
    """Side of the square patches, in grid points, a multiple of the encoder's reduction.  Default:
    32 (the shipped simulator encoders'), or on a grid with fewer rows or (regional) columns the
    largest multiple of the reduction that fits it: 24 on NCEP's 25 x 53 North American grid.
    """
    lat_band: list[float] | None = opt(None, {"nargs": 2, "type": float})
    """Only draw patches between these two latitudes."""


@dataclass(kw_only=True)
class Schedule:
    """Optimisation."""

    epochs: int = opt(5)
    """Passes over the epoch's random samples."""
    batch_size: int = opt(16)
    """Samples per optimizer step."""
    lr: float = opt(1e-3, low=0.0)
    """Peak learning rate."""
    seed: int = opt(0, low=0)
    """Seeds all randomness; a resumed run continues exactly."""
    init: str | None = opt(None)
    """A trained model of this task to start from (fine-tuning): same variables and architecture;
    its normalisation statistics are kept.
    """


@dataclass(kw_only=True)
class FieldSchedule(Schedule):
    """Optimisation (Adam, cosine learning-rate decay)."""

    samples_per_epoch: int = opt(4096)
    """Training patches per epoch."""


@dataclass(kw_only=True)
class EncoderSchedule(Schedule):
    """Optimisation (AdamW, one-cycle learning rate) and the time blocks pairs come from."""

    epochs: int = opt(10)
    pairs_per_epoch: int = opt(32768)
    """Training pairs per epoch."""
    batch_size: int = opt(64)
    weight_decay: float = opt(1e-4)
    """AdamW weight decay."""
    block_length: int | None = opt(None)
    """Time steps per block (default ``max(4 * max_lag_steps, 16)``)."""
    val_every: int = opt(10)
    """Every ``val_every``-th time block is held out for validation."""
    val_pairs: int = opt(2048)
    """Fixed validation pairs scored after each epoch."""
    mix_blocks: int = opt(8)
    """Blocks whose pairs are shuffled together into batches."""


@dataclass(kw_only=True)
class LagTask:
    """The pretext task: which lags, and the loss on them."""

    max_lag: int | str = opt(cli={"type": lag_value})
    """Largest lag.  An integer is that many time steps of the data (as ``ds.shift(time=3)``
    counts); anything else is a duration (``"6h"``, ``pd.Timedelta``).  Floats, bools and
    integers < 1 are refused.
    """
    lag_step: int | str | None = opt(None, {"type": lag_value})
    """Width of a lag class (default: the data's time step); the classes are ``lag_step, 2 *
    lag_step, ..., max_lag``.  Integers count steps.
    """
    rank_weight: float = opt(0.0)
    """Weight of a ranking term added to the cross-entropy: over every two pairs of a batch with
    different lags, ``log(1 + exp(-(log D_long - log D_short)))`` with ``D`` the feature
    distance (RankNet on log distances), so that the feature distance itself grows with lag.  0:
    the paper's cross-entropy alone.
    """
    lat_reflection: bool | list[str] = opt(
        False, {"nargs": "*", "type": "reflection", "metavar": "NAME"}
    )
    """Augment the pairs with their north-south mirror images (each pair mirrored with probability
    1/2, sign-changing fields negated).  True finds those by CF standard_name; a list names them
    (``[]`` if none does); on the command line ``--lat-reflection`` alone is True.
    """


@dataclass(kw_only=True)
class EncoderArchitecture:
    """The Siamese encoder (see :class:`xatmodist.nn.AtmoDistNet`)."""

    widths: list[int] = opt([32, 64, 128], {"nargs": "+"})
    """Channels of each encoder stage."""
    blocks: int = opt(1)
    """Residual blocks per stage."""
    stem_stride: int = opt(1)
    """Stride of the patchify stem (1: a 3x3 convolution)."""
    projection: bool = opt(False)
    """Take the distance on a learned per-location projection of the trunk's features; needs
    ``rank_weight > 0``, the only term that trains it.
    """
    distance: str = opt("squared", {"choices": ["squared", "l1"]})
    """The model's distance: the mean squared (the paper's) or mean absolute (``"l1"``) difference
    of the two patches' features, times the calibrated alpha.  May change on resuming a finished
    run (re-scores it).
    """
    distance_weights: bool = opt(False)
    """After training, weight the distance's feature channels, as LPIPS's learned linear layer: one
    positive weight per channel, fitted on training pairs with the trunk frozen by the ranking
    loss on the distance in its own kind (:func:`xatmodist.train.encoder.fit_distance_weights`),
    then folded into the weights (:func:`xatmodist.nn.encoder.scale_features`), so a distance
    costs no more.  The lag head's logits are unchanged.  May change on resuming a finished run.
    """


@dataclass(kw_only=True)
class Distillation:
    """Knowledge distillation from a trained encoder (the teacher) into this one (the student)."""

    teacher: str | None = opt(None)
    """An encoder to distil (zoo name or folder): on every training pair the student also learns
    the teacher's lag-class probabilities and the order and spacing of its feature distances, so a
    cheaper architecture can inherit a larger one's distance.  Same variables, lag step and
    classes as the student; its normalisation stays its own.  None: no teacher.
    """
    distil_logits: float = opt(1.0)
    """Weight of ``T**2`` times the KL divergence of the student's lag-class probabilities from
    the teacher's, both at temperature ``T`` (Hinton et al. 2015).
    """
    distil_distance: float = opt(4.0)
    """Weight of the mean squared difference of the student's and the teacher's log feature
    distances (each in its model's own kind), both standardised over the batch: scale-free, so
    the student keeps its own units (alpha is calibrated after training as always).
    """
    temperature: float = opt(2.0, low=0.0)
    """Softmax temperature ``T`` of the logit term."""


@dataclass(kw_only=True)
class ContentLoss:
    """The loss comparing a predicted field with the truth."""

    encoder: str = opt(DEFAULT_ENCODER)
    """Encoder of the AtmoDist loss (zoo name or folder)."""
    l2_weight: float = opt(0.1)
    """Share of the MSE in the AtmoDist loss."""
    balance_variables: bool = opt(False)
    """AtmoDist loss only: one feature distance per variable (the prediction of that variable
    beside the truth of the others), weighted so that all variables count alike; the weights are
    measured once on a simple method's error (bicubic upsampling, a flat fill) and recorded.
    """
    variable_weights: dict[str, float] | None = opt(
        None, {"nargs": "+", "metavar": "NAME=WEIGHT", "type": "weights"}
    )
    """AtmoDist loss only: the per-variable distances of ``balance_variables`` with given weights,
    e.g. ``{"vo": 1.0, "d": 0.0}`` (command line: ``vo=1 d=0``).  Not with
    ``balance_variables``.
    """
    extra_encoders: list[str] = opt(
        [], {"nargs": "+", "action": "extend", "flags": ["--extra-encoders", "--extra-encoder"]}
    )
    """AtmoDist loss only: more frozen encoders whose calibrated feature distances on the variables
    each takes (found by standard_name, else name) are added to the loss, e.g. ``["atmodist-
    swe-d"]``.
    """


@dataclass(kw_only=True)
class DownscalerArchitecture:
    """The residual CNN (see :class:`xatmodist.nn.Downscaler`)."""

    factor: int = opt(4)
    """Refinement factor (a power of 2); ``patch_size`` is a multiple."""
    width: int = opt(48)
    """Channels of the residual trunk."""
    blocks: int = opt(6)
    """Residual blocks."""
    upsample: str = opt("shuffle", {"choices": ["shuffle", "resize"]})
    """Sub-pixel convolution or resize-convolution."""
    noise: int = opt(0, low=0)
    """Noise maps of a generator that samples (an ensemble model): ``k > 0`` standard normal maps
    enter the network (see its class); ``members=`` of the accessor then draws samples.  0: a
    deterministic model.  Fine-tuning a deterministic ``init`` keeps its weights (the noise paths
    start at zero).
    """
    noise_steps: int | None = opt(None)
    """A sampling model's noise enters after the first ``noise_steps`` 2x steps only (None: after
    every step, down to the output grid).  Noise at the output grid can only add grid-scale
    texture (seen as excess power at the highest wavenumbers); 1 leaves the last step to shape it.
    """


@dataclass(kw_only=True)
class Adversarial:
    """An optional GAN term, as PhIRE (Stengel et al. 2020)."""

    adversarial: bool = opt(False)
    """Add a GAN term: a :class:`xatmodist.nn.PatchDiscriminator` on z-scored fields, updated once
    per step, and ``adversarial_weight`` times the non-saturating generator loss.  PhIRE fine-
    tunes a pretrained model with it: pass that model as ``init``.
    """
    adversarial_weight: float = opt(1e-3, low=0.0)
    """Weight of the generator's GAN loss (PhIRE: 1e-3)."""


@dataclass(kw_only=True)
class Ensemble:
    """How a generator that samples (``noise > 0``) is trained; unused by deterministic ones."""

    ensemble_samples: int = opt(2, low=2)
    """Samples drawn per training input at each step: the content and GAN losses average over
    them and the CRPS term compares them with each other and with the truth.
    """
    crps_weight: float = opt(1.0)
    """Weight of the fair CRPS of the samples on z-scored fields, ``mean_i |x_i - y| -
    mean_{i != j} |x_i - x_j| / 2`` per point (Gneiting & Raftery 2007; unbiased for a finite
    ensemble): lowest for samples as spread as the truth's uncertainty, so it keeps the ensemble
    from collapsing onto its mean (which the content loss alone rewards) or spreading too far.
    """
    ensemble_content: str = opt("energy", {"choices": ["energy", "each"]})
    """How the content loss (and its l2 share) judges the samples.  ``"energy"``: as an energy
    score, ``mean_i D(x_i, y) - mean_{i != j} D(x_i, x_j) / 2`` with ``D`` the content loss (raised
    to ``energy_power``), so it rewards samples near the truth *and* apart from each other (for a
    squared distance at ``energy_power=1``, e.g. the l2 share, this is the squared error of the
    ensemble mean: the samples' variance costs nothing).  ``"each"``:
    ``mean_i D(x_i, y)``, every sample on its own, which rewards samples that all equal the
    conditional mean; the CRPS term alone then has to hold the spread up (models trained so were
    3-10x too narrow: spread/skill 0.1-0.4).
    """
    energy_power: float = opt(1.0, low=0.0)
    """With ``ensemble_content="energy"``, ``D`` enters the energy score as ``D**energy_power``, per
    input (``0 < energy_power <= 1``).  1: the content loss itself, averaged over the batch.  For a
    squared distance (the l2 share; an encoder of ``distance="squared"``) that score is the
    squared distance of the ensemble *mean* from the truth (of the mean feature vector, for the
    encoder): the samples' spread neither costs nor gains anything, and only the CRPS and GAN terms
    shape it.  0.5 turns a squared distance into a norm, ``||x - y||``: the energy score of
    Gneiting & Raftery (2007) with beta = 1, strictly proper, so it rewards samples that are each
    as far from one another as from the truth, in the distance's own terms (for the encoder:
    samples whose features spread as the truth's would).
    """
    noise_lr_scale: float = opt(10.0, low=0.0)
    """The noise paths learn at ``lr`` times this.  They start at zero, and their gradients,
    products with fresh noise, change sign from step to step: at the base rate Adam moves them
    as a random walk and a short fine-tune leaves the ensemble narrow.
    """


@dataclass(kw_only=True)
class InpainterArchitecture:
    """The U-Net (see :class:`xatmodist.nn.Inpainter`)."""

    width: int = opt(24)
    """Channels of the first level."""
    levels: int = opt(3)
    """Down-sampling levels; patches are a multiple of ``2**levels``."""
    blocks: int = opt(3)
    """Blocks per level."""
    noise: int = opt(0, low=0)
    """Noise maps of a generator that samples (an ensemble model): ``k > 0`` standard normal maps
    enter the network (see its class); ``members=`` of the accessor then draws samples.  0: a
    deterministic model.  Fine-tuning a deterministic ``init`` keeps its weights (the noise paths
    start at zero).
    """


@dataclass(kw_only=True)
class Holes:
    """The random holes of the training patches."""

    hole: list[int] = opt([4, 32], {"nargs": 2})
    """Smallest and largest hole size in grid cells; the card records ``max_hole_radius = hole[1] /
    2``.
    """
    hole_kinds: list[str] = opt(["rect", "blob"], {"nargs": "+", "choices": ["rect", "blob"]})
    """Hole shapes to draw from."""


@dataclass(kw_only=True)
class Run:
    """How to run (changes no weight): output, resuming, threads, naming."""

    out: str | None = opt(None)
    """Folder for ``checkpoint.pt`` (each epoch, atomically; it holds the run's settings),
    ``metrics.jsonl`` and the final model (``out/model``). A folder holding a checkpoint or
    model is refused unless ``resume`` or ``overwrite`` is given.
    """
    resume: bool = opt(False)
    """Continue from ``out/checkpoint.pt`` if it exists, with the saved run's settings (every other
    difference is an error listing it).
    """
    overwrite: bool = opt(False)
    """Start afresh in an ``out`` that holds an earlier run."""
    stop_after: int | None = opt(None, low=0)
    """Stop once this many epochs of the schedule are done (for time-limited jobs; continue with
    ``resume``).
    """
    name: str | None = opt(None)
    """Model name written to the card."""
    threads: int | None = opt(None)
    """torch intra-op threads (restored afterwards)."""
    device: str | None = opt(None)
    """Where to train: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"`` (default:
    ``set_options(device=...)``); under ``torchrun`` a CUDA run puts each process on
    ``cuda:LOCAL_RANK``. Recorded on the card.
    """
    precision: str | None = opt(None, {"choices": ["float32", "bfloat16", "float16"]})
    """Forward passes under autocast in this type: ``"float32"``, ``"bfloat16"`` or ``"float16"``
    (GPU only, with a gradient scaler); default: ``set_options(precision=...)``. Weights and
    optimizer state stay float32. Recorded on the card.
    """
    progress: bool | None = opt(None)
    """Progress bar and a line per epoch (default: ``set_options(progress=...)``)."""
    data_description: str | None = opt(None)
    """Free text for the card's ``training.data``."""


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class Trainer:
    """A trainer's settings groups (by section name), in documentation order."""

    task: str
    groups: tuple[tuple[str, type], ...]
    default_name: str

    def fields(self, *, run: bool = True):
        """(section, dataclass field, help text, CLI hints) of every setting."""
        for section, group in self.groups + ((("run", Run),) if run else ()):
            docs = documentation(group)
            for f in dataclasses.fields(group):
                yield section, f, *docs[f.name]

    def defaults(self) -> dict:
        """Every setting's default (a required one is absent)."""
        out = {}
        for _, f, _, _ in self.fields():
            if f.default is not _NO_DEFAULT:
                out[f.name] = f.default
            elif f.default_factory is not _NO_DEFAULT:
                out[f.name] = f.default_factory()
        return out

    def settings(self, kwargs: Mapping, caller: str) -> Settings:
        """The typed settings from flat keyword arguments (TypeError for unknown ones)."""
        known = {f.name: s for s, f, _, _ in self.fields()}
        unknown = sorted(set(kwargs) - set(known))
        if unknown:
            raise TypeError(
                f"{caller}() got unexpected keyword arguments {unknown}; it takes {sorted(known)}."
            )
        for _, f, _, _ in self.fields():
            if f.name in kwargs:
                check_setting(f.name, kwargs[f.name], f)
        parts = {}
        for section, group in self.groups + (("run", Run),):
            names = {f.name for f in dataclasses.fields(group)}
            try:
                parts[section] = group(**{k: v for k, v in kwargs.items() if k in names})
            except TypeError as err:  # a required setting is missing
                missing = [
                    f.name
                    for f in dataclasses.fields(group)
                    if f.name not in kwargs
                    and f.default is _NO_DEFAULT
                    and f.default_factory is _NO_DEFAULT
                ]
                raise TypeError(f"{caller}() needs the keyword argument(s) {missing}.") from err
        return Settings(self, parts)

    def signature(self, first: str) -> inspect.Signature:
        """``(first, *, setting=default, ...)``, the trainer's Python signature."""
        kw = inspect.Parameter.KEYWORD_ONLY
        params = [inspect.Parameter(first, inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        defaults = self.defaults()
        params += [
            inspect.Parameter(f.name, kw, default=defaults.get(f.name, inspect.Parameter.empty))
            for _, f, _, _ in self.fields()
        ]
        return inspect.Signature(params)

    def parameters_doc(self) -> str:
        """The numpydoc ``Parameters`` entries of every setting, by group."""
        lines, defaults = [], self.defaults()
        for section, f, doc, _ in self.fields():
            default = f"default {defaults[f.name]!r}" if f.name in defaults else "required"
            lines.append(f"{f.name} : {f.type}, {default}  ({section})")
            lines += ["    " + x for x in doc.splitlines()]
        return "\n".join(lines)


@dataclass
class Settings:
    """One run's settings: the trainer and its groups (``settings.schedule.lr``)."""

    trainer: Trainer
    parts: dict[str, Any]

    def __getattr__(self, section: str) -> Any:
        try:
            return self.__dict__["parts"][section]
        except KeyError:
            raise AttributeError(section) from None

    def config(self) -> dict:
        """The settings that shape the model, by group (JSON-able; for the card and resume)."""
        from ._checkpoint import jsonable

        return jsonable(
            {
                "task": self.trainer.task,
                **{s: dataclasses.asdict(self.parts[s]) for s, _ in self.trainer.groups},
            }
        )


def _trainer(task: str, name: str, *groups: tuple[str, type]) -> Trainer:
    return Trainer(task, tuple(groups), name)


LOSSES = ("atmodist", "l2")


@dataclass(kw_only=True)
class _DownscalerLoss(ContentLoss):
    content_loss: str = opt(
        "atmodist", {"choices": list(LOSSES), "flags": ["--content-loss", "--loss"]}
    )
    """``"l2"``: the MSE of the z-scored fields; ``"atmodist"``: the frozen encoder's calibrated
    feature distance plus ``l2_weight`` times the MSE, as the paper.
    """
    spectral_weight: float = opt(0.0)
    """Weight of a term that matches the output's power spectrum to the truth's in the band the
    downscaler adds (zonal wavenumbers in the octave above the coarse grid's Nyquist): ``mean_(c,
    k) |ln P_out(c, k) - ln P_truth(c, k)|`` of z-scored fields, ``P`` the Hann-windowed zonal
    power spectrum averaged over the batch (every sample of a sampling model) and the patch rows,
    as the evaluation's band spectral error.  A content loss judges each output against its own
    truth; this term judges the statistics of all outputs (too smooth, or too much fine-scale
    noise).  0: off.
    """
    spread_spectral_weight: float = opt(0.0)
    """A sampling model's spectral calibration: weight of ``mean_(c, k) |ln P(x_i - x_j) - ln
    P(x_i - y)|`` over the same band, ``P`` as for ``spectral_weight``, over every pair of samples
    ``x_i != x_j`` of an input and every sample's error against the truth ``y`` (held fixed: only
    the spread moves).  The truth is exchangeable with the members of a calibrated ensemble, so
    the two spectra agree: the spread-skill ratio, per wavenumber.  The pointwise CRPS cannot tell
    at which scales the samples differ; this term can (noise at the grid scale instead of the
    band's scales).  Needs ``noise > 0``; 0: off.
    """


@dataclass(kw_only=True)
class _InpainterLoss(ContentLoss):
    loss: str = opt("atmodist", {"choices": list(LOSSES)})
    """``"l2"``: the MSE of the z-scored fields; ``"atmodist"``: the frozen encoder's calibrated
    feature distance plus ``l2_weight`` times the MSE, as the paper.
    """
    l2_weight: float = opt(0.5)


@dataclass(kw_only=True)
class _InpainterSchedule(FieldSchedule):
    epochs: int = opt(8)
    samples_per_epoch: int = opt(2500)


#: each trainer's settings groups, by task
TRAINERS = {
    "encoder": _trainer(
        "encoder",
        "atmodist-custom",
        ("lag", LagTask),
        ("data", EncoderData),
        ("schedule", EncoderSchedule),
        ("architecture", EncoderArchitecture),
        ("distillation", Distillation),
    ),
    "downscaler": _trainer(
        "downscaler",
        "downscaler-custom",
        ("loss", _DownscalerLoss),
        ("data", FieldData),
        ("schedule", FieldSchedule),
        ("architecture", DownscalerArchitecture),
        ("adversarial", Adversarial),
        ("ensemble", Ensemble),
    ),
    "inpainter": _trainer(
        "inpainter",
        "inpainter-custom",
        ("loss", _InpainterLoss),
        ("holes", Holes),
        ("data", FieldData),
        ("schedule", _InpainterSchedule),
        ("architecture", InpainterArchitecture),
        ("adversarial", Adversarial),
        ("ensemble", Ensemble),
    ),
}
