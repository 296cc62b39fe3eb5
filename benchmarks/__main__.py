"""The benchmark suite in one command: a table of ratios against same-run baselines.

Run from the repo root::

    python -m benchmarks [--json /tmp/xatmodist-benchmarks.json] [--skip lpips,distributed]

Every speed figure is a ratio against a baseline measured in the same run on the
same machine (see ``benchmarks/README.md`` for what each row means).  Prints a
markdown table (benchmark, value, baseline, ratio, target, met?) and writes all
raw figures as JSON.  Results are not committed: the default JSON path is in /tmp.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
import warnings

import torch

from . import (
    bench_content_step,
    bench_distance,
    bench_ensemble,
    bench_fields,
    bench_scale,
    bench_training,
)

ROWS = (
    "distance",
    "training",
    "flops",
    "lpips",
    "memory",
    "distributed",
    "downscale",
    "inpaint",
    "downscale_memory",
    "content_step",
    "ensemble",
)


def _row(name, value, baseline, ratio, target=None, op=None):
    """One table row; ``target``/``op`` (">=" or "<=") decide ``met``."""
    met = None
    if target is not None and ratio is not None:
        met = ratio >= target if op == ">=" else ratio <= target
    return {
        "benchmark": name,
        "value": value,
        "baseline": baseline,
        "ratio": ratio,
        "target": None if target is None else f"{'≥' if op == '>=' else '≤'} {target:g}",
        "met": met,
    }


def _skipped(name, reason):
    return {
        "benchmark": name,
        "value": f"skipped: {reason}",
        "baseline": "",
        "ratio": None,
        "target": None,
        "met": None,
    }


def encoder_table(r: dict) -> str:
    """Markdown: encoder, MFLOP/patch, fields/s, ratio to LPIPS, held-out rho, top-1, within 1."""
    head = (
        "| encoder | MFLOP / patch | fields/s | vs LPIPS | held-out rho [95%] | top-1 "
        "| within one |"
    )
    lines = [head, "|---|---|---|---|---|---|---|"]

    def num(x, fmt=".3f"):
        return "—" if x is None else format(x, fmt)

    for name, m in r["models"].items():
        ci = m.get("heldout_rho_ci95")
        rho = num(m.get("heldout_rho")) + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")
        tag = " (default)" if name == r.get("default_model") else ""
        lines.append(
            f"| {name}{tag} | {num(m.get('mflop_per_patch'), '.1f')} | "
            f"{m['learned_fields_per_s']:.1f} | {m['ratio']:.2f} | {rho} | "
            f"{num(m.get('heldout_top1'))} | {num(m.get('heldout_within1'))} |"
        )
    return "\n".join(lines)


def _content_step_rows(r: dict) -> list[dict]:
    """Per field trainer: the default encoder's AtmoDist-loss step against v4's (issue 23)."""
    rows = []
    default = r["default"]
    for trainer in ("downscaler", "inpainter"):
        mine, v4 = r[trainer][default], r[trainer]["atmodist-swe-vd-v4"]
        rows.append(
            _row(
                f"{trainer} step, AtmoDist loss of {default} (default) vs of v4",
                f"{1000 * mine['seconds_per_step']:.0f} ms/step",
                f"{1000 * v4['seconds_per_step']:.0f} ms/step",
                mine["v4_over_this"],
                1.0,
                ">=",
            )
        )
    return rows


def _ensemble_rows(r: dict) -> list[dict]:
    """Per sampling model: M members through the accessor against M single passes (issue 24)."""
    return [
        _row(
            f"{name}: {r['members']} members vs {r['members']} single passes",
            f"{x['ensemble_seconds']:.2f} s",
            f"{x['singles_seconds']:.2f} s",
            x["ratio"],
            1.1,
            "<=",
        )
        for name, x in r["models"].items()
    ]


def rows_from(results: dict) -> list[dict]:
    rows = []
    r = results.get("distance")
    if r is not None:
        bare = r["bare torch loop"]["fields_per_s"]
        for variant, target in (("accessor, numpy", 0.95), ("accessor, dask", 0.9)):
            v = r[variant]
            rows.append(
                _row(
                    f"distance, {variant} vs bare torch loop",
                    f"{v['fields_per_s']:.1f} fields/s",
                    f"{bare:.1f} fields/s",
                    v["ratio_to_bare"],
                    target,
                    ">=",
                )
            )
    r = results.get("training")
    if r is not None:
        rows.append(
            _row(
                f"training, fit_encoder ({'zarr' if r['zarr'] else 'numpy'}) vs bare loop",
                f"{r['fit_encoder_pairs_per_s']:.1f} pairs/s",
                f"{r['bare_pairs_per_s']:.1f} pairs/s",
                r["ratio"],
                0.8,
                ">=",
            )
        )
    r = results.get("flops")
    if r is not None:
        rows.append(
            _row(
                "encoder GFLOP/s vs float32 matmul GFLOP/s",
                f"{r['encoder_gflops']:.1f} GFLOP/s",
                f"{r['matmul_gflops']:.1f} GFLOP/s",
                r["fraction"],
                0.4,
                ">=",
            )
        )
    r = results.get("lpips")
    if r is not None:
        if "skipped" in r:
            rows.append(_skipped("learned distance vs LPIPS (alex, random)", r["skipped"]))
        else:
            per_model = r.get("models") or {"default encoder": r}
            for name, m in per_model.items():
                tag = " (default)" if name == r.get("default_model") else ""
                rows.append(
                    _row(
                        f"learned distance, {name}{tag} vs LPIPS (alex, random)",
                        f"{m['learned_fields_per_s']:.1f} fields/s",
                        f"{r['lpips_fields_per_s']:.1f} fields/s",
                        m["ratio"],
                        1.0,
                        ">=",
                    )
                )
    r = results.get("memory")
    if r is not None:
        rows.append(
            _row(
                f"peak RSS, {r['n_large']} vs {r['n_small']} fields (zarr, dask)",
                f"{r['large']['peak_rss_mb']:.0f} MB",
                f"{r['small']['peak_rss_mb']:.0f} MB",
                r["ratio"],
                1.2,
                "<=",
            )
        )
    r = results.get("distributed")
    if r is not None:
        rows.append(
            _row(
                f"LocalCluster 2 vs 1 workers ({r['n_fields']} fields, zarr)",
                f"{r['distances_per_s_2w']:.1f} dist/s",
                f"{r['distances_per_s_1w']:.1f} dist/s",
                r["speedup"],
                1.7,
                ">=",
            )
        )
    for key in ("downscale", "inpaint"):
        r = results.get(key)
        if r is None:
            continue
        bare = r["bare batched model"]["fields_per_s"]
        for variant in ("accessor, numpy", "accessor, dask"):
            v = r[variant]
            rows.append(
                _row(
                    f"{key}, {variant} vs bare batched model ({r['n_fields']} fields)",
                    f"{v['fields_per_s']:.1f} fields/s",
                    f"{bare:.1f} fields/s",
                    v["ratio_to_bare"],
                    *((0.9, ">=") if key == "downscale" else ()),
                )
            )
    r = results.get("downscale_memory")
    if r is not None:
        rows.append(
            _row(
                f"downscale to zarr, peak RSS {r['n_large']} vs {r['n_small']} fields",
                f"{r['large']['peak_rss_mb']:.0f} MB",
                f"{r['small']['peak_rss_mb']:.0f} MB",
                r["ratio"],
                1.2,
                "<=",
            )
        )
    if results.get("content_step") is not None:
        rows += _content_step_rows(results["content_step"])
    if results.get("ensemble") is not None:
        rows += _ensemble_rows(results["ensemble"])
    return rows


def format_table(rows: list[dict]) -> str:
    head = ("benchmark", "value", "baseline", "ratio", "target", "met?")
    body = []
    for r in rows:
        met = "n/a" if r["met"] is None else ("yes" if r["met"] else "no")
        body.append(
            (
                r["benchmark"],
                r["value"],
                r["baseline"],
                "" if r["ratio"] is None else f"{r['ratio']:.2f}",
                r["target"] or "—",
                "" if r["ratio"] is None else met,
            )
        )
    widths = [max(len(x[i]) for x in (head, *body)) for i in range(len(head))]

    def line(cells):
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(head), sep, *(line(b) for b in body)])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--json",
        default="/tmp/xatmodist-benchmarks.json",
        help="where to write the raw results (default: %(default)s)",
    )
    p.add_argument("--skip", default="", help=f"comma-separated, from {','.join(ROWS)}")
    p.add_argument("--n", type=int, default=1000, help="fields for the distance benchmark")
    p.add_argument("--train-steps", type=int, default=24)
    p.add_argument("--mem-n", type=int, default=100, help="N of the N vs 10 N memory runs")
    p.add_argument("--dist-n", type=int, default=200, help="fields for the cluster job")
    p.add_argument("--fields-n", type=int, default=1000, help="fields for downscale/inpaint")
    args = p.parse_args()
    skip = {s for s in args.skip.split(",") if s}
    unknown = skip - set(ROWS)
    if unknown:
        p.error(f"unknown benchmark(s) {sorted(unknown)}; choose from {ROWS}")

    jobs = {
        "distance": lambda: bench_distance.run(n=args.n, nlat=64, nlon=128, chunk=100, repeat=5),
        "training": lambda: bench_training.run(steps=args.train_steps, zarr=True),
        "flops": bench_scale.bench_flops,
        "lpips": lambda: bench_scale.bench_lpips(repeat=5),
        "memory": lambda: bench_scale.bench_memory(n=args.mem_n),
        "distributed": lambda: bench_scale.bench_distributed(n=args.dist_n),
        "downscale": lambda: bench_fields.bench_downscale(n=args.fields_n, repeat=3),
        "inpaint": lambda: bench_fields.bench_inpaint(n=args.fields_n // 4, repeat=3),
        "downscale_memory": bench_fields.bench_downscale_memory,
        "content_step": lambda: bench_content_step.run(repeat=3),
        "ensemble": lambda: bench_ensemble.run(members=8, repeat=3),
    }
    warnings.simplefilter("ignore")
    results = {
        "meta": {
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "machine": platform.machine(),
            "processor": platform.processor(),
            "cpu_count": __import__("os").cpu_count(),
        }
    }
    t_all = time.perf_counter()
    for name in ROWS:
        if name in skip:
            continue
        t0 = time.perf_counter()
        print(f"running {name} ...", flush=True)
        results[name] = jobs[name]()
        results[name]["wall_s"] = time.perf_counter() - t0
    results["meta"]["wall_s"] = time.perf_counter() - t_all
    rows = rows_from(results)
    results["table"] = rows
    m = results["meta"]
    print(
        f"\nxatmodist benchmarks, {m['date']}: {m['cpu_count']} cores, torch {m['torch']} "
        f"({m['torch_threads']} threads), {m['wall_s']:.0f} s in all\n"
    )
    print(format_table(rows))
    if "models" in (results.get("lpips") or {}):
        print("\nencoders: speed and held-out quality (the cards' numbers; each on its own data)\n")
        print(encoder_table(results["lpips"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1, default=str)
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
