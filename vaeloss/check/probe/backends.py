"""Which :class:`~vaeloss.check.probe.backend.Backend` a file's loss is probed with: one
module apart from the backends, so that each framework's backend imports the common one and
nothing imports back (the frameworks are imported only when their backend is chosen)."""

from __future__ import annotations

from vaeloss.check.probe.backend import Backend, KerasTorchBackend, TorchBackend

__all__ = ["backend_for"]


def backend_for(arrays: str, framework: str = "torch") -> Backend:
    """The backend for a file whose loss takes ``arrays`` (``torch``, ``tensorflow``, ``jax``,
    ``mlx``, ``numpy``), written in ``framework`` (``keras`` on torch gets :class:`KerasTorchBackend`).
    Imports the framework."""
    if arrays == "tensorflow":
        from vaeloss.check.probe.backend_tensorflow import TensorFlowBackend

        return TensorFlowBackend()
    if arrays == "jax":
        from vaeloss.check.probe.backend_jax import JaxBackend

        return JaxBackend()
    if arrays == "mlx":
        from vaeloss.check.probe.backend_mlx import MlxBackend

        return MlxBackend()
    if arrays == "numpy":
        from vaeloss.check.probe.backend_numpy import NumpyBackend

        return NumpyBackend()
    return KerasTorchBackend() if framework == "keras" else TorchBackend()
