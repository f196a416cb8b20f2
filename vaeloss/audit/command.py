"""argparse wiring of ``vaeloss audit``."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from vaeloss.errors import InvalidArgumentError

__all__ = ["add_audit_parser", "run_audit_command"]


def _hidden(text: str) -> tuple[int, ...]:
    try:
        parts = tuple(int(p) for p in text.split(",") if p.strip())
    except ValueError:
        parts = (0,)
    if any(p < 1 for p in parts):
        raise argparse.ArgumentTypeError(f"Expected sizes like 400 or 256,128 but got {text!r}")
    return parts


def add_audit_parser(sub: Any) -> None:
    p = sub.add_parser(
        "audit",
        help="train small VAEs, measure posterior collapse, recommend a beta",
        description=(
            "Train a sweep of small VAEs with your loss convention and report posterior "
            "collapse, the KL/reconstruction balance and a recommended KL weight in your "
            "own units. --loss FILE is executed (imported), as pytest does."
        ),
    )
    src = p.add_argument_group("loss")
    src.add_argument("--loss", metavar="FILE[:FN]", help="your loss function (read by vaeloss check)")
    src.add_argument("--convention", metavar="NAME", help="a preset (see vaeloss explain)")
    src.add_argument(
        "--beta",
        type=float,
        default=None,
        help="weight on the KL term in the audited loss's own units (default: as written)",
    )
    d = p.add_argument_group("data and model")
    d.add_argument(
        "--data",
        default="digits",
        help="digits | mnist | fashion-mnist | npz:PATH | npy:PATH | linear-gaussian",
    )
    d.add_argument("--data-dir", default=None, help="folder with MNIST-style IDX files")
    d.add_argument("--download", action="store_true", help="let torchvision download MNIST")
    d.add_argument("--binarize", choices=["none", "static", "dynamic"], default="none")
    d.add_argument("--rescale", action="store_true", help="map data min..max to [0, 1]")
    d.add_argument("--model", default="mlp", help="mlp | conv | linear | FILE:Class")
    d.add_argument("--hidden", type=_hidden, default=None, help="hidden sizes, e.g. 400 or 256,128")
    d.add_argument("--latent-dim", "-k", type=int, default=None)
    t = p.add_argument_group("training")
    t.add_argument("--epochs", type=int, default=None)
    t.add_argument("--batch-size", "-B", type=int, default=None)
    t.add_argument("--lr", type=float, default=None)
    t.add_argument("--sweep", default="auto", help="auto | none | X,Y,... (your units)")
    t.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--iwae-samples", type=int, default=1000)
    o = p.add_argument_group("output")
    o.add_argument("--out", default=None, help="report folder (default reports/<data>-<convention>-<time>)")
    o.add_argument(
        "--overwrite",
        action="store_true",
        help="replace --out if it is an empty folder or an earlier vaeloss report (never anything else)",
    )
    o.add_argument("--json", action="store_true", help="print one JSON object")
    o.add_argument("--fail-on-collapse", action="store_true", help="exit 1 on posterior collapse")
    p.set_defaults(handler=run_audit_command)


def run_audit_command(args: argparse.Namespace) -> int:
    from vaeloss.audit.output import prepare_report_folder
    from vaeloss.audit.pipeline import AuditOptions, execute, plan_audit
    from vaeloss.audit.report import default_report_dir, format_summary, write_report

    if args.beta is not None and not math.isfinite(args.beta):
        raise InvalidArgumentError(f"Expected a finite number >= 0 but got beta={args.beta}. Try --beta 1.")
    opts = AuditOptions(
        loss=args.loss,
        convention=args.convention,
        kl_weight=args.beta,
        data=args.data,
        data_dir=args.data_dir,
        download=args.download,
        binarize=args.binarize,
        rescale=args.rescale,
        model=args.model,
        hidden=args.hidden,
        latent_dim=args.latent_dim,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        sweep=args.sweep,
        device=args.device,
        seed=args.seed,
        iwae_samples=args.iwae_samples,
        progress=None if not args.json else False,
    )
    plan = plan_audit(opts)
    loss_name = args.convention or (Path(args.loss.partition(":")[0]).stem if args.loss else "elbo")
    out = Path(args.out) if args.out else default_report_dir(args.data.partition(":")[0], loss_name)
    folder = prepare_report_folder(out, overwrite=args.overwrite)
    try:
        run = execute(plan)
        write_report(run, folder)
    except BaseException:
        folder.discard()
        raise
    res = run.result
    if args.json:
        print(json.dumps(res.to_json(), indent=2, allow_nan=False))
    else:
        print(format_summary(res))
    return 1 if (args.fail_on_collapse and res.verdict.collapsed) else 0
