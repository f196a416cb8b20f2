"""``vaeloss audit``: train small VAEs, measure collapse, recommend a beta (the summary, the
notes before training and the signal messages printed here)."""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vaeloss.audit import defaults
from vaeloss.audit.stop import StopRequest
from vaeloss.cli.options import add_assignments, add_json, add_sizes, positive_int
from vaeloss.errors import InvalidArgumentError
from vaeloss.exit_codes import ExitCode

if TYPE_CHECKING:
    from vaeloss.audit.plan import AuditOptions

__all__ = ["add_audit_parser", "run_audit_command"]


def _hidden(text: str) -> tuple[int, ...]:
    try:
        parts = tuple(int(p) for p in text.split(",") if p.strip())
    except ValueError:
        parts = (0,)
    if any(p < 1 for p in parts):
        raise argparse.ArgumentTypeError(f"Expected sizes like 400 or 256,128 but got {text!r}")
    return parts


EPILOG = """\
report folder:
  The report is written into a new folder (--out, default reports/<data>-<loss>-<time>),
  checked (writable, free space) before training. An existing --out is used only with
  --overwrite, and only if it is empty or an earlier vaeloss report (it holds a
  .vaeloss-report marker listing its files and nothing else); vaeloss never writes into,
  renames or deletes anything else.

interrupting:
  Ctrl-C (SIGINT) or SIGTERM stops the audit early and writes a partial report of what was
  measured so far, marked with the phase cut short and the epochs run; a second signal
  stops at once without a report.

exit status:
  0    the audit completed (posterior collapse is a finding, not a failure)
  1    posterior collapse, with --fail-on-collapse
  2    bad input or the audit cannot run (a message says why; no report is written)
  3    a bug in vaeloss (one line naming it, to report)
  130  interrupted by SIGINT (partial report kept)
  141  the output's reader closed it (piped into head)
  143  interrupted by SIGTERM (partial report kept)
"""

MAX_SEED = 2**32 - 1


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(
            f"Expected an integer seed in 0 .. {MAX_SEED} but got seed={text!r}. Try --seed 0"
        )
    return value


