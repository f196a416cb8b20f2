"""``vaeloss check``: which objective a loss really is (the report printed here)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from vaeloss.cli.options import add_assignments, add_json, add_sizes, positive_int
from vaeloss.errors import InvalidArgumentError, LossCheckError, VaelossError
from vaeloss.exit_codes import ExitCode
from vaeloss.project import FORMATS

__all__ = ["add_check_parser", "run_check"]

EPILOG = """\
a whole project:
  vaeloss check .  checks every .py and .ipynb file under the folder (git's view of it in a
  repository; virtual environments, site-packages, build and cache folders skipped) whose
  syntax computes a KL-like and a reconstruction term, each in its own worker (-j at once),
  and prints one summary (--format text|json|github|sarif). Settings: [tool.vaeloss] in
  pyproject.toml; '# vaeloss: ignore[CODE]' on a line drops that finding there. Results are
  cached in .vaeloss_cache/ (ignored by git) unless --no-cache.

the script's own arguments:
  vaeloss check train.py -- --config configs/vae.yaml --batch-size 64
  everything after -- goes to the file's argparse, when it is loaded and when it is run
  (else its defaults; a required argument not given is None).

exit status:
  0    checked, no error finding
  1    an error finding (beta depends on the batch size, wrong KL sign, non-finite at edge
       inputs, no gradient, --expect-beta mismatch)
  2    cannot be checked: a message says why (with --json, one JSON object with "error");
       for a project, a file that could not be checked (the others still are)
  3    a bug in vaeloss (one line naming it, to report)
  130  interrupted by SIGINT (Ctrl-C): the worker stopped, nothing written
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
        nargs="+",
        help="PATH[:NAME] or pkg.module[:NAME]: a .py file or .ipynb notebook; NAME a function, "
        "Class, Class.method, object or factory (default: the loss-like one); or folders and "
        "files of a project (see below)",
    )
    add_sizes(
        p,
        batch=None,
        latent=None,
        batch_help="batch size B (the step's when the file is run, else 128)",
        latent_help="latent dim k (the step's when the file is run, else 20)",
    )
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
        "else text; OBJECT.ATTRIBUTE=VALUE sets a module-level object's attribute (args.kl_weight=0.5)",
        dotted=True,
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
    _add_mode(p)
    p.add_argument("--expect-beta", type=float, default=None, help="fail unless beta equals X")
    add_json(p)
    p.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="seconds allowed for your code: running the file up to its first backward() (at most "
        "half of them), loading it and calling the loss, from when its code starts (60)",
    )
    project = p.add_argument_group("options for a whole project")
    project.add_argument("--format", choices=FORMATS, default=None, help="the summary's format (text)")
    project.add_argument(
        "--jobs",
        "-j",
        type=positive_int,
        default=None,
        help="files checked at once (the CPU count, at most 4)",
    )
    project.add_argument("--no-cache", action="store_true", help="check every file again, write nothing")
    p.set_defaults(handler=run_check)


def _add_mode(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--mode",
        choices=("auto", "run", "call"),
        default="auto",
        help="run: run the file as a script up to its first backward() (data sets replaced by "
        "synthetic ones of their shape, nothing written) and check the loss it differentiates at "
        "the sizes it ran at; call: call the loss at --batch-size/--data-dim/--latent-dim; auto "
        "(default): run a PyTorch training loop whose loss is not named, else call",
    )


def _is_project(args: argparse.Namespace) -> bool:
    targets = args.target
    return len(targets) > 1 or args.format is not None or Path(targets[0]).is_dir()


def run_check(args: argparse.Namespace) -> int:
    if _is_project(args):
        return _run_project(args)
    return _run_one(args, args.target[0])


def _run_one(args: argparse.Namespace, target: str) -> int:
    from vaeloss.check.report import format_report
    from vaeloss.check.runner import DEFAULT_TIMEOUT, check_loss

    try:
        if args.expect_beta is not None and not args.expect_beta == args.expect_beta:
            raise LossCheckError("Expected a number but got expect_beta=nan. Try --expect-beta 1.")
        report = check_loss(
            target,
            batch_size=args.batch_size,
            data_dim=args.data_dim,
            latent_dim=args.latent_dim,
            input_shape=args.input_shape,
            args=dict(args.arg),
            init=dict(args.init),
            expect_beta=args.expect_beta,
            timeout=args.timeout or DEFAULT_TIMEOUT,
            exec_module=args.exec_module,
            taps={role: getattr(args, role) for role in ("mu", "scale", "recon") if getattr(args, role)},
            mode=args.mode,
            script_args=tuple(getattr(args, "script_args", ())),
        )
    except VaelossError as exc:
        if args.json:  # one JSON object on stdout whatever happens
            failure = {"target": target, "error": str(exc), "exit_code": int(ExitCode.USAGE_ERROR)}
            print(json.dumps(failure, indent=2))
        raise
    if args.json:
        print(json.dumps(report.to_json(), indent=2, allow_nan=False))
    else:
        print(format_report(report))
    return report.exit_code


_ONE_FILE_ONLY = ("arg", "init", "expect_beta", "mu", "scale", "recon")


def _run_project(args: argparse.Namespace) -> int:
    from vaeloss.project import formats
    from vaeloss.project.run import ProjectOptions, check_project, default_jobs

    if getattr(args, "script_args", ()):
        raise InvalidArgumentError(
            f"Expected arguments after -- only when checking one file but got "
            f"{' '.join(args.script_args)!r} with targets={' '.join(args.target)!r}. Try "
            f"vaeloss check FILE -- {' '.join(args.script_args)}"
        )
    for name in _ONE_FILE_ONLY:
        value = getattr(args, name)
        if value:
            flag = "--" + name.replace("_", "-")
            raise InvalidArgumentError(
                f"Expected {flag} only when checking one file but got {flag} with targets="
                f'{" ".join(args.target)!r}. Try [tool.vaeloss.targets."FILE"] in pyproject.toml '
                f"for a file of a project, or vaeloss check FILE {flag} ..."
            )
    sizes = {k: v for k, v in (("B", args.batch_size), ("D", args.data_dim), ("k", args.latent_dim)) if v}
    options = ProjectOptions(
        paths=tuple(Path(t) for t in args.target),
        sizes=sizes,
        input_shape=args.input_shape,
        timeout=args.timeout,
        exec_module=args.exec_module,
        jobs=args.jobs or default_jobs(),
        cache=not args.no_cache,
    )
    bar = _progress()
    try:
        result = check_project(
            options,
            on_done=None if bar is None else lambda _o: bar.update(1),
            on_start=None if bar is None else lambda n: bar.reset(total=n),
        )
    finally:
        if bar is not None:
            bar.close()
    chosen = "json" if args.json and args.format is None else (args.format or "text")
    render = {
        "text": formats.text_summary,
        "json": formats.json_summary,
        "github": formats.github_annotations,
        "sarif": formats.sarif,
    }[chosen]
    text = render(result)
    if text:
        print(text)
    summary_file = os.environ.get("GITHUB_STEP_SUMMARY")
    if chosen == "github" and summary_file:
        with open(summary_file, "a", encoding="utf-8") as f:  # GitHub's file: appended to
            f.write(formats.markdown_summary(result))
    return int(result.exit_code)


def _progress() -> Any:
    """A progress bar on a terminal (files done), else None."""
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(desc="vaeloss check", unit="file", file=sys.stderr, leave=False)
