"""Re-measure shipped encoders from their recipes and compare with their cards.

Run from the repo root::

    python scripts/check_recipes.py atmodist-ncep-air atmodist-ncep-slp
    python scripts/check_recipes.py --all        # also simulates the held-out runs (~6 min)

For each named recipe with a ``[heldout]`` section, the model in ``pretrained/``
is evaluated on the recipe's held-out data exactly as ``xatmodist train
--recipe recipes/NAME.toml --evaluate-only`` would, without rewriting the card,
and every held-out number of the card is compared with the new one.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import xatmodist
from xatmodist.recipes import evaluate_heldout, load_recipe


def _numbers(x, prefix=""):
    """(path, number) of every number in a nested card entry."""
    if isinstance(x, dict):
        for k, v in x.items():
            yield from _numbers(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(x, list):
        for i, v in enumerate(x):
            yield from _numbers(v, f"{prefix}[{i}]")
    elif isinstance(x, int | float) and not isinstance(x, bool):
        yield prefix, float(x)


def check(name: str, workdir: Path) -> dict:
    """Largest absolute difference between the card's held-out numbers and a fresh run."""
    recipe = load_recipe(Path("recipes") / f"{name}.toml")
    model = xatmodist.load_model(recipe.get("dest", f"pretrained/{name}"))
    fresh = dict(_numbers(evaluate_heldout(model, recipe, workdir)))
    card = dict(_numbers(model.card.heldout))
    diffs = {k: abs(card[k] - fresh[k]) for k in card if k in fresh}
    worst = max(diffs, key=diffs.get) if diffs else None
    return {
        "numbers_compared": len(diffs),
        "max_abs_difference": diffs.get(worst, math.nan),
        "where": worst,
    }


def main() -> None:
    """Check the named recipes (or every encoder recipe with held-out data)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="*")
    p.add_argument("--all", action="store_true")
    p.add_argument("--workdir", default="data")
    args = p.parse_args()
    names = args.names
    if args.all:
        names = [
            f.stem for f in sorted(Path("recipes").glob("*.toml")) if "heldout" in f.read_text()
        ]
    out = {n: check(n, Path(args.workdir)) for n in names}
    print(json.dumps(out, indent=1))  # noqa: T201


if __name__ == "__main__":
    main()
