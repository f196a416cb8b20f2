"""The substitutes of a run: synthetic torchvision data sets as torchvision gives them (and the
real files when they are there), devices, loader workers, writes."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision import datasets, transforms

from vaeloss.check.observe.substitutes import (
    IMAGE_SETS,
    Replacements,
    cpu_only,
    loader_in_process,
    notebook_shims,
    pretend_writes,
    torchvision_datasets,
)
from vaeloss.usercode import sandbox


@pytest.mark.parametrize("spec", IMAGE_SETS, ids=lambda s: s.name)
def test_a_missing_data_set_gives_synthetic_images_as_torchvision_does(spec, tmp_path):
    """In the sandbox, as a run has it (a real class that makes its folder before it looks for
    its files makes nothing)."""
    sandbox.install([tmp_path / "scratch"])
    said = Replacements()
    with sandbox.enforced(), pretend_writes(said), torchvision_datasets(said):
        cls = getattr(datasets, spec.name)
        kwargs = {"split": "balanced"} if spec.name == "EMNIST" else {}
        data = cls(str(tmp_path), transform=transforms.ToTensor(), download=True, **kwargs)
        image, target = data[3]
        again, _ = data[3]
    channels = 1 if spec.mode == "L" else 3
    assert tuple(image.shape) == (channels, spec.height, spec.width)
    assert image.dtype == torch.float32 and 0.0 <= float(image.min()) and float(image.max()) <= 1.0
    assert torch.equal(image, again)  # deterministic per index
    assert len(data) == spec.lengths["train"]
    if spec.classes:
        assert 0 <= int(target) < spec.classes
    else:
        assert tuple(target.shape) == (40,)  # CelebA's attributes
    assert getattr(datasets, spec.name) is not cls  # torchvision's own class again
    assert said.said == [
        f"torchvision.datasets.{spec.name} (its files are not under {tmp_path}) by "
        f"{spec.lengths['train']:,} synthetic {spec.mode} images of {spec.width}x{spec.height}, as its "
        "train split gives them, through your transform"
    ]
    assert not any(tmp_path.iterdir()), "nothing is downloaded or written"


def test_the_data_sets_are_restored_afterwards():
    original = datasets.MNIST
    with torchvision_datasets(Replacements()):
        assert datasets.MNIST is not original
    assert datasets.MNIST is original


def test_a_test_split_has_its_own_length(tmp_path):
    with torchvision_datasets(Replacements()):
        assert len(datasets.MNIST(str(tmp_path), train=False)) == 10000
        assert len(datasets.CelebA(str(tmp_path), split="valid")) == 19867
        assert len(datasets.SVHN(str(tmp_path), split="test")) == 26032


def _idx(path: Path, array: np.ndarray) -> None:
    """An MNIST IDX file (big-endian header: magic, then the dims), as torchvision extracts it."""
    magic = {3: 0x803, 1: 0x801}[array.ndim]
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", n) for n in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def test_a_data_set_whose_files_are_there_is_read_as_it_is(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    images = np.arange(5 * 28 * 28).reshape(5, 28, 28) % 251
    for split, n in (("train", 5), ("t10k", 5)):
        _idx(raw / f"{split}-images-idx3-ubyte", images[:n])
        _idx(raw / f"{split}-labels-idx1-ubyte", np.arange(n))
    said = Replacements()
    with torchvision_datasets(said):
        data = datasets.MNIST(str(tmp_path), train=True, download=True, transform=transforms.PILToTensor())
    assert len(data) == 5 and said.said == []
    assert torch.equal(data[2][0][0], torch.from_numpy(images[2].astype(np.uint8)))


def test_moves_to_an_absent_gpu_stay_on_the_cpu():
    said = Replacements()
    with cpu_only(said):
        x = torch.zeros(3, device="cuda")
        y = x.cuda().to("cuda:0")
        model = torch.nn.Linear(2, 2).cuda().to(torch.device("cuda"))
        z = torch.ones(2, device=torch.device("cuda")) + y[:2]
    assert x.device.type == y.device.type == z.device.type == "cpu"
    assert next(model.parameters()).device.type == "cpu"
    assert said.said == [
        "the device 'cuda' (absent here) by the CPU",
        "the device 'cuda:0' (absent here) by the CPU",
    ]
    with pytest.raises((RuntimeError, AssertionError)):
        torch.zeros(1, device="cuda")  # outside, torch's own error


def test_a_loader_with_workers_loads_in_this_process():
    said = Replacements()
    data = torch.utils.data.TensorDataset(torch.arange(10.0))
    with loader_in_process(said):
        loader = torch.utils.data.DataLoader(data, batch_size=4, num_workers=3, persistent_workers=True)
    assert loader.num_workers == 0 and len(list(loader)) == 3
    assert said.said == ["DataLoader(num_workers=3) by loading in one process"]


def test_writes_the_sandbox_refuses_go_to_scratch_files(tmp_path, monkeypatch):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    project = tmp_path / "project"
    project.mkdir()
    (project / "train.log").write_text("the user's own log\n")
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr("tempfile.tempdir", None)
    sandbox.install([scratch])
    said = Replacements()
    with sandbox.enforced(), pretend_writes(said):
        import os

        os.makedirs(project / "results", exist_ok=True)
        with open(project / "train.log", "w") as f:
            f.write("clobbered?\n")
        np.save(project / "results.npy", np.zeros(3))
    assert (project / "train.log").read_text() == "the user's own log\n"
    assert sorted(p.name for p in project.iterdir()) == ["train.log"]
    assert said.said[0].startswith(f"writing {str(project / 'train.log')!r} by writing a scratch file")
    with sandbox.enforced(), pytest.raises(PermissionError, match="does not let the checked code write"):
        open(project / "train.log", "w")


def test_a_notebook_s_host_is_stood_in_for_when_absent():
    """Colab's drive, IPython's displays (matplotlib asks IPython's version when it is
    imported) and tqdm.notebook without ipywidgets; removed afterwards."""
    import importlib.util
    import sys

    if importlib.util.find_spec("IPython") is not None:
        pytest.skip("IPython is installed here: nothing to stand in for")
    said = Replacements()
    with notebook_shims(said):
        import matplotlib.pyplot as plt
        from google.colab import drive
        from IPython.display import HTML, display
        from tqdm.notebook import tqdm

        drive.mount("/content/drive")
        display(HTML("<b>x</b>"))
        plt.imshow(np.zeros((2, 2)))
        plt.close("all")
        assert list(tqdm(range(3), disable=True)) == [0, 1, 2]
    assert said.said == ["google.colab's drive.mount by nothing (no Colab here)"]
    assert "google.colab" not in sys.modules and "IPython" not in sys.modules
