"""How the probe talks to the framework a loss is written in: make arrays of the probe's
values, seed its random numbers, read a number from what it returns, take a gradient.

The probe itself computes in torch (float64): its synthetic inputs, the reference NLLs and
KLs, the fits. A backend turns those inputs into the framework's arrays and distributions, and
the loss's outputs back into numbers, so that a Keras, TensorFlow or JAX loss is a new backend
file, not a change to the probe. :class:`TorchBackend` is the first;
:mod:`~vaeloss.check.probe.backend_tensorflow`, :mod:`~vaeloss.check.probe.backend_jax`,
:mod:`~vaeloss.check.probe.backend_mlx` and :mod:`~vaeloss.check.probe.backend_numpy` are the
others, and Keras 3 runs on one of them (on torch by default: :class:`KerasTorchBackend`).
:func:`vaeloss.check.probe.backends.backend_for` picks one by the file's framework
(:mod:`vaeloss.usercode.frameworks`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import Tensor
from torch.distributions import Bernoulli, Normal

__all__ = [
    "FLOAT32",
    "Backend",
    "KerasTorchBackend",
    "Invocation",
    "TorchBackend",
    "UserCall",
    "per_sample",
    "seed_keras",
]

UserCall = Callable[[list[Any], dict[str, Any], dict[Any, Any]], Any]
"""The user's code as the probe calls it: positional arguments, keyword arguments, and the
values to bind to names outside its parameters for the call."""


@dataclass(frozen=True)
class Invocation:
    """One call of the user's code with the framework's arrays (see
    :class:`~vaeloss.check.probe.calling.Caller`).

    Attributes:
        fn: the code; args, kwargs, bindings: what it is called with.
        owner: identifies the loss object (its calls may share compilations).
        namespace: its module's names, which a compiled call must leave as they are; None for
            a loss with an object's state (a method), never compiled.
    """

    fn: UserCall
    args: list[Any]
    kwargs: dict[str, Any]
    bindings: dict[Any, Any]
    owner: int
    namespace: dict[str, Any] | None

    def as_written(self) -> Any:
        """The call run op by op, as the user wrote it."""
        return self.fn(self.args, self.kwargs, self.bindings)


FLOAT32 = 2.0**-23
"""The resolution of float32 arithmetic (its machine epsilon)."""


def per_sample(shape: tuple[int, ...], batch: int) -> bool:
    """Whether an output of ``shape`` is one value per sample, which frameworks average over
    the batch (as Keras does with a loss returning ``[B]``).

    >>> per_sample((128,), 128), per_sample((128, 784), 128), per_sample((), 128)
    (True, False, False)
    """
    return len(shape) == 1 and shape[0] == batch


def seed_keras(seed: int) -> None:
    """Seed Keras's global random numbers too, when the user's code has imported Keras.

    ``keras.utils.set_random_seed`` also seeds TensorFlow when it is installed, importing it
    (4 s, measured) for code that never did: then TensorFlow is left out (nothing of it to seed).
    """
    import sys

    keras = sys.modules.get("keras")
    if keras is None:
        return
    lazy = getattr(sys.modules.get("keras.src.utils.module_utils"), "tensorflow", None)
    if "tensorflow" in sys.modules or getattr(lazy, "_available", False) is not None:
        keras.utils.set_random_seed(seed)
        return
    lazy._available = False  # type: ignore[union-attr]
    try:
        keras.utils.set_random_seed(seed)
    finally:
        lazy._available = None  # type: ignore[union-attr]


class Backend(Protocol):
    """What the probe needs from a framework (see the module docstring)."""

    name: str
    channels_last: bool
    """Whether images are laid out [H, W, C] (Keras, TensorFlow, JAX) rather than [C, H, W]."""
    differentiable: bool
    """Whether the framework has gradients (NumPy has none: no gradient findings)."""
    resolution: float
    """The relative rounding of the framework's arithmetic on the probe's float64 arrays when
    it is coarser than float64 (0 for float64): the fits' tolerance grows with it
    (:data:`~vaeloss.check.result.RESOLUTION_FACTOR`)."""

    def array(self, value: Tensor) -> Any:
        """The probe's float64 tensor as the framework's array."""
        ...

    def normal(self, loc: Tensor, scale: Tensor) -> Any:
        """A Normal distribution object of the framework (for a loss taking ``q``)."""
        ...

    def bernoulli(self, probs: Tensor) -> Any:
        """A Bernoulli distribution object of the framework (for a loss taking ``p(x|z)``)."""
        ...

    def seed(self, seed: int) -> None:
        """Seed the framework's global random numbers before a call."""
        ...

    def is_array(self, value: Any) -> bool:
        """Whether ``value`` is an array of the framework."""
        ...

    def shape(self, value: Any) -> tuple[int, ...]: ...

    def number(self, value: Any, batch: int) -> float | None:
        """A scalar, a one-element array, or one value per sample (shape ``[batch]``, averaged
        as frameworks do) as a float; None for anything else."""
        ...

    def scalar(self, value: Any, batch: int) -> Any:
        """The same reading as :meth:`number`, kept as an array of the framework (for a
        gradient)."""
        ...

    def no_grad(self) -> AbstractContextManager[None]:
        """A block in which calls build no gradient graph."""
        ...

    def gradients(self, fn: Callable[..., Any], inputs: list[Tensor]) -> list[Tensor | None] | None:
        """The gradient of ``fn(*arrays)`` (a scalar array) at ``inputs`` with respect to each
        of them, as torch tensors (None where it does not depend on one); None when the output
        carries no gradient at all."""
        ...

    def call(self, call: Invocation) -> Any:
        """One call of the user's code (JAX and TensorFlow compile it once per shape,
        :mod:`~vaeloss.check.probe.compiled`)."""
        ...

    def fallbacks(self) -> tuple[Backend, ...]:
        """Backends to try after this one when the loss cannot be called with its arrays
        (TensorFlow in float32, for code that makes float32 tensors itself)."""
        ...


