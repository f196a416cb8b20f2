r"""Numerical probing of a loss (runs inside the worker process), in parts:

* :mod:`~vaeloss.check.probe.backend`: the framework the loss is written in (arrays, seeds,
  numbers, gradients), torch first;
* :mod:`~vaeloss.check.probe.inputs`: the synthetic inputs;
* :mod:`~vaeloss.check.probe.calling`: calling the loss (placing the inputs into its signature,
  seeding, restoring its state, timing) and :mod:`~vaeloss.check.probe.outputs`: reading what
  it returns;
* :mod:`~vaeloss.check.probe.fit`: the fit, pure (numbers in, ``ElementFit`` out);
* :mod:`~vaeloss.check.probe.measure`: one fit at one set of sizes;
* :mod:`~vaeloss.check.probe.search`: the search over call forms, layouts and kinds of data;
* :mod:`~vaeloss.check.probe.diagnostics`: sampling, gradients, edge inputs;
* :mod:`~vaeloss.check.probe.run`: the orchestration, :func:`probe`.

Each value the loss returns is modelled as :math:`L = a\,N(r, x) + b\,K(\mu, s) + c` where
:math:`N` is the batch-and-data sum of a reference NLL and :math:`K` the batch-and-latent sum
of the Gaussian KL in one parameterisation; each hypothesis (likelihood, parameterisation) is
fitted by least squares through the origin and kept only if its relative residual is tiny;
fresh joint inputs then verify the whole model; repeating the fit at three sizes of B, D and k
gives the exponents. A loss that returns several values is fitted value by value: the first
value holding both terms is the loss; failing that, a value holding only the reconstruction
term and one holding only the KL term are its components. A loss that samples (a Monte-Carlo
KL on ``q.rsample()``) is called with the same random seed for every input, and, when the KL
does not fit at one seed, averaged over seeds.
"""

from vaeloss.check.probe.backend import Backend, TorchBackend
from vaeloss.check.probe.calling import Caller, CallWatch
from vaeloss.check.probe.measure import Plan, ProbeFailure
from vaeloss.check.probe.outputs import ReturnValueError
from vaeloss.check.probe.run import probe
from vaeloss.check.probe.search import function_callers, search

__all__ = [
    "Backend",
    "CallWatch",
    "Caller",
    "Plan",
    "ProbeFailure",
    "ReturnValueError",
    "TorchBackend",
    "function_callers",
    "probe",
    "search",
]
