"""What a run of the user's step replaces, each as a context manager that undoes itself:

* :func:`torchvision_datasets`: a torchvision data set whose files are not on this machine
  (``datasets.MNIST("../data", download=True, ...)``) by synthetic images of the same mode, size
  and number as torchvision gives them, through the user's own ``transform`` (a data set whose
  files are there is read as it is: nothing is downloaded);
* :func:`loader_in_process`: a ``DataLoader`` with ``num_workers=N`` loads in this process (the
  sandbox lets no process start);
* :func:`cpu_only`: a move to an absent GPU (``.cuda()``, ``.to("cuda")``, ``device="cuda"``)
  stays on the CPU;
* :func:`notebook_shims`: what a notebook imports from its host, when the host is absent:
  ``google.colab`` (``drive.mount`` does nothing), ``IPython.display`` (displays show nothing)
  and ``tqdm.notebook`` without ``ipywidgets`` (the text progress bar instead);
* :func:`logger_stand_ins`: an experiment logger or plotting library this environment lacks
  (``wandb``, ``tensorboardX``, ``seaborn``...) by a stand-in that accepts every call and does
  nothing (they do not change the loss);
* :func:`pretend_writes`: ``os.makedirs``/``os.mkdir`` of a folder the sandbox does not let the
  step create does nothing, and ``open`` for writing a file it does not let the step write opens
  a scratch file in the worker's temporary folder instead, so that a log or a checkpoint written
  before the first step neither stops the run nor touches the user's files.

Each records what it replaced in a :class:`Replacements` list, in words for the report.
"""

from __future__ import annotations

import inspect
import os
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "IMAGE_SETS",
    "ImageSet",
    "Replacements",
    "cpu_only",
    "LOGGERS",
    "loader_in_process",
    "logger_stand_ins",
    "notebook_shims",
    "pretend_writes",
    "torchvision_datasets",
]


@dataclass
class Replacements:
    """What was replaced, in words, each said once."""

    said: list[str] = field(default_factory=list)

    def add(self, text: str) -> None:
        if text not in self.said:
            self.said.append(text)


@dataclass(frozen=True)
class ImageSet:
    """A torchvision image data set as it gives its samples.

    Attributes:
        name: its class in ``torchvision.datasets``.
        mode: the PIL mode of its images (``L``: 1 channel, ``RGB``: 3).
        width, height: the images' size in pixels.
        lengths: the number of samples of each split (``train``/``test`` for the ones chosen by
            ``train=``, else the values of ``split=`` or ``background=``).
        classes: the number of labels (0: the sample's target is CelebA's 40 attributes).
    """

    name: str
    mode: str
    width: int
    height: int
    lengths: dict[str, int]
    classes: int = 10

    def split_of(self, bound: dict[str, Any]) -> str:
        """The split a constructor call asks for (its bound arguments): ``split=`` when it
        names one of :attr:`lengths`, ``background=`` (Omniglot), else ``train=``."""
        if "background" in bound:
            return "train" if bound["background"] else "test"
        if bound.get("split") in self.lengths:
            return str(bound["split"])
        return "train" if bound.get("train", True) else "test"


IMAGE_SETS = tuple(
    ImageSet(*spec)
    for spec in (
        ("MNIST", "L", 28, 28, {"train": 60000, "test": 10000}),
        ("FashionMNIST", "L", 28, 28, {"train": 60000, "test": 10000}),
        ("KMNIST", "L", 28, 28, {"train": 60000, "test": 10000}),
        ("EMNIST", "L", 28, 28, {"train": 112800, "test": 18800}, 47),
        ("QMNIST", "L", 28, 28, {"train": 60000, "test": 60000}),
        ("CIFAR10", "RGB", 32, 32, {"train": 50000, "test": 10000}),
        ("CIFAR100", "RGB", 32, 32, {"train": 50000, "test": 10000}, 100),
        ("SVHN", "RGB", 32, 32, {"train": 73257, "test": 26032, "extra": 531131}),
        (
            "STL10",
            "RGB",
            96,
            96,
            {"train": 5000, "test": 8000, "unlabeled": 100000, "train+unlabeled": 105000},
        ),
        ("CelebA", "RGB", 178, 218, {"train": 162770, "valid": 19867, "test": 19962, "all": 202599}, 0),
        ("Omniglot", "L", 105, 105, {"train": 19280, "test": 13180}, 964),
    )
)
"""The torchvision data sets a run replaces when their files are missing."""


