"""Trainer speed against plain reference implementations, in one process.

Prints a table of seconds, ratios and % of this machine's measured matmul rate:
1. MNIST size (60,000 x 784 in [0, 1], generated), the pytorch/examples model (784-400-20)
   and loss, batch 128, one epoch: the pytorch/examples pipeline (MNIST-format dataset +
   DataLoader + ToTensor), a plain in-memory loop, and our trainer; then our batched sweep
   of 8 betas vs 8 sequential runs.
2. The default audit model on the built-in digits (20 epochs): batched sweep of 8 betas vs 8
   sequential.
4. Conv models on the digits upsampled to 28x28 (1,797 images): the built-in conv VAE, 8
   copies batched with torch.func vs one after the other; the seed conv VAE (a user's model in
   its training script): one epoch of its own plain loop, and its default audit (training
   seconds, per model-epoch against the plain epoch, and evaluation seconds). --quick skips
   the audit.
3. Where CUDA is available: an MNIST-size epoch on the GPU, 1 model vs 8 betas batched, in
   float32 and with bf16 autocast (the CPU rows run on the CPU whatever the machine has).
The machine's speed drifts, so the MNIST-size cases run in rounds, each round measuring the
matmul rate (2048^2 float32) and then timing each case once; the table gives medians.
Run: python bench/train_speed.py [--quick] [--rounds N]   (--quick skips the DataLoader pipeline)
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from vaeloss.audit.defaults import BATCH_SIZE, hidden_for, latent_dim_for
from vaeloss.engine.data import Dataset, load_dataset
from vaeloss.engine.models import BatchedMLPVAE
from vaeloss.engine.trainer import TrainConfig, train


class ExamplesVAE(nn.Module):  # pytorch/examples vae/main.py
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc21, self.fc22 = nn.Linear(784, 400), nn.Linear(400, 20), nn.Linear(400, 20)
        self.fc3, self.fc4 = nn.Linear(20, 400), nn.Linear(400, 784)

    def forward(self, x):
        h = F.relu(self.fc1(x.view(-1, 784)))
        mu, logvar = self.fc21(h), self.fc22(h)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return torch.sigmoid(self.fc4(F.relu(self.fc3(z)))), mu, logvar


def examples_loss(recon_x, x, mu, logvar):
    bce = F.binary_cross_entropy(recon_x, x.view(-1, 784), reduction="sum")
    return bce - 0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())


class MnistLike(torch.utils.data.Dataset):
    """Like torchvision.datasets.MNIST: uint8 images -> PIL -> ToTensor per item."""

    def __init__(self, images: np.ndarray) -> None:
        from torchvision import transforms

        self.images, self.t = images, transforms.ToTensor()

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i):
        return self.t(Image.fromarray(self.images[i], mode="L")), 0


def matmul_rate() -> float:
    """Best of 3 timings of a 2048^2 float32 matmul, in FLOP/s (about 0.3 s)."""
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    a @ b
    best = 0.0
    for _ in range(3):
        t = time.perf_counter()
        a @ b
        best = max(best, 2 * 2048**3 / (time.perf_counter() - t))
    return best


def epoch_flops(n: int, S: int = 1) -> float:
    """Matmul FLOPs of one epoch of the 784-400-20 model: forward, weight gradients, and input
    gradients for every layer but the first (the data needs none)."""
    weights = 784 * 400 + 400 * 40 + 20 * 400 + 400 * 784
    per_sample = 2 * weights + 2 * weights + 2 * (weights - 784 * 400)
    return S * per_sample * n


def plain_epoch(x: torch.Tensor) -> None:
    torch.manual_seed(0)
    model = ExamplesVAE()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    perm = torch.randperm(x.shape[0])
    for i in range(0, x.shape[0] - 127, 128):
        xb = x[perm[i : i + 128]]
        recon, mu, logvar = model(xb)
        loss = examples_loss(recon, xb, mu, logvar)
        opt.zero_grad()
        loss.backward()
        opt.step()


def loader_epoch(images: np.ndarray) -> None:
    torch.manual_seed(0)
    model = ExamplesVAE()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = torch.utils.data.DataLoader(MnistLike(images), batch_size=128, shuffle=True)
    for xb, _ in loader:
        recon, mu, logvar = model(xb)
        loss = examples_loss(recon, xb, mu, logvar)
        opt.zero_grad()
        loss.backward()
        opt.step()


def ours(
    ds: Dataset,
    betas: list[float],
    hidden=(400,),
    k=20,
    epochs=1,
    batch=128,
    compile: bool = False,
    device: str = "cpu",
    bf16: bool = False,
) -> None:
    model = BatchedMLPVAE(ds.dim, hidden, k, n_models=len(betas))
    cfg = TrainConfig(
        betas=betas,
        epochs=epochs,
        batch_size=batch,
        progress=False,
        compile=compile,
        device=device,
        bf16=bf16,
    )
    train(model, ds, cfg)
    if device == "cuda":
        torch.cuda.synchronize()


def gpu_rows(ds: Dataset) -> list[tuple[str, float, float, list[float]]]:
    """MNIST-size epoch on the GPU: 1 model, then 8 betas batched (target: <= 2x one run)."""
    betas = [0.1, 0.3, 1, 3, 10, 30, 100, 300]
    ours(Dataset("warm", ds.x_train[:4096], ds.x_val[:128], None, None, (784,)), betas, device="cuda")
    rows = []
    for bf16 in (False, True):
        tag = ", bf16" if bf16 else ""
        one = timed(ours, ds, [1.0], device="cuda", bf16=bf16, repeat=3)
        eight = timed(ours, ds, betas, device="cuda", bf16=bf16, repeat=3)
        rows.append((f"GPU{tag}: MNIST-size epoch, 1 model", one, 1.0, []))
        rows.append((f"GPU{tag}: MNIST-size epoch, 8 betas batched / 1 model", eight, eight / one, []))
    return rows


def timed(fn, *args, repeat: int = 1, **kw) -> float:
    """Best wall time of ``repeat`` calls."""
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn(*args, **kw)
        best = min(best, time.perf_counter() - t)
    return best


def rounds(cases: dict[str, Callable[[], None]], n: int) -> tuple[dict[str, list[float]], list[float]]:
    """``n`` rounds; each measures the matmul rate, then times every case once. This machine's
    speed drifts by up to 1.6x over minutes (shared host), so a case is only compared with the
    rate and the reference measured in the same round."""
    times: dict[str, list[float]] = {name: [] for name in cases}
    rates = []
    for _ in range(n):
        rates.append(matmul_rate())
        for name, fn in cases.items():
            times[name].append(timed(fn))
    return times, rates


def sweep_rounds(ds: Dataset, betas: list[float], n: int, **kw) -> tuple[float, float]:
    """Median seconds of the batched sweep and median of its ratio to the 8 sequential runs
    timed right after it, over ``n`` rounds."""
    sweeps, ratios = [], []
    for _ in range(n):
        sweep = timed(ours, ds, betas, **kw)
        seq = sum(timed(ours, ds, [b], **kw) for b in betas)
        sweeps.append(sweep)
        ratios.append(sweep / seq)
    return statistics.median(sweeps), statistics.median(ratios)


# --- conv models -------------------------------------------------------------------------

SEED_CONV = Path(__file__).resolve().parent.parent / "tests" / "audit" / "models" / "seed_conv_vae.py"


def digits28() -> torch.Tensor:
    """The 1,797 scikit-learn digits upsampled to 28x28 in [0, 1]: [1797, 784]."""
    from sklearn.datasets import load_digits

    x = torch.tensor(load_digits().images, dtype=torch.float32)[:, None] / 16
    return F.interpolate(x, size=(28, 28), mode="bilinear").clamp(0, 1).reshape(-1, 784)


def conv_sweep(ds: Dataset, n_models: int, stacking: str, epochs: int) -> None:
    """The built-in conv VAE, ``n_models`` copies, batched (vmap) or looped, ``epochs`` epochs."""
    from vaeloss.engine.build import conv_interface
    from vaeloss.engine.models import ConvVAE
    from vaeloss.engine.stacks import FuncStack, ModuleStack

    def factory() -> nn.Module:
        return ConvVAE((1, 28, 28), 20)

    stack = FuncStack if stacking == "batched" else ModuleStack
    model = stack(factory, conv_interface((1, 28, 28), 20), n_models=n_models, seeds=None, data_dim=784)
    cfg = TrainConfig(betas=[1.0] * n_models, epochs=epochs, batch_size=BATCH_SIZE, progress=False)
    train(model, ds, cfg)


def plain_conv_epoch(x: torch.Tensor, vae: type[nn.Module], loss_fn: Callable) -> None:
    """One epoch of the seed conv VAE as its script trains it (Adam 1e-3), batch 64."""
    torch.manual_seed(0)
    model = vae()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    perm = torch.randperm(x.shape[0])
    for i in range(0, x.shape[0] - BATCH_SIZE + 1, BATCH_SIZE):
        xb = x[perm[i : i + BATCH_SIZE]].view(-1, 1, 28, 28)
        recon, mu, logvar = model(xb)
        loss = loss_fn(recon, xb, mu, logvar)
        opt.zero_grad()
        loss.backward()
        opt.step()


def conv_rows(quick: bool) -> list[tuple[str, float, float, list[float]]]:
    """The built-in conv sweep batched vs looped, and the default audit of the seed conv VAE
    (a user's model read from its training script) against a plain epoch of its own loop."""
    from vaeloss.audit.usermodel import user_class
    from vaeloss.cli import main as cli

    x = digits28()
    ds = Dataset("digits28", x[:1437], x[1437:], None, None, (1, 28, 28))
    rows = []
    batched = timed(conv_sweep, ds, 8, "batched", 2)
    looped = timed(conv_sweep, ds, 8, "loop", 2)
    rows.append(("conv, 1,797 28x28, 8 copies, 2 epochs: vmap batched", batched, batched / looped, []))
    rows.append(("  the same, one copy after the other (reference)", looped, 1.0, []))
    vae, namespace = user_class(f"{SEED_CONV}:VAE")  # read as the audit reads it: no script run
    plain = timed(plain_conv_epoch, x[:1437], vae, namespace["loss_function"])
    rows.append(("seed conv VAE: one epoch of its own loop (reference)", plain, 1.0, []))
    if quick:
        return rows
    with tempfile.TemporaryDirectory() as tmp:
        np.savez(f"{tmp}/d.npz", x=x.view(-1, 1, 28, 28).numpy())
        out = io.StringIO()
        started = time.perf_counter()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            code = cli(
                [
                    "audit", "--model", f"{SEED_CONV}:VAE", "--loss", f"{SEED_CONV}:loss_function",
                    "--data", f"npz:{tmp}/d.npz", "--json", "--out", f"{tmp}/report",
                ]
            )  # fmt: skip
        total = time.perf_counter() - started
    res = json.loads(out.getvalue()) if code in (0, 1) else {}
    if not res:
        return [*rows, (f"seed conv VAE audit failed (exit {code})", total, 0.0, [])]
    model_epochs = sum(row["epochs"] for row in res["sweep"])
    per_epoch = res["seconds_training"] / model_epochs
    converged = sum(bool(row["converged"]) for row in res["sweep"])
    ev = res["evaluation"]
    rows += [
        (f"seed conv VAE default audit, total ({converged}/{len(res['sweep'])} converged)", total, 0.0, []),
        (f"  training: {model_epochs} model-epochs; per model-epoch / plain", res["seconds_training"],
         per_epoch / plain, []),
        (f"  evaluation: K={ev['iwae_samples']}, {ev['rows']} rows, {len(res['sweep'])} models",
         res["seconds_evaluation"], 0.0, []),
    ]  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--conv-only", action="store_true", help="only the conv rows (section 4)")
    args = parser.parse_args()
    if args.conv_only:
        print_rows(conv_rows(args.quick))
        return
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(60_000, 28, 28), dtype=np.uint8)
    x = torch.tensor(images.reshape(60_000, 784), dtype=torch.float32) / 255
    ds = Dataset("mnist-size", x, x[:1000], None, None, (1, 28, 28))
    ours(Dataset("warm", x[:512], x[:128], None, None, (784,)), [1.0])  # import/warm-up
    flops = epoch_flops(60_000)
    cases: dict[str, Callable[[], None]] = {
        "plain": lambda: plain_epoch(x),
        "ours": lambda: ours(ds, [1.0]),
    }
    if not args.quick:
        cases["loader"] = lambda: loader_epoch(images)
    times, rates = rounds(cases, args.rounds)
    med = statistics.median

    def row(name: str, label: str) -> tuple[str, float, float, list[float]]:
        secs = times[name]
        ratio = med([t / p for t, p in zip(secs, times["plain"])])
        return (label, med(secs), ratio, [flops / t / r for t, r in zip(secs, rates)])

    rows = [row("plain", "MNIST-size epoch: plain in-memory loop")]
    if not args.quick:
        rows.append(row("loader", "MNIST-size epoch: pytorch/examples DataLoader"))
    rows.append(row("ours", "MNIST-size epoch: vaeloss trainer"))
    plain = med(times["plain"])
    rate = med(rates)
    compile_once = timed(ours, ds, [1.0], compile=True)
    compiled = timed(ours, ds, [1.0], compile=True, repeat=2)
    for label, sec in (
        ("MNIST-size epoch: vaeloss trainer, compile=True", compiled),
        ("  (its first epoch, compilation included)", compile_once),
    ):
        rows.append((label, sec, sec / plain, [flops / sec / rate]))
    floors = [flops / r for r in rates]
    rows.append(("MNIST-size epoch: matmul floor (FLOPs / rate)", med(floors), med(floors) / plain, [1.0]))
    betas = [0.1, 0.3, 1, 3, 10, 30, 100, 300]
    small = Dataset("mnist-size", x[:15_000], x[:1000], None, None, (1, 28, 28))
    sweep, ratio = sweep_rounds(small, betas, n=3)
    sweep_frac = [epoch_flops(15_000, 8) / sweep / rate]
    rows.append(("15k x 784, 8 betas: batched sweep / 8 sequential", sweep, ratio, sweep_frac))
    digits = load_dataset("digits")
    kw = dict(hidden=hidden_for(digits.dim), k=latent_dim_for(digits.dim), epochs=20, batch=BATCH_SIZE)
    sweep_d, ratio_d = sweep_rounds(digits, betas, n=3, **kw)
    rows.append(("digits default audit model, 8 betas: sweep / sequential", sweep_d, ratio_d, []))
    if torch.cuda.is_available():
        rows.extend(gpu_rows(ds))
    rows.extend(conv_rows(args.quick))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"machine: {torch.get_num_threads()} threads, torch {torch.__version__}; matmul rate "
        f"{min(rates) / 1e9:.0f}-{max(rates) / 1e9:.0f} GFLOP/s over {args.rounds} rounds "
        f"(median {rate / 1e9:.0f})"
    )
    print("MNIST-size rows 1-3: medians over the rounds; % of the rate measured in the same round (range)")
    print_rows(rows)
    print(f"peak memory (whole process): {peak:.0f} MB")


def print_rows(rows: list[tuple[str, float, float, list[float]]]) -> None:
    """The table: case, seconds, ratio to its reference ('-' where none), % of the matmul rate."""
    med = statistics.median
    print(f"{'case':<66} {'seconds':>8} {'ratio':>7} {'% matmul':>9}  {'range':>9}")
    for name, sec, ratio, fracs in rows:
        pct = f"{100 * med(fracs):8.0f}%" if fracs else f"{'':>9}"
        spread = f"{100 * min(fracs):3.0f}-{100 * max(fracs):3.0f}%" if len(fracs) > 1 else ""
        rat = f"{ratio:7.2f}" if ratio else f"{'-':>7}"
        print(f"{name:<66} {sec:8.2f} {rat} {pct}  {spread:>9}")


if __name__ == "__main__":
    main()
