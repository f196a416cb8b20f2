"""Speed of `vaeloss check` beyond Python and torch start-up, against a plain reference:
calling the loss once per probe input (the minimum any numerical probe needs).

Prints: seconds for the whole check (subprocess included), the worker's torch import, the
probing itself, and the ratio of probing to the plain reference.
Run: python bench/check_speed.py
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import torch

from vaeloss.check.runner import check_loss

EXAMPLES = Path(__file__).resolve().parents[1] / "vaeloss" / "examples"


def main() -> None:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import torch, vaeloss.check.probe"], check=True)
    startup = time.perf_counter() - t
    print(f"{'loss file':<22} {'check s':>8} {'startup s':>10} {'probing s':>10} {'plain s':>8} {'ratio':>6}")
    for name in ("mean_bce_sum_kld.py", "keras_blog.py", "sum_squared_error.py"):
        path = EXAMPLES / name
        t = time.perf_counter()
        check_loss(str(path))
        whole = time.perf_counter() - t
        t = time.perf_counter()
        check_loss(str(path), isolate=False)
        probing = time.perf_counter() - t
        ns: dict = {}
        exec(path.read_text(), ns)
        fn = next(v for k, v in ns.items() if callable(v) and k not in ("torch", "F"))
        x = torch.rand(128, 784, dtype=torch.float64)
        t = time.perf_counter()
        for _ in range(60):  # a probe makes about 60 calls at B=128, D=784, k=20 and doubled sizes
            fn(x, x, torch.randn(128, 20, dtype=torch.float64), torch.randn(128, 20, dtype=torch.float64))
        plain = time.perf_counter() - t
        print(f"{name:<22} {whole:8.2f} {startup:10.2f} {probing:10.2f} {plain:8.3f} {probing / plain:6.1f}")


if __name__ == "__main__":
    main()