def _synthetic_class(spec: ImageSet, real: type, said: Replacements) -> type:
    """A stand-in for ``real`` that reads the user's files when they are there, else gives
    synthetic images as ``real`` would (deterministic per index)."""
    import numpy as np
    import torch
    from torch.utils.data import Dataset

    signature = inspect.signature(real)  # its constructor's, without self

    class Synthetic(Dataset):
        def __new__(cls, *args: Any, **kwargs: Any) -> Any:
            given = dict(kwargs, download=False) if "download" in signature.parameters else kwargs
            try:
                return real(*args, **given)  # the user's files, when they are there
            except (RuntimeError, OSError, ValueError):
                return super().__new__(cls)

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            bound = dict(signature.bind_partial(*args, **kwargs).arguments)
            for param in signature.parameters.values():  # EMNIST(root, split, **kwargs)
                if param.kind is inspect.Parameter.VAR_KEYWORD:
                    bound.update(bound.pop(param.name, {}))
            self.split = spec.split_of(bound)
            self.transform = bound.get("transform")
            self.target_transform = bound.get("target_transform")
            self.root = bound.get("root")
            self.length = spec.lengths.get(self.split, next(iter(spec.lengths.values())))
            self.classes = [str(i) for i in range(spec.classes)] if spec.classes else []
            said.add(
                f"torchvision.datasets.{spec.name} (its files are not under {self.root!s}) by "
                f"{self.length:,} synthetic {spec.mode} images of {spec.width}x{spec.height}, as its "
                f"{self.split} split gives them, through your transform"
            )

        def __len__(self) -> int:
            return self.length

        def _pixels(self, index: int) -> Any:
            rng = np.random.default_rng(index)
            channels = () if spec.mode == "L" else (3,)
            return rng.integers(0, 256, size=(spec.height, spec.width, *channels), dtype=np.uint8)

        def __getitem__(self, index: int) -> tuple[Any, Any]:
            from PIL import Image

            if not -self.length <= index < self.length:
                raise IndexError(f"index {index} is out of range for {self.length} samples")
            index %= self.length
            image = Image.fromarray(self._pixels(index), mode=spec.mode)
            target: Any = (
                index % spec.classes
                if spec.classes
                else torch.from_numpy(np.random.default_rng(index).integers(0, 2, size=40))
            )
            if self.transform is not None:
                image = self.transform(image)
            if self.target_transform is not None:
                target = self.target_transform(target)
            return image, target

        @property
        def targets(self) -> Any:
            return torch.arange(self.length) % max(spec.classes, 1)

        @property
        def data(self) -> Any:
            """All images at once, as torchvision keeps them (uint8)."""
            rng = np.random.default_rng(0)
            channels = () if spec.mode == "L" else (3,)
            pixels = rng.integers(
                0, 256, size=(self.length, spec.height, spec.width, *channels), dtype=np.uint8
            )
            return torch.from_numpy(pixels) if spec.name.endswith("MNIST") else pixels

    Synthetic.__name__ = Synthetic.__qualname__ = spec.name
    return Synthetic


@contextmanager
def _patched(owner: Any, name: str, value: Any) -> Iterator[None]:
    original = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, original)


@contextmanager
def torchvision_datasets(said: Replacements) -> Iterator[None]:
    """torchvision's image data sets replaced by synthetic ones when their files are missing
    (nothing when torchvision is not installed)."""
    try:
        import torchvision.datasets as tv
    except ImportError:
        yield
        return
    originals = {s.name: getattr(tv, s.name) for s in IMAGE_SETS if hasattr(tv, s.name)}
    try:
        for spec in IMAGE_SETS:
            if spec.name in originals:
                setattr(tv, spec.name, _synthetic_class(spec, originals[spec.name], said))
        yield
    finally:
        for name, cls in originals.items():
            setattr(tv, name, cls)


@contextmanager
def loader_in_process(said: Replacements) -> Iterator[None]:
    """``DataLoader(..., num_workers=N)`` loads in this process."""
    from torch.utils.data import DataLoader

    original = DataLoader.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        if kwargs.get("num_workers"):
            said.add(f"DataLoader(num_workers={kwargs['num_workers']}) by loading in one process")
        kwargs.update(num_workers=0, pin_memory=False)
        kwargs.pop("persistent_workers", None)
        kwargs.pop("prefetch_factor", None)
        original(self, *args, **kwargs)

    with _patched(DataLoader, "__init__", init):
        yield


def _on_cpu(value: Any, said: Replacements) -> Any:
    import torch

    if isinstance(value, str) and value.startswith(("cuda", "mps")):
        said.add(f"the device {value!r} (absent here) by the CPU")
        return "cpu"
    if isinstance(value, torch.device) and value.type in ("cuda", "mps"):
        said.add(f"the device {str(value)!r} (absent here) by the CPU")
        return torch.device("cpu")
    return value


@contextmanager
def cpu_only(said: Replacements) -> Iterator[None]:
    """Moves to an absent GPU stay on the CPU (a torch function mode; nothing when CUDA is
    there)."""
    import torch
    from torch.overrides import TorchFunctionMode

    if torch.cuda.is_available():
        yield
        return

    class CpuOnly(TorchFunctionMode):
        def __torch_function__(
            self, func: Callable[..., Any], types: Any, args: tuple[Any, ...] = (), kwargs: Any = None
        ) -> Any:
            kwargs = kwargs or {}
            if func is torch.Tensor.cuda:
                said.add("the device 'cuda' (absent here) by the CPU")
                return args[0]
            if "device" in kwargs:
                kwargs = {**kwargs, "device": _on_cpu(kwargs["device"], said)}
            if func is torch.Tensor.to:
                args = tuple(_on_cpu(a, said) for a in args)
            return func(*args, **kwargs)

    with CpuOnly():
        yield


