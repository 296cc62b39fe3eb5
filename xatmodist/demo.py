"""``xatmodist demo``: the library in one minute, on the embedded sample."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from . import datasets
from .lag import lag_curve, predict_lag
from .zoo import load_model

__all__ = ["run_demo", "REAL_DATA_MODEL"]

#: the real-data encoder of the demo's second row (NCEP near-surface temperature)
REAL_DATA_MODEL = "atmodist-ncep-air"


def _print_table(title: str, rows: list[tuple], header: tuple) -> None:
    print(f"\n{title}")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, *rows]:
        print("  " + "  ".join(str(c).rjust(w) for c, w in zip(r, widths, strict=True)))


def _print_curve(curve, title: str) -> np.ndarray:
    """Print a lag curve's relative learned and l2 distances; return its lags in hours."""
    hours = (curve.lag.values / np.timedelta64(1, "h")).astype(int)
    learned, l2 = curve.learned_relative.values, curve.l2_relative.values
    rows = [(f"{h} h", f"{a:.3f}", f"{b:.3f}") for h, a, b in zip(hours, learned, l2, strict=True)]
    _print_table(title, rows, ("lag", "learned", "l2"))
    return hours


def run_demo(out: Path = Path("demo-output"), model=None) -> dict:
    """Lag curve (learned vs l2) and lag prediction on the sample; writes a PNG.

    The sample is chunked along time, so the work runs lazily through dask
    with a progress bar, exactly as it would on a large zarr store.

    Returns
    -------
    dict
        The numbers printed (for tests).
    """
    from dask.diagnostics import ProgressBar

    t0 = time.perf_counter()
    m = load_model(model, task="encoder")
    ds = datasets.sample()[["vo", "d"]].chunk({"run": 1, "time": 10})
    print(
        f"model {m.name}: {m.card.architecture}, patch {m.card.patch_size}, "
        f"{len(m.card.lag_classes)} lag classes of {m.card.lag_step}"
    )
    print(f"sample: {dict(ds.sizes)} (lazy, {ds.vo.data.npartitions} dask chunks per variable)")

    curve = lag_curve(ds, model=m)
    pred = predict_lag(ds, lag="12h", model=m, output="probability")
    with ProgressBar(minimum=1.0):
        curve = curve.compute()
        pred = pred.compute()
    hours = _print_curve(
        curve, "Mean distance between fields k hours apart (relative to the largest lag)"
    )
    classes_h = (pred.lag.values / np.timedelta64(1, "h")).astype(int)
    mean_p = pred.mean(("run", "time")).values
    guess = classes_h[pred.argmax("lag").values.ravel()]
    acc = float((guess == 12).mean())
    within = float((np.abs(guess - 12) <= m.card.lag_step_seconds / 3600).mean())
    print(
        f"\nLag prediction for pairs 12 h apart ({guess.size} pairs): argmax = 12 h for "
        f"{acc:.0%}, within one class for {within:.0%}; mean probability per class:"
    )
    print("  " + "  ".join(f"{h}h:{p:.2f}" for h, p in zip(classes_h, mean_p, strict=True)))

    real = _real_data(REAL_DATA_MODEL)

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    fig_path = out / "demo.png"
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover
        fig_path = None
    if fig_path is not None:
        fig, axes = plt.subplots(2, 3, figsize=(14, 7.6))
        ax = axes[0]
        first = datasets.sample().isel(run=0, time=0)
        first.vo.plot(ax=ax[0], cmap="RdBu_r", robust=True)
        ax[0].set_title("sample: relative vorticity")
        ax[1].plot(hours, curve.learned_relative, "o-", label="AtmoDist (learned)")
        ax[1].plot(hours, curve.l2_relative, "s--", label="l2")
        ax[1].set(
            xlabel="lag (h)", ylabel="distance / distance at max lag", title="distance vs lag"
        )
        ax[1].legend()
        ax[2].bar(classes_h, mean_p, width=2.4)
        ax[2].axvline(12, color="k", ls=":")
        ax[2].set(
            xlabel="predicted lag (h)",
            ylabel="mean probability",
            title="lag prediction, true lag 12 h",
        )
        _plot_real(axes[1], real)
        fig.tight_layout()
        fig.savefig(fig_path, dpi=110)
        plt.close(fig)
        print(f"\nfigure: {fig_path}")
    print(f"done in {time.perf_counter() - t0:.1f} s")
    return {
        "learned_relative": curve.learned_relative.values.tolist(),
        "l2_relative": curve.l2_relative.values.tolist(),
        "argmax_accuracy_12h": acc,
        "real_data": {k: v for k, v in real.items() if k not in ("curve", "pred", "ds")},
        "figure": str(fig_path) if fig_path else None,
    }


def _real_data(name: str) -> dict:
    """The real-data encoder on the embedded NCEP sample: lag curve and a 24 h prediction."""
    m = load_model(name, task="encoder")
    ds = datasets.ncep_air().chunk({"time": 365})
    print(
        f"\nreal data: {m.name} on NCEP near-surface air temperature, 2014 (its evaluation "
        f"year): {dict(ds.sizes)}"
    )
    curve = lag_curve(ds, model=m).compute()
    pred = predict_lag(ds, lag="24h", model=m).compute()
    _print_curve(curve, "Mean distance between fields k hours apart, 2014 (relative to 72 h)")
    classes_h = (pred.lag.values / np.timedelta64(1, "h")).astype(int)
    guess = classes_h[pred.argmax("lag").values]
    acc = float((guess == 24).mean())
    print(f"Lag prediction for pairs 24 h apart ({guess.size} pairs): argmax = 24 h for {acc:.0%}")
    return {
        "ds": ds,
        "curve": curve,
        "pred": pred,
        "learned_relative": curve.learned_relative.values.tolist(),
        "l2_relative": curve.l2_relative.values.tolist(),
        "argmax_accuracy_24h": acc,
    }


def _plot_real(ax, real: dict) -> None:
    ds, curve, pred = real["ds"], real["curve"], real["pred"]
    ds.air.isel(time=0).plot(ax=ax[0], cmap="RdYlBu_r")
    ax[0].set_title("NCEP near-surface air temperature, 2014-01-01")
    hours = curve.lag / np.timedelta64(1, "h")
    ax[1].plot(hours, curve.learned_relative, "o-", label="AtmoDist (learned, real data)")
    ax[1].plot(hours, curve.l2_relative, "s--", label="l2 (diurnal cycle)")
    ax[1].set(xlabel="lag (h)", ylabel="distance / distance at 72 h", title="distance vs lag")
    ax[1].legend()
    classes_h = pred.lag / np.timedelta64(1, "h")
    ax[2].bar(classes_h, pred.mean("time"), width=4.8)
    ax[2].axvline(24, color="k", ls=":")
    ax[2].set(xlabel="predicted lag (h)", ylabel="mean probability", title="true lag 24 h")
