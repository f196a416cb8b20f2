"""``vaeloss merge DIR... --out DIR``: the shards of one audit (``vaeloss audit --shard I/N``)
joined into the report of the whole sweep (:mod:`vaeloss.audit.shards`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from vaeloss.cli.options import add_json
from vaeloss.exit_codes import ExitCode

EPILOG = """\
The shards are the report folders of one audit run as N parts, e.g. a SLURM job array:
  #SBATCH --array=1-4
  vaeloss audit --loss my_loss.py --seeds 3 --shard $SLURM_ARRAY_TASK_ID/4 --out shards/$SLURM_ARRAY_TASK_ID
then, once all have finished, in the same folder:
  vaeloss merge shards/* --out report

The merge plans the same audit again (the loss, model and data files must be where the
shards read them; nothing is trained), refuses shards of different audits, and recomputes
the verdicts, the recommendation and the sweep's figures; the figures drawn from the audited
model's weights (reconstructions, samples, latent space) are those of the shard that trained it.

exit status:
  0    merged
  2    not the shards of one audit, a shard missing, or --out not writable (nothing written)
  3    a bug in vaeloss
"""


def add_merge_parser(sub: Any) -> None:
    p = sub.add_parser(
        "merge",
        help="join the shard reports of one audit (audit --shard I/N) into one report",
        description="Join the report folders of an audit's shards into the report of the whole sweep.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("shards", nargs="+", metavar="DIR", help="the shards' report folders")
    p.add_argument("--out", required=True, help="the merged report's folder (new)")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace --out if it is an empty folder or an earlier vaeloss report (never anything else)",
    )
    add_json(p)
    p.set_defaults(handler=run_merge_command)


def run_merge_command(args: argparse.Namespace) -> int:
    from vaeloss.audit.merge import merge_shards
    from vaeloss.audit.output import prepare_report_folder
    from vaeloss.audit.report import format_summary, write_report
    from vaeloss.audit.shards import read_shards

    shards = read_shards([Path(d) for d in args.shards])
    run, borrowed = merge_shards(shards)
    folder = prepare_report_folder(Path(args.out), overwrite=args.overwrite)
    try:
        write_report(run, folder, borrowed=borrowed)
    except BaseException:
        folder.discard()
        raise
    res = run.result
    print(json.dumps(res.to_json(), indent=2, allow_nan=False) if args.json else format_summary(res))
    print(f"merged {len(shards)} shards into {res.report_dir}", file=sys.stderr)
    return ExitCode.OK
