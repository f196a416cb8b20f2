"""Command-line interface: ``main(argv) -> int``; the only place that prints and exits.

Library code raises :class:`~vaeloss.errors.VaelossError`; here it becomes ``error: ...`` on
stderr and exit status 2 (:class:`~vaeloss.exit_codes.ExitCode` ``USAGE_ERROR``); any other
exception is a bug in vaeloss: one line, exit status 3 (``INTERNAL_ERROR``). One module per
command (:mod:`~vaeloss.cli.explain`, :mod:`~vaeloss.cli.check`, :mod:`~vaeloss.cli.audit`,
:mod:`~vaeloss.cli.merge`),
the options they share in :mod:`~vaeloss.cli.options`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from vaeloss._version import __version__
from vaeloss.errors import VaelossError
from vaeloss.exit_codes import ExitCode

__all__ = ["build_parser", "main"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise VaelossError(f"{message}. Try '{self.prog} --help'.")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``vaeloss`` command."""
    from vaeloss.cli.audit import add_audit_parser
    from vaeloss.cli.check import add_check_parser
    from vaeloss.cli.explain import add_explain_parser
    from vaeloss.cli.merge import add_merge_parser

    parser = _Parser(
        prog="vaeloss",
        description="What your VAE loss really optimises, and whether your VAE has collapsed.",
    )
    parser.add_argument("--version", action="version", version=f"vaeloss {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    add_explain_parser(sub)
    add_check_parser(sub)
    add_audit_parser(sub)
    add_merge_parser(sub)
    return parser


def split_script_args(words: list[str]) -> tuple[list[str], tuple[str, ...]]:
    """``vaeloss check FILE -- ARGS``: the words before ``--`` for vaeloss, those after it for the
    checked script's own argparse (``check`` only; other commands keep ``--`` as argparse does).

    >>> split_script_args(["check", "t.py", "--", "--config", "c.yaml"])
    (['check', 't.py'], ('--config', 'c.yaml'))
    >>> split_script_args(["audit", "--", "x"])
    (['audit', '--', 'x'], ())
    """
    if words[:1] != ["check"] or "--" not in words:
        return words, ()
    at = words.index("--")
    return words[:at], tuple(words[at + 1 :])


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default: ``sys.argv[1:]``) and return the exit status."""
    parser = build_parser()
    try:
        words, script_args = split_script_args(list(sys.argv[1:] if argv is None else argv))
        args = parser.parse_args(words)
        args.script_args = script_args
        if args.command is None:
            parser.print_help()
            return ExitCode.OK
        return int(args.handler(args))
    except VaelossError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return ExitCode.USAGE_ERROR
    except SystemExit as exc:  # --help and --version
        return exc.code if isinstance(exc.code, int) else ExitCode.OK
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return ExitCode.SIGINT
    except BrokenPipeError:  # piped into `head`: the reader has what it wanted
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # no second error when Python flushes stdout
        return ExitCode.SIGPIPE
    except Exception as exc:  # noqa: BLE001 - an internal error is still one line
        print(
            f"error: this is a bug in vaeloss, please report it: {type(exc).__name__}: {exc} "
            f"(at {_origin(exc)})",
            file=sys.stderr,
        )
        return ExitCode.INTERNAL_ERROR


def _origin(exc: BaseException) -> str:
    """``file:line`` of the innermost frame of ``exc``'s traceback."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return "unknown"
    return f"{Path(tb.tb_frame.f_code.co_filename).name}:{tb.tb_lineno}"
