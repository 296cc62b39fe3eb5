"""Command-line pieces shared by the evaluation scripts (no heavy imports)."""

from __future__ import annotations

import argparse


def add_ensemble_models(p: argparse.ArgumentParser) -> None:
    """Add ``--ensemble-models LABEL=MODEL ...``: score a trial's models, not the zoo's."""
    p.add_argument(
        "--ensemble-models",
        nargs="*",
        default=None,
        metavar="LABEL=MODEL",
        help="--ensembles: these models (names or folders, e.g. a trial's) instead of the zoo's",
    )


def apply_ensemble_models(p: argparse.ArgumentParser, args, table: dict) -> None:
    """Replace ``table`` (label -> model) by ``--ensemble-models``, if it was given.

    Refused (``p.error``) without ``--ensembles``, with ``--update-cards`` (the
    cards are the zoo's models') and for an entry that is not ``LABEL=MODEL``.
    """
    if args.ensemble_models is None:
        return
    if not args.ensembles or args.update_cards:
        p.error("--ensemble-models goes with --ensembles and without --update-cards")
    bad = [e for e in args.ensemble_models if "=" not in e.strip("=")]
    if bad or not args.ensemble_models:
        p.error(
            f"--ensemble-models takes LABEL=MODEL entries (e.g. atmodist-ens=data/trial/model); "
            f"got {args.ensemble_models!r}"
        )
    table.clear()
    table.update(e.split("=", 1) for e in args.ensemble_models)