def add_audit_parser(sub: Any) -> None:
    p = sub.add_parser(
        "audit",
        help="train small VAEs, measure posterior collapse, recommend a beta",
        description=(
            "Train a sweep of small VAEs with your loss convention and report posterior "
            "collapse, the KL/reconstruction balance and a recommended KL weight in your "
            "own units. --loss FILE is executed (imported), as pytest does."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _loss_options(p.add_argument_group("loss"))
    _data_options(p.add_argument_group("data and model"))
    _training_options(p.add_argument_group("training"))
    _where_options(p.add_argument_group("where it runs"))
    _output_options(p.add_argument_group("output"))
    p.set_defaults(handler=run_audit_command)


Group = argparse._ArgumentGroup


def _loss_options(src: Group) -> None:
    src.add_argument("--loss", metavar="FILE[:FN]", help="your loss function (read by vaeloss check)")
    src.add_argument("--convention", metavar="NAME", help="a preset (see vaeloss explain)")
    src.add_argument(
        "--beta",
        type=float,
        default=None,
        help="weight on the KL term in the audited loss's own units (default: as written)",
    )
    add_assignments(
        src, "--arg", "value for an argument of the --loss function (repeatable), as vaeloss check --arg"
    )


def _data_options(d: Group) -> None:
    d.add_argument(
        "--data",
        default="digits",
        help="digits | mnist | fashion-mnist | npz:PATH | npy:PATH | linear-gaussian",
    )
    d.add_argument("--data-dir", default=None, help="folder with MNIST-style IDX files")
    d.add_argument("--download", action="store_true", help="let torchvision download MNIST")
    d.add_argument("--binarize", choices=["none", "static", "dynamic"], default="none")
    d.add_argument("--rescale", action="store_true", help="map data min..max to [0, 1]")
    d.add_argument("--model", default="mlp", help="mlp | conv | linear | FILE:Class (your own VAE class)")
    add_assignments(
        d,
        "--init",
        "constructor argument of your model (repeatable): a literal, else an expression in its file",
    )
    d.add_argument(
        "--model-api",
        default=None,
        metavar="METHOD:NAMES",
        help="how your model gives its posterior when it cannot be found by probing, "
        "e.g. encode:mu,logvar or forward:recon,input,mu,logvar",
    )
    d.add_argument(
        "--decoder-output",
        choices=["logits", "probs", "mean"],
        default=None,
        help="what your model's decoder emits (default: found from its last operation)",
    )
    d.add_argument(
        "--hidden", type=_hidden, default=None, help="hidden sizes of the built-in MLP, e.g. 400 or 256,128"
    )


def _training_options(t: Group) -> None:
    t.add_argument(
        "--epochs", type=int, default=None, help=f"most epochs a model trains (default {defaults.MAX_EPOCHS})"
    )
    add_sizes(
        t,
        batch=None,
        latent=None,
        data_dim=False,
        batch_help=f"batch size B of the training and of your loss's formulas ({defaults.BATCH_SIZE})",
        latent_help="latent dim of the built-in models (default: about sqrt(D), 2 to 20)",
    )
    t.add_argument(
        "--lr", type=float, default=None, help=f"Adam's initial learning rate ({defaults.LEARNING_RATE:g})"
    )
    t.add_argument(
        "--time-budget",
        type=float,
        default=defaults.TIME_BUDGET,
        metavar="SECONDS",
        help=f"seconds for the setup and the training, before the evaluation ({defaults.TIME_BUDGET:g})",
    )
    t.add_argument(
        "--eval-budget",
        type=float,
        default=defaults.EVAL_BUDGET,
        metavar="SECONDS",
        help=f"seconds the IWAE evaluation aims at; K and rows chosen to fit ({defaults.EVAL_BUDGET:g})",
    )
    t.add_argument("--sweep", default="auto", help="auto | none | X,Y,... (your units)")
    t.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    t.add_argument("--seed", type=_seed, default=0, help="random seed, 0 .. 2^32-1 (0)")
    t.add_argument(
        "--seeds",
        type=positive_int,
        default=1,
        metavar="N",
        help="models per beta, each from its own seed, for error bars (1)",
    )
    t.add_argument("--iwae-samples", type=int, default=1000, help="most samples K of the IWAE bound (1000)")


def _where_options(w: Group) -> None:
    w.add_argument(
        "--executor",
        default="local",
        choices=["local", "ray"],
        help="local: this process; ray: the sweep's models in groups, one Ray task each (vaeloss[ray])",
    )
    w.add_argument(
        "--ray-address",
        default=None,
        metavar="ADDRESS",
        help="auto, HOST:PORT or ray://HOST:PORT of a running cluster (default: start a local instance)",
    )
    w.add_argument(
        "--groups",
        type=positive_int,
        default=None,
        metavar="N",
        help="Ray tasks to split the sweep into (default: one per GPU with CUDA, else per CPU)",
    )
    w.add_argument(
        "--shard",
        default=None,
        metavar="I/N",
        help="train only the I-th of N parts of the sweep (1 <= I <= N; a SLURM array task); "
        "vaeloss merge joins the shards' reports",
    )


def _executor(args: argparse.Namespace) -> Any:
    """The executor asked for (not connected yet); options of Ray without ``--executor ray`` are refused."""
    if args.shard is not None and (args.executor == "ray" or args.tensorboard):
        with_ = "--executor ray" if args.executor == "ray" else "--tensorboard"
        raise InvalidArgumentError(
            f"Expected --shard without {with_} but got shard={args.shard!r}: a shard is one job's part "
            f"of the sweep, trained in its process. Try --shard alone (its own job per shard), or "
            f"{with_} without --shard."
        )
    if args.executor != "ray":
        given = "--ray-address" if args.ray_address is not None else "--groups" if args.groups else None
        if given is not None:
            raise InvalidArgumentError(
                f"Expected {given} only with --executor ray but got executor={args.executor!r}. "
                f"Try --executor ray {given} ..."
            )
        return None
    from vaeloss.audit.on_ray import RayExecutor

    return RayExecutor(address=args.ray_address, groups=args.groups)


def _output_options(o: Group) -> None:
    o.add_argument("--out", default=None, help="report folder, new (default reports/<data>-<loss>-<time>)")
    o.add_argument(
        "--overwrite",
        action="store_true",
        help="replace --out if it is an empty folder or an earlier vaeloss report (never anything else)",
    )
    o.add_argument(
        "--tensorboard",
        default=None,
        metavar="DIR",
        help="also write each model of the sweep as a TensorBoard run under DIR/<report name>/",
    )
    add_json(o)
    o.add_argument("--fail-on-collapse", action="store_true", help="exit 1 on posterior collapse")


class _Abort(BaseException):
    """A second signal: stop at once (a BaseException, so that no ``except Exception`` and no
    handler of the first signal's KeyboardInterrupt catches it)."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


_EXIT_CODES = {signal.SIGINT: ExitCode.SIGINT, signal.SIGTERM: ExitCode.SIGTERM}


class _Signals:
    """SIGINT/SIGTERM handlers for the audit's lifetime: the first signal asks the audit to stop
    (``stop``) and write a partial report; a second one stops at once."""

    def __init__(self) -> None:
        self.received: signal.Signals | None = None
        self.stop = StopRequest()
        self._saved: dict[signal.Signals, Any] = {}

    def _handle(self, signum: int, frame: object) -> None:
        sig = signal.Signals(signum)
        if self.received is not None:
            raise _Abort(_EXIT_CODES[sig])
        self.received = sig
        self.stop.request(sig.name)
        print(
            f"\n{sig.name} received: finishing what was measured and writing a partial report "
            f"(send it again to stop at once, without a report)",
            file=sys.stderr,
        )

    def __enter__(self) -> _Signals:
        if threading.current_thread() is threading.main_thread():
            for sig in _EXIT_CODES:
                self._saved[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._saved.items():
            signal.signal(sig, handler)


def _notice(text: str) -> None:
    """What the audit says before training (the budgets do not hold...): on stderr."""
    print(f"note: {text}", file=sys.stderr, flush=True)


def _options(args: argparse.Namespace) -> AuditOptions:
    """The audit's options from the command line (checked here where argparse cannot)."""
    from vaeloss.audit.pipeline import AuditOptions

    if args.beta is not None and not math.isfinite(args.beta):
        raise InvalidArgumentError(f"Expected a finite number >= 0 but got beta={args.beta}. Try --beta 1.")
    if args.arg and not args.loss:
        raise InvalidArgumentError(
            f"Expected --arg only with --loss FILE[:FN] (it is an argument of your loss function) but "
            f"got arg={'='.join(args.arg[0])!r} without --loss. Try --loss my_loss.py --arg "
            f"{'='.join(args.arg[0])}."
        )
    return AuditOptions(
        loss=args.loss,
        args=tuple(args.arg),
        convention=args.convention,
        kl_weight=args.beta,
        data=args.data,
        data_dir=args.data_dir,
        download=args.download,
        binarize=args.binarize,
        rescale=args.rescale,
        model=args.model,
        init=tuple(args.init),
        model_api=args.model_api,
        decoder_output={"probs": "probabilities"}.get(args.decoder_output, args.decoder_output),
        hidden=args.hidden,
        latent_dim=args.latent_dim,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        time_budget=args.time_budget,
        eval_budget=args.eval_budget,
        sweep=args.sweep,
        device=args.device,
        seed=args.seed,
        seeds=args.seeds,
        iwae_samples=args.iwae_samples,
        progress=True,
        shard=args.shard,
    )


def run_audit_command(args: argparse.Namespace) -> int:
    import time

    started = time.perf_counter()
    from vaeloss.audit.output import prepare_report_folder
    from vaeloss.audit.pipeline import execute, plan_audit
    from vaeloss.audit.report import default_report_dir, format_summary, write_report
    from vaeloss.audit.tensorboard import prepare_tensorboard, write_tensorboard

    executor = _executor(args)
    plan = plan_audit(_options(args))
    loss_name = args.convention or (Path(args.loss.partition(":")[0]).stem if args.loss else "elbo")
    if plan.shard is not None:
        loss_name += f"-shard{plan.shard.index}of{plan.shard.count}"
    out = Path(args.out) if args.out else default_report_dir(args.data.partition(":")[0], loss_name)
    with _Signals() as signals, contextlib.ExitStack() as connected:
        if executor is not None:  # reached (or refused, exit 2) before the report folder exists
            connected.enter_context(executor.connected(plan))
        folder = prepare_report_folder(out, overwrite=args.overwrite)
        try:
            board = prepare_tensorboard(Path(args.tensorboard), out.name) if args.tensorboard else None
            run = execute(plan, executor=executor, stop=signals.stop, notify=_notice, started=started)
            if board is not None:
                run.result.tensorboard_dir = str(write_tensorboard(run, board))
            write_report(run, folder, signals.stop)
        except _Abort as abort:
            folder.discard()
            print("error: interrupted twice: stopped at once, no report written", file=sys.stderr)
            return abort.code
        except BaseException:
            folder.discard()
            raise
    res = run.result
    print(json.dumps(res.to_json(), indent=2, allow_nan=False) if args.json else format_summary(res))
    if res.partial:
        name = signals.received.name if signals.received is not None else "Ctrl-C"
        print(f"interrupted by {name}: partial report in {res.report_dir}", file=sys.stderr)
        return _EXIT_CODES[signals.received] if signals.received is not None else ExitCode.SIGINT
    return ExitCode.FINDING if (args.fail_on_collapse and res.verdict.collapsed) else ExitCode.OK
