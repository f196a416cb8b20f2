"""``vaeloss check``: which objective a loss really is (the report printed here)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from vaeloss.cli.options import add_assignments, add_json, add_sizes
from vaeloss.errors import LossCheckError, VaelossError
from vaeloss.exit_codes import ExitCode

__all__ = ["add_check_parser", "run_check"]

EPILOG = """\
exit status:
  0    checked, no error finding
  1    an error finding (beta depends on the batch size, wrong KL sign, non-finite at edge
       inputs, no gradient, --expect-beta mismatch)
  2    cannot be checked: a message says why (with --json, one JSON object with "error")
  3    a bug in vaeloss (one line naming it, to report)
  141  the output's reader closed it (vaeloss check FILE | head)
"""


def _shape(text: str) -> tuple[int, ...]:
    try:
        parts = tuple(int(p) for p in text.replace("x", ",").split(","))
    except ValueError:
        parts = ()
    if not parts or any(p < 1 for p in parts):
        raise argparse.ArgumentTypeError(f"Expected C,H,W (e.g. 1,28,28) but got {text!r}")
    return parts


def add_check_parser(sub: Any) -> None:
    p = sub.add_parser(
        "check",
        help="report which objective a loss function really is",
        description=(
            "Probe a VAE loss function numerically and report its likelihood, "
            "reductions and effective beta. The file is executed (imported) in a "
            "separate process, as pytest does: only check code you trust."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "target",
        metavar="TARGET",
        help="PATH[:NAME] or pkg.module[:NAME]: a .py file or .ipynb notebook; NAME a function, "
        "Class, Class.method, object or factory (default: the loss-like one)",
    )
    add_sizes(p, batch=128, latent=20)
    p.add_argument(
        "--input-shape",
        type=_shape,
        default=None,
        help="C,H,W of image inputs (Keras, TensorFlow, JAX, MLX files get them as H,W,C)",
    )
    add_assignments(
        p,
        "--arg",
        "value for an argument of the loss (repeatable): a literal, else an expression in the module, "
        "else text",
    )
    add_assignments(
        p, "--init", "constructor argument of the loss's class or factory (repeatable), read as --arg is"
    )
    for role, what in (("mu", "posterior mean"), ("scale", "posterior scale"), ("recon", "decoder output")):
        p.add_argument(
            f"--{role}",
            default=None,
            metavar="NAME",
            help=f"for a loss computed inside a model: the submodule whose output is the {what}",
        )
    p.add_argument(
        "--exec-module",
        action="store_true",
        help="run the whole file when loading it (by default loops, with blocks, bare calls and "
        "the main guard are not run)",
    )
    p.add_argument("--expect-beta", type=float, default=None, help="fail unless beta equals X")
    add_json(p)
    p.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        help="seconds allowed for loading the file and probing the loss, from when its code starts (60)",
    )
    p.set_defaults(handler=run_check)


def run_check(args: argparse.Namespace) -> int:
    from vaeloss.check.report import format_report
    from vaeloss.check.runner import check_loss

    try:
        if args.expect_beta is not None and not args.expect_beta == args.expect_beta:
            raise LossCheckError("Expected a number but got expect_beta=nan. Try --expect-beta 1.")
        report = check_loss(
            args.target,
            batch_size=args.batch_size,
            data_dim=args.data_dim,
            latent_dim=args.latent_dim,
            input_shape=args.input_shape,
            args=dict(args.arg),
            init=dict(args.init),
            expect_beta=args.expect_beta,
            timeout=args.timeout,
            exec_module=args.exec_module,
            taps={role: getattr(args, role) for role in ("mu", "scale", "recon") if getattr(args, role)},
        )
    except VaelossError as exc:
        if args.json:  # one JSON object on stdout whatever happens
            failure = {"target": args.target, "error": str(exc), "exit_code": int(ExitCode.USAGE_ERROR)}
            print(json.dumps(failure, indent=2))
        raise
    if args.json:
        print(json.dumps(report.to_json(), indent=2, allow_nan=False))
    else:
        print(format_report(report))
    return report.exit_code
