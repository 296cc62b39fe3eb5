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
    if not args.ensemble_models:
        p.error("--ensemble-models takes one LABEL=MODEL entry or more; got none")
    models = label_models(p, "--ensemble-models", args.ensemble_models)
    table.clear()
    table.update(models)


def label_models(p: argparse.ArgumentParser, option: str, entries: list[str]) -> dict:
    """``{label: model}`` of ``option``'s ``LABEL=MODEL`` entries; others are refused."""
    bad = [e for e in entries if "=" not in e.strip("=")]
    if bad:
        p.error(
            f"{option} takes LABEL=MODEL entries (e.g. atmodist-ens=data/trial/model); got {bad!r}"
        )
    return dict(e.split("=", 1) for e in entries)
