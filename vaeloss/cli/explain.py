"""``vaeloss explain``: what a named loss convention really optimises."""

from __future__ import annotations

import argparse
import json
from typing import Any

from vaeloss.cli.options import add_json, add_sizes

__all__ = ["add_explain_parser", "run_explain"]


def add_explain_parser(sub: Any) -> None:
    p = sub.add_parser("explain", help="what a named loss convention really optimises")
    p.add_argument(
        "convention",
        nargs="?",
        help="a preset name such as size_average or keras_blog; omit for a table of all",
    )
    add_sizes(p, batch=128, latent=20)
    add_json(p)
    p.set_defaults(handler=run_explain)


def run_explain(args: argparse.Namespace) -> int:
    from vaeloss.objective.explain import explain_convention, format_explanation, format_table
    from vaeloss.objective.presets import preset_names

    D = args.data_dim or 784
    if args.convention is None:
        if args.json:
            rows = [explain_convention(n, B=args.batch_size, D=D, k=args.latent_dim) for n in preset_names()]
            print(json.dumps(rows, indent=2))
        else:
            print(format_table(B=args.batch_size, D=D, k=args.latent_dim))
        return 0
    info = explain_convention(args.convention, B=args.batch_size, D=D, k=args.latent_dim)
    print(json.dumps(info, indent=2) if args.json else format_explanation(info))
    return 0
