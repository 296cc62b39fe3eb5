"""``xatmodist demo``: the library in one minute, on the embedded sample."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from . import datasets
from .lag import lag_curve, predict_lag
from .zoo import load_model

__all__ = ["run_demo"]


def _print_table(title: str, rows: list[tuple], header: tuple) -> None:
    print(f"\n{title}")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, *rows]:
        print("  " + "  ".join(str(c).rjust(w) for c, w in zip(r, widths, strict=True)))


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
    m = load_model(model)
    ds = datasets.sample()[["vo", "d"]].chunk({"run": 1, "time": 10})
    print(
        f"model {m.name}: {m.card['architecture']}, patch {m.card['patch_size']}, "
        f"{len(m.card['lag_classes'])} lag classes of "
        f"{pd.Timedelta(seconds=m.card['lag_step_seconds'])}"
    )
    print(f"sample: {dict(ds.sizes)} (lazy, {ds.vo.data.npartitions} dask chunks per variable)")

    curve = lag_curve(ds, model=m)
    pred = predict_lag(ds, lag="12h", model=m, output="probability")
    with ProgressBar(minimum=1.0):
        curve = curve.compute()
        pred = pred.compute()
    hours = (curve.lag.values / np.timedelta64(1, "h")).astype(int)
    _print_table(
        "Mean distance between fields k hours apart (relative to the largest lag)",
        [
            (f"{h} h", f"{a:.3f}", f"{b:.3f}")
            for h, a, b in zip(
                hours, curve.learned_relative.values, curve.l2_relative.values, strict=True
            )
        ],
        ("lag", "learned", "l2"),
    )
    classes_h = (pred.lag.values / np.timedelta64(1, "h")).astype(int)
    mean_p = pred.mean(("run", "time")).values
    guess = classes_h[pred.argmax("lag").values.ravel()]
    acc = float((guess == 12).mean())
    within = float((np.abs(guess - 12) <= m.card["lag_step_seconds"] / 3600).mean())
    print(
        f"\nLag prediction for pairs 12 h apart ({guess.size} pairs): argmax = 12 h for "
        f"{acc:.0%}, within one class for {within:.0%}; mean probability per class:"
    )
    print("  " + "  ".join(f"{h}h:{p:.2f}" for h, p in zip(classes_h, mean_p, strict=True)))

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
        fig, ax = plt.subplots(1, 3, figsize=(14, 3.8))
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
        fig.tight_layout()
        fig.savefig(fig_path, dpi=110)
        plt.close(fig)
        print(f"\nfigure: {fig_path}")
    print(f"done in {time.perf_counter() - t0:.1f} s")
    return {
        "learned_relative": curve.learned_relative.values.tolist(),
        "l2_relative": curve.l2_relative.values.tolist(),
        "argmax_accuracy_12h": acc,
        "figure": str(fig_path) if fig_path else None,
    }
