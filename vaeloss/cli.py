"""Command-line interface: ``main(argv) -> int``; the only place that prints and exits.

Library code raises :class:`~vaeloss.errors.VaelossError`; here it becomes
``error: ...`` on stderr and exit status 2. The exit statuses are in :mod:`vaeloss.exit_codes`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from vaeloss._version import __version__
from vaeloss.errors import VaelossError
from vaeloss.exit_codes import EXIT_ERROR, EXIT_OK, EXIT_SIGINT

__all__ = ["build_parser", "main"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise VaelossError(f"{message}. Try '{self.prog} --help'.")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"Expected an integer >= 1 but got {text!r}")
    return value


def _add_sizes(p: argparse.ArgumentParser) -> None:
    p.add_argument("--batch-size", "-B", type=_positive_int, default=128, help="batch size B (128)")
    p.add_argument("--data-dim", "-D", type=_positive_int, default=None, help="data dim D (784)")
    p.add_argument("--latent-dim", "-k", type=_positive_int, default=20, help="latent dim k (20)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``vaeloss`` command."""
    parser = _Parser(
        prog="vaeloss",
        description="What your VAE loss really optimises, and whether your VAE has collapsed.",
    )
    parser.add_argument("--version", action="version", version=f"vaeloss {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    ex = sub.add_parser("explain", help="what a named loss convention really optimises")
    ex.add_argument(
        "convention",
        nargs="?",
        help="a preset name such as size_average or keras_blog; omit for a table of all",
    )
    _add_sizes(ex)
    ex.add_argument("--json", action="store_true", help="print one JSON object")

    from vaeloss.audit.command import add_audit_parser
    from vaeloss.check.command import add_check_parser

    add_check_parser(sub)
    add_audit_parser(sub)
    return parser


def _run_explain(args: argparse.Namespace) -> int:
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


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default: ``sys.argv[1:]``) and return the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
        if args.command is None:
            parser.print_help()
            return 0
        if args.command == "explain":
            return _run_explain(args)
        return int(args.handler(args))
    except VaelossError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except SystemExit as exc:  # --help and --version
        return exc.code if isinstance(exc.code, int) else EXIT_OK
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return EXIT_SIGINT
    except Exception as exc:  # noqa: BLE001 - an internal error is still one line and exit 2
        print(
            f"error: this is a bug in vaeloss, please report it: {type(exc).__name__}: {exc} "
            f"(at {_origin(exc)})",
            file=sys.stderr,
        )
        return EXIT_ERROR


def _origin(exc: BaseException) -> str:
    """``file:line`` of the innermost frame of ``exc``'s traceback."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return "unknown"
    return f"{Path(tb.tb_frame.f_code.co_filename).name}:{tb.tb_lineno}"