class TorchBackend:
    """Losses written in PyTorch."""

    name = "torch"
    channels_last = False
    differentiable = True
    resolution = 0.0

    def array(self, value: Tensor) -> Tensor:
        return value

    def normal(self, loc: Tensor, scale: Tensor) -> Normal:
        return Normal(loc, scale, validate_args=False)

    def bernoulli(self, probs: Tensor) -> Bernoulli:
        return Bernoulli(probs=probs, validate_args=False)

    def seed(self, seed: int) -> None:
        seed_cpu(seed)

    def is_array(self, value: Any) -> bool:
        return isinstance(value, Tensor)

    def shape(self, value: Any) -> tuple[int, ...]:
        return tuple(value.shape)

    def number(self, value: Any, batch: int) -> float | None:
        if isinstance(value, Tensor):
            if value.dim() == 0 or value.numel() == 1:
                return float(value.reshape(()).detach())
            if per_sample(tuple(value.shape), batch):
                return float(value.detach().mean())
            return None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        return None

    def scalar(self, value: Any, batch: int) -> Tensor:
        if not isinstance(value, Tensor):
            return torch.tensor(float(value))
        return value.mean() if per_sample(tuple(value.shape), batch) else value.reshape(())

    def no_grad(self) -> AbstractContextManager[None]:
        return _no_grad()

    def call(self, call: Invocation) -> Any:
        return call.as_written()

    def fallbacks(self) -> tuple[Backend, ...]:
        return ()  # torch promotes float32 tensors the code makes to float64

    def gradients(self, fn: Callable[..., Any], inputs: list[Tensor]) -> list[Tensor | None] | None:
        leaves = [t.detach().clone().requires_grad_(True) for t in inputs]
        out = fn(*leaves)
        if not isinstance(out, Tensor) or not out.requires_grad:
            return None
        grads = torch.autograd.grad(out, leaves, allow_unused=True)
        return list(grads)


class KerasTorchBackend(TorchBackend):
    """Keras 3 code on its torch backend: torch tensors, channels-last images, Keras's own
    random numbers seeded too."""

    name = "keras"
    channels_last = True
    resolution = FLOAT32
    """Keras 3's torch backend reduces float64 tensors in float32 (``keras.ops.mean`` casts to
    ``result_type(float64, "float32")``, which is float32): values keep float64 as their dtype
    but not its precision."""

    def seed(self, seed: int) -> None:
        seed_cpu(seed)
        seed_keras(seed)


def seed_cpu(seed: int) -> None:
    """Seed torch's CPU generator, where the probe's calls draw. Not ``torch.manual_seed``: on a
    machine with a CUDA build and CUDA not yet initialised, it queues a lazy CUDA seeding with a
    formatted stack trace at each call (60% of a Monte-Carlo check's 16,000 calls' time)."""
    torch.random.default_generator.manual_seed(seed)


@contextmanager
def _no_grad() -> Iterator[None]:
    with torch.no_grad():
        yield
