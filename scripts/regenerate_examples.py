"""Regenerate the example reports in ``reports/`` from the stories in SEEDS.md.

Run: ``python scripts/regenerate_examples.py reports`` (or ``make examples``). Each example is
one ``vaeloss audit`` command, listed in ``reports/README.md`` with its verdict.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from vaeloss.cli import main as cli

EXAMPLES: list[tuple[str, str, list[str]]] = [
    (
        "1-size-average-collapse",
        "Seed 1: mean BCE + summed KLD at KL weight 1 (expect total collapse)",
        ["--convention", "size_average", "--beta", "1"],
    ),
    (
        "2-size-average-kl-1e-4",
        "Seed 1's fix: the same loss with its KL multiplied by 1e-4",
        ["--convention", "size_average", "--beta", "1e-4"],
    ),
    (
        "3-size-average-recommended",
        "The same loss with the KL weight recommended by example 1",
        ["--convention", "size_average", "--beta", "{recommended}"],
    ),
    (
        "4a-keras-blog",
        "Seed 2: the Keras blog convention (beta = D/k)",
        ["--convention", "keras_blog", "--beta", "1"],
    ),
    (
        "4b-keras-docs",
        "Seed 2: the Keras docs convention (the ELBO)",
        ["--convention", "keras_docs", "--beta", "1"],
    ),
    (
        "5-kl-coefficient-sweep",
        "Seed 5: reconstruction + c * KL with a 2-D latent, c in 0 ... 20",
        [
            "--convention",
            "kl_weight_c",
            "--beta",
            "1",
            "--latent-dim",
            "2",
            "--sweep",
            "0,0.02,0.1,0.5,1,2,10,20",
        ],
    ),
]


def regenerate(root: Path) -> list[dict[str, str]]:
    rows = []
    recommended = None
    for name, story, args in EXAMPLES:
        out = root / name
        args = [a.format(recommended=recommended) for a in args]
        cmd = ["audit", *args, "--out", str(out)]
        code = cli([*cmd, "--overwrite"] if out.exists() else cmd)
        if code not in (0, 1):
            raise SystemExit(f"example {name} failed with exit status {code}")
        res = json.loads((out / "metrics.json").read_text())
        if name.startswith("1-"):
            recommended = f"{res['recommended_beta']['own_units']:.6g}"
        rows.append(
            {"name": name, "story": story, "command": "vaeloss " + " ".join(cmd), "headline": res["headline"]}
        )
    lines = [
        "# Example reports",
        "",
        "Regenerate all with `make examples` (`python scripts/regenerate_examples.py reports`).",
        "All on the built-in digits (8x8, D = 64), MLP 64-128-k, batch 64.",
        "",
    ]
    for r in rows:
        lines += [
            f"## [{r['name']}]({r['name']}/report.md)",
            "",
            r["story"],
            "",
            f"`{r['command']}`",
            "",
            f"> {r['headline']}",
            "",
        ]
    (root / "README.md").write_text("\n".join(lines))
    return rows


if __name__ == "__main__":
    regenerate(Path(sys.argv[1] if len(sys.argv) > 1 else "reports"))
