"""argparse wiring of ``vaeloss audit`` (filled by the audit issue)."""

from __future__ import annotations

import argparse
from typing import Any

from vaeloss.errors import VaelossError


def add_audit_parser(sub: Any) -> None:
    p = sub.add_parser("audit", help="train small VAEs and measure posterior collapse")
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    raise VaelossError("audit is not available yet in this version")
