"""Run mode: observe the user's own training step instead of guessing how to call the loss.

A layer beside the probe (:mod:`vaeloss.check.probe`): it runs the file as its user runs it,
up to its first differentiation of a scalar (:mod:`.torch_step`), with data sets and devices
replaced (:mod:`.substitutes`), and reports what it saw (:class:`Observation`): the function
that returned the differentiated loss and the sizes B, D, k the step ran at. The check then
probes that function, at those sizes (:func:`vaeloss.check.worker.run`).
"""

from vaeloss.check.observe.result import Observation, ObservedSize

__all__ = ["Observation", "ObservedSize"]
