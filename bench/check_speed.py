"""Speed of `vaeloss check` beyond Python and torch start-up, against a plain reference:
calling the loss once per probe input (the minimum any numerical probe needs).

Prints: seconds for the whole check (subprocess included), the worker's torch import, the
probing itself, and the ratio of probing to the plain reference. Then a row per framework
(Keras on torch, TensorFlow, JAX, MLX, NumPy; files of ``tests/check/frameworks``): the whole
check against the time a fresh Python takes to import what the check's worker imports for it
(goal: at most that import time + 3 s on an idle machine). Then a row per training script of
``tests/check/run`` checked in run mode (the script runs up to its first backward(), then its
loss is probed) against call mode and against the script's own imports (goal: run mode at most
those imports + 3 s).
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
FRAMEWORKS = Path(__file__).resolve().parents[1] / "tests" / "check" / "frameworks"
FRAMEWORK_ROWS = (
    # framework, what the worker imports for it, a file, the check's arguments
    ("keras (on torch)", "import os; os.environ['KERAS_BACKEND'] = 'torch'; import torch, keras",
     "keras_blog_vae.py", {"latent_dim": 2}),
    ("tensorflow", "import torch, tensorflow", "tf_keras_io_loss.py", {"input_shape": (28, 28, 1)}),
    ("jax", "import torch, jax, flax, optax", "flax_train.py", {}),
    ("mlx", "import torch, mlx.core, mlx.nn", "mlx_loss.py", {}),
    ("numpy", "import torch, numpy", "numpy_loss.py", {}),
)  # fmt: skip


def _import_seconds(code: str) -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    return time.perf_counter() - t


def frameworks() -> None:
    """A row per framework: the whole check against the import of the framework itself."""
    print(f"\n{'framework':<18} {'check s':>8} {'import s':>9} {'beyond s':>9} {'goal':>6}")
    for name, imports, file, kwargs in FRAMEWORK_ROWS:
        _import_seconds(imports)  # once, so that both timings below find the files in the cache
        imported = _import_seconds(imports)
        t = time.perf_counter()
        check_loss(str(FRAMEWORKS / file), **kwargs)
        whole = time.perf_counter() - t
        beyond = whole - imported
        print(f"{name:<18} {whole:8.2f} {imported:9.2f} {beyond:9.2f} {'ok' if beyond <= 3 else 'over':>6}")


RUN = Path(__file__).resolve().parents[1] / "tests" / "check" / "run"
RUN_ROWS = ("examples_latent8.py", "cifar_method_dict.py", "inline_loop_fashion.py")


def run_mode() -> None:
    """A row per training script: run mode against call mode and the script's imports."""
    imports = "import torch, torchvision"
    _import_seconds(imports)
    imported = _import_seconds(imports)
    print(
        f"\n{'script (run mode)':<26} {'run s':>6} {'call s':>7} {'import s':>9} {'beyond s':>9} {'goal':>6}"
    )
    for name in RUN_ROWS:
        seconds = {}
        for mode in ("call", "run"):
            t = time.perf_counter()
            check_loss(str(RUN / name), mode=mode)
            seconds[mode] = time.perf_counter() - t
        beyond = seconds["run"] - imported
        print(
            f"{name:<26} {seconds['run']:6.2f} {seconds['call']:7.2f} {imported:9.2f} {beyond:9.2f} "
            f"{'ok' if beyond <= 3 else 'over':>6}"
        )


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
    frameworks()
    run_mode()


if __name__ == "__main__":
    main()
