"""`vaeloss check` on the whole generated corpus (``tests/check/generated``).

Draws N loss files over the frameworks installed (PyTorch, Keras 3, Keras 2 names, TensorFlow,
JAX), checks each as a user would (no name given) in worker processes that check their share
in-process (``-j`` of them, one import of the framework each), and prints:

* per framework: right, refused (a clear refusal or a documented limit), misleading (a refusal
  or finding false of the file by construction), wrong (beta, likelihood, parameterisation or
  output not the truth), traceback, time-out, and files per second in-process;
* per idiom (each choice point's option): how many files were not right;
* each failure class (kind and message, numbers left out) with its count and its smallest
  combination: PyTorch ones shrunk by re-checking ever simpler specs, the others the failing
  spec with the fewest non-default choices;
* files per second through the CLI (``vaeloss check FILE``, a process each) on a few files.

Run: python bench/corpus.py [-n 2000] [-j 2] [--frameworks torch,jax] [--seed 0]
"""

from __future__ import annotations

import argparse
import collections
import importlib.util
import pickle
import random
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

GENERATED = Path(__file__).resolve().parents[1] / "tests" / "check" / "generated"
sys.path.insert(0, str(GENERATED))

import lossgen  # noqa: E402
from harness import Outcome, run_spec  # noqa: E402
from render import render  # noqa: E402

SHARE = {"torch": 0.6, "keras3": 0.1, "keras2": 0.1, "tf": 0.1, "jax": 0.1}
MODULE = {"torch": "torch", "keras3": "keras", "keras2": "keras", "tf": "tensorflow", "jax": "jax"}
KINDS = ("right", "refused", "misleading", "wrong", "traceback", "timeout")


def draw(n: int, frameworks: list[str], seed: int) -> dict[str, list[lossgen.Spec]]:
    """About ``n`` distinct specs, shared among ``frameworks`` as SHARE says."""
    total = sum(SHARE[f] for f in frameworks)
    out = {}
    for f in frameworks:
        rng = random.Random(f"{seed}-{f}")
        want = max(1, round(n * SHARE[f] / total))
        specs: dict[lossgen.Spec, None] = dict.fromkeys(lossgen.covering(f, seed))
        for _ in range(want * 20):
            if len(specs) >= want:
                break
            specs.setdefault(lossgen.random_spec(f, rng))
        out[f] = list(specs)
    return out


def _run_share(specs: list[lossgen.Spec], folder: Path, timeout: float) -> tuple[list[Outcome], float]:
    folder.mkdir(parents=True)
    (folder / "in").write_bytes(pickle.dumps(specs))
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-W", "ignore", str(GENERATED / "batch.py"), str(folder / "in"), str(folder / "out"),
         str(timeout)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True,
    )  # fmt: skip
    return pickle.loads((folder / "out").read_bytes()), time.perf_counter() - started