@contextmanager
def pretend_writes(said: Replacements) -> Iterator[None]:
    """Folders the sandbox refuses are not made; files it refuses are written to scratch files."""
    import builtins
    import io
    import tempfile

    from vaeloss.usercode.sandbox import SandboxError

    makedirs, mkdir, opener = os.makedirs, os.mkdir, builtins.open

    def quiet(original: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return original(*args, **kwargs)
            except SandboxError:
                return None

        return call

    def scratch_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        try:
            return opener(file, mode, *args, **kwargs)
        except SandboxError:
            said.add(f"writing {os.fsdecode(file)!r} by writing a scratch file (yours is untouched)")
            handle, scratch = tempfile.mkstemp()
            os.close(handle)
            return opener(scratch, mode, *args, **kwargs)

    os.makedirs, os.mkdir = quiet(makedirs), quiet(mkdir)
    builtins.open = io.open = scratch_open
    try:
        yield
    finally:
        os.makedirs, os.mkdir = makedirs, mkdir
        builtins.open = io.open = opener


def _importable(name: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


@contextmanager
def notebook_shims(said: Replacements) -> Iterator[None]:
    """``google.colab`` and ``tqdm.notebook`` as a notebook's host would give them, when absent
    here (``sys.modules`` entries, removed afterwards)."""
    import sys
    import types

    added: list[str] = []
    if not _importable("google.colab"):
        colab = types.ModuleType("google.colab")
        drive = types.ModuleType("google.colab.drive")

        def mount(*args: Any, **kwargs: Any) -> None:
            said.add("google.colab's drive.mount by nothing (no Colab here)")

        drive.mount = mount  # type: ignore[attr-defined]
        colab.drive = drive  # type: ignore[attr-defined]
        google = sys.modules.get("google") or types.ModuleType("google")
        for name, module in (("google", google), ("google.colab", colab), ("google.colab.drive", drive)):
            if name not in sys.modules:
                sys.modules[name] = module
                added.append(name)
    if not _importable("IPython"):  # a notebook's displays, without Jupyter: nothing shown
        ipython = types.ModuleType("IPython")
        display = types.ModuleType("IPython.display")

        def nothing(*args: Any, **kwargs: Any) -> None:
            return None

        for name in ("display", "clear_output", "HTML", "Image", "Markdown", "Math", "SVG", "Video"):
            setattr(display, name, nothing)
        ipython.display = display  # type: ignore[attr-defined]
        ipython.get_ipython = nothing  # type: ignore[attr-defined]  # not inside IPython
        ipython.version_info = (8, 24, 0, "")  # type: ignore[attr-defined]  # matplotlib asks
        for name, module in (("IPython", ipython), ("IPython.display", display)):
            sys.modules[name] = module
            added.append(name)
    if _importable("tqdm") and not _importable("ipywidgets"):
        import tqdm.std

        shim = types.ModuleType("tqdm.notebook")
        shim.tqdm, shim.trange = tqdm.std.tqdm, tqdm.std.trange  # type: ignore[attr-defined]
        previous = sys.modules.get("tqdm.notebook")
        sys.modules["tqdm.notebook"] = shim
        added.append("tqdm.notebook")
    try:
        yield
    finally:
        for name in added:
            sys.modules.pop(name, None)
        if "tqdm.notebook" in added and previous is not None:
            sys.modules["tqdm.notebook"] = previous


LOGGERS = (
    "wandb",
    "tensorboardX",
    "tensorboard_logger",
    "mlflow",
    "comet_ml",
    "neptune",
    "visdom",
    "clearml",
    "seaborn",
    "plotly",
)
"""Experiment loggers and plotting libraries a run stands in for when they are not installed
(they do not change the loss)."""


class _StandIn(types.ModuleType):
    """A module whose every attribute is a stand-in that accepts any call and does nothing;
    its first use is said."""

    def __init__(self, name: str, said: Replacements) -> None:
        super().__init__(name)
        self._said = said

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "_said":
            raise AttributeError(name)
        from unittest.mock import MagicMock

        self._said.add(f"{self.__name__} (not installed here) by a stand-in that does nothing")
        value = MagicMock(name=f"{self.__name__}.{name}")
        setattr(self, name, value)
        return value


@contextmanager
def logger_stand_ins(said: Replacements) -> Iterator[None]:
    """Stand-ins for the modules of :data:`LOGGERS` that are not installed (``sys.modules``
    entries, removed afterwards)."""
    import sys

    added = [name for name in LOGGERS if name not in sys.modules and not _importable(name)]
    for name in added:
        sys.modules[name] = _StandIn(name, said)
    try:
        yield
    finally:
        for name in added:
            sys.modules.pop(name, None)
