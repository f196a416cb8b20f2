"""Overhead of ``vaeloss audit --executor ray`` over the local audit: the default audit (the
built-in digits, its 8-beta sweep) run by the CLI in a fresh process, in this process's
folder, locally and on a local Ray instance the audit starts itself (2 groups, one CPU each on
this 2-core machine), interleaved, median of ``--rounds`` each, idle and beside one busy
process (:func:`contention.busy`), in one run (goal: the Ray path under 15 s slower).
Run: python bench/ray_overhead.py [--rounds 2] [-- audit options...]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from contention import busy, stop_busy  # bench/contention.py (this script's folder)


def audit_seconds(folder: Path, name: str, extra: list[str]) -> tuple[float, dict[str, float]]:
    """Wall time of one ``vaeloss audit`` in a fresh process, and the phases it reports."""
    cmd = [sys.executable, "-m", "vaeloss", "audit", "--out", str(folder / name), "--json", *extra]
    began = time.perf_counter()
    run = subprocess.run(cmd, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - began
    if run.returncode != 0:
        raise SystemExit(f"audit failed ({run.returncode}): {run.stderr[-2000:]}")
    return seconds, json.loads(run.stdout)["seconds"]


def measure(rounds: int, extra: list[str]) -> dict[str, list[tuple[float, dict[str, float]]]]:
    times: dict[str, list[tuple[float, dict[str, float]]]] = {"local": [], "ray": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            for how, args in (("local", []), ("ray", ["--executor", "ray"])):
                times[how].append(audit_seconds(Path(tmp), f"{how}{r}", [*extra, *args]))
    return times


PHASES = ("setup", "training", "evaluation", "figures")


def row(label: str, times: dict[str, list[tuple[float, dict[str, float]]]]) -> str:
    local = statistics.median(t for t, _ in times["local"])
    ray = statistics.median(t for t, _ in times["ray"])

    def phase(name: str) -> float:
        return statistics.median(p[name] for _, p in times["ray"]) - statistics.median(
            p[name] for _, p in times["local"]
        )

    phases = " | ".join(f"{phase(n):+.1f}" for n in PHASES)
    return f"| {label} | {local:.1f} | {ray:.1f} | {ray - local:+.1f} | {phases} | {ray / local:.2f} |"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("audit", nargs="*", help="extra options of vaeloss audit (after --)")
    args = parser.parse_args()
    print(
        "| machine | local audit (s) | on Ray (s) | overhead (s) | "
        + " | ".join(f"{n} (s)" for n in PHASES)
        + " | ratio |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    print(row("idle", measure(args.rounds, args.audit)), flush=True)
    procs = busy(1, limit=3600)
    try:
        print(row("beside one busy process", measure(args.rounds, args.audit)), flush=True)
    finally:
        stop_busy(procs)


if __name__ == "__main__":
    main()
