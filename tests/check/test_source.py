"""What the file says statically: the candidates for the loss."""

from __future__ import annotations

import ast

import pytest

from vaeloss.check.source import _candidates


@pytest.mark.parametrize(
    ("line", "candidate"),
    [
        pytest.param("loss_metric = keras.metrics.Mean()", False, id="a Keras metric"),
        pytest.param("loss_tracker = tf.keras.metrics.Mean(name='loss')", False, id="a tf.keras tracker"),
        pytest.param("val_loss = torchmetrics.MeanMetric()", False, id="a torchmetrics metric"),
        pytest.param("bce_loss = nn.BCELoss()", False, id="a torch loss module"),
        pytest.param("vae_loss = make_vae_loss(beta=4)", True, id="a loss made by a factory"),
    ],
)
def test_module_level_objects_named_like_losses(line, candidate):
    names = [c.name for c in _candidates(ast.parse(line))]
    target = line.split(" = ")[0]
    assert (target in names) is candidate