def run_all(drawn: dict[str, list[lossgen.Spec]], jobs: int, timeout: float) -> tuple[list[Outcome], dict]:
    tasks = []
    for f, specs in drawn.items():
        parts = max(1, min(jobs, len(specs) // 50 or 1))
        tasks += [(f, specs[i::parts]) for i in range(parts)]
    seconds: dict[str, float] = collections.defaultdict(float)
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(jobs) as pool:
        futures = [
            (f, pool.submit(_run_share, specs, Path(tmp) / f"{f}-{i}", timeout))
            for i, (f, specs) in enumerate(tasks)
        ]
        for f, future in futures:
            got, took = future.result()
            outcomes += got
            seconds[f] += took
    return outcomes, seconds


def _shrink(outcome: Outcome, folder: Path) -> lossgen.Spec:
    """The simplest spec that fails the same way (PyTorch, re-checked in this process)."""
    spec, reason = outcome.spec, outcome.reason
    for step in range(60):
        for candidate in lossgen.simpler(spec):
            if run_spec(candidate, folder / f"{step}").reason == reason:
                spec = candidate
                break
        else:
            return spec
    return spec


def _fewest_choices(outcomes: list[Outcome]) -> lossgen.Spec:
    return min((o.spec for o in outcomes), key=lambda s: (len(lossgen.simpler(s)), s.label()))


def report(outcomes: list[Outcome], seconds: dict[str, float], shrink: bool) -> None:
    by_fw: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for o in outcomes:
        by_fw[o.spec.framework][o.kind] += 1
    print(
        f"\n{'framework':<10}"
        + "".join(f"{k:>11}" for k in KINDS)
        + f"{'files':>8}{'files/s':>9}{'right %':>9}"
    )
    print("(files/s: per worker process, in-process checks, the framework's import included)")
    total: collections.Counter = collections.Counter()
    for f, c in by_fw.items():
        n = sum(c.values())
        total.update(c)
        rate = n / seconds[f] if seconds[f] else float("nan")
        print(
            f"{f:<10}"
            + "".join(f"{c[k]:>11}" for k in KINDS)
            + f"{n:>8}{rate:>9.2f}{100 * c['right'] / n:>8.1f}%"
        )
    n = sum(total.values())
    print(
        f"{'all':<10}"
        + "".join(f"{total[k]:>11}" for k in KINDS)
        + f"{n:>8}{'':>9}{100 * total['right'] / n:>8.1f}%"
    )

    idioms: dict[tuple[str, str], collections.Counter] = collections.defaultdict(collections.Counter)
    for o in outcomes:
        for point, value in o.spec.idioms().items():
            idioms[(point, f"{o.spec.framework}:{value}")][o.kind] += 1
    bad = {key: c for key, c in idioms.items() if c["right"] < sum(c.values())}
    print(f"\nidioms not always right ({len(bad)} of {len(idioms)}):")
    for (point, value), c in sorted(bad.items()):
        print(f"  {point:<18} {value:<36} " + ", ".join(f"{k} {c[k]}" for k in KINDS if c[k]))

    classes: dict[str, list[Outcome]] = collections.defaultdict(list)
    for o in outcomes:
        if o.kind != "right":
            classes[o.reason].append(o)
    print(f"\nfailure classes ({len(classes)}):")
    with tempfile.TemporaryDirectory() as tmp:
        for i, (reason, members) in enumerate(sorted(classes.items(), key=lambda kv: -len(kv[1]))):
            torch_members = [o for o in members if o.spec.framework == "torch"]
            smallest = _shrink(torch_members[0], Path(tmp) / str(i)) if shrink and torch_members else None
            smallest = smallest or _fewest_choices(members)
            print(f"\n[{len(members)}] {reason}\n  smallest: {smallest.label()}")
            print("  " + render(smallest).replace("\n", "\n  ").rstrip())


def cli_rate(n: int = 4) -> float:
    """Files per second through ``vaeloss check FILE`` (a process each), PyTorch files."""
    specs = lossgen.covering("torch")[:n]
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        for i, spec in enumerate(specs):
            path = Path(tmp) / f"loss_{i}.py"
            path.write_text(render(spec))
            B, D, k = spec.sizes
            cmd = [
                sys.executable,
                "-m",
                "vaeloss",
                "check",
                str(path),
                "-B",
                str(B),
                "-D",
                str(D),
                "-k",
                str(k),
            ]
            cmd += [f"--arg=beta={v}" for v in spec.args.values()]
            subprocess.run(cmd, capture_output=True, check=False)
        return n / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=2000, help="files in all (default 2000)")
    parser.add_argument("-j", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument(
        "--frameworks", default=",".join(SHARE), help="comma-separated (default: all installed)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per file (default 60)")
    parser.add_argument("--no-shrink", action="store_true", help="do not shrink the failing PyTorch files")
    args = parser.parse_args()
    frameworks = [f for f in args.frameworks.split(",") if importlib.util.find_spec(MODULE[f]) is not None]
    skipped = sorted(set(args.frameworks.split(",")) - set(frameworks))
    if skipped:
        print(f"not installed, left out: {', '.join(skipped)}")
    drawn = draw(args.n, frameworks, args.seed)
    print(f"{sum(map(len, drawn.values()))} files: " + ", ".join(f"{f} {len(s)}" for f, s in drawn.items()))
    started = time.perf_counter()
    outcomes, seconds = run_all(drawn, args.j, args.timeout)
    print(f"checked in {time.perf_counter() - started:.0f} s with -j {args.j}")
    report(outcomes, seconds, shrink=not args.no_shrink)
    print(f"\nthrough the CLI (a process per file): {cli_rate():.2f} files/s")


if __name__ == "__main__":
    main()
