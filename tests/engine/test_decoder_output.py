"""What a decoder emits, from its last operation and range, and how a likelihood reads it."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from vaeloss.engine.decoder_output import (
    DecoderSemantics,
    decoder_output_for,
    detect_decoder_output,
    last_operation,
)
from vaeloss.errors import DataError, InvalidArgumentError

torch.manual_seed(0)
LIN = nn.Linear(3, 16)

DECODERS = [
    pytest.param(nn.Sequential(LIN, nn.Sigmoid()), "probabilities", "sigmoid", id="nn.Sigmoid"),
    pytest.param(
        lambda z: torch.sigmoid(LIN(z)).view(-1, 1, 4, 4), "probabilities", "sigmoid", id="sigmoid-then-view"
    ),
    pytest.param(
        lambda z: F.sigmoid(LIN(z)).reshape(-1, 16).contiguous(), "probabilities", "sigmoid", id="F.sigmoid"
    ),
    pytest.param(lambda z: LIN(z).sigmoid_(), "probabilities", "sigmoid", id="in-place-sigmoid_"),
    pytest.param(
        nn.Sequential(LIN, nn.Tanh(), nn.Unflatten(1, (1, 4, 4))), "mean", "tanh", id="nn.Tanh-unflatten"
    ),
    pytest.param(lambda z: F.softplus(LIN(z)), "mean", "softplus", id="softplus"),
    pytest.param(nn.Sequential(LIN), "logits", "linear", id="linear"),
    pytest.param(
        nn.Sequential(
            nn.Linear(3, 64), nn.Unflatten(1, (4, 4, 4)), nn.ConvTranspose2d(4, 1, 4, 2, 1), nn.Sigmoid()
        ),
        "probabilities",
        "sigmoid",
        id="conv-transpose-sigmoid",
    ),
    pytest.param(
        lambda z: 1 / (1 + torch.exp(-LIN(z))), "probabilities", "__rdiv__", id="hand-written-sigmoid"
    ),
]


@pytest.mark.parametrize(("decoder", "kind", "op"), DECODERS)
def test_detected_from_the_last_operation(decoder, kind, op):
    actual = detect_decoder_output(decoder, 3)
    assert (actual.kind, actual.last_op) == (kind, op)


def test_ranges():
    assert (detect_decoder_output(nn.Sequential(LIN, nn.Tanh()), 3).low, 1.0) == (-1.0, 1.0)
    raw = detect_decoder_output(LIN, 3)
    assert raw.low == -math.inf and raw.high == math.inf and not raw.squashed


def test_last_operation_sees_through_reshapes():
    op, out = last_operation(lambda z: torch.tanh(z).flatten(1)[:, :2].clone(), torch.zeros(2, 1, 3))
    assert op == "tanh" and out.shape == (2, 2)


SIG, TANH, RAW = (
    detect_decoder_output(d, 3)
    for d in (nn.Sequential(LIN, nn.Sigmoid()), nn.Sequential(LIN, nn.Tanh()), LIN)
)


@pytest.mark.parametrize(
    ("semantics", "likelihood", "data_range", "expected"),
    [
        pytest.param(SIG, "bernoulli", (0, 1), "probabilities", id="sigmoid-bernoulli"),
        pytest.param(RAW, "bernoulli", (0, 1), "logits", id="raw-bernoulli"),
        pytest.param(SIG, "gaussian", (0, 1), "mean", id="sigmoid-gaussian"),
        pytest.param(TANH, "gaussian", (0, 1), "mean", id="tanh-gaussian-data-in-0-1"),
        pytest.param(TANH, "gaussian", (-1, 1), "mean", id="tanh-gaussian-data-in-pm1"),
        pytest.param(RAW, "gaussian", (-5, 7), "mean", id="raw-gaussian"),
    ],
)
def test_likelihood_reads(semantics, likelihood, data_range, expected):
    assert decoder_output_for(semantics, likelihood, data_range=data_range) == expected


def test_tanh_decoder_with_a_bernoulli_loss_is_refused():
    with pytest.raises(
        InvalidArgumentError, match=r"emits a mean in \[-1, 1\] \(its last operation is tanh\)"
    ):
        decoder_output_for(TANH, "bernoulli", data_range=(0, 1))


@pytest.mark.parametrize(
    ("semantics", "data_range"), [(SIG, (-1, 1)), (TANH, (0, 255))], ids=["sigmoid", "tanh"]
)
def test_data_outside_the_decoders_range_is_refused(semantics, data_range):
    with pytest.raises(DataError, match=r"the data spans \[.*\]: the model cannot reconstruct it. Try"):
        decoder_output_for(semantics, "gaussian", data_range=data_range)


STATED_LOGITS = DecoderSemantics("logits", -math.inf, math.inf, None, "--decoder-output logits", stated=True)
STATED_MEAN = DecoderSemantics("mean", -math.inf, math.inf, None, "--decoder-output mean", stated=True)


@pytest.mark.parametrize(
    ("semantics", "loss_reads", "data_range", "expected"),
    [
        pytest.param(STATED_LOGITS, None, (0, 1), "logits", id="stated-logits"),
        pytest.param(RAW, "logits", (0, 1), "logits", id="loss-applies-the-sigmoid"),
        pytest.param(RAW, None, (0, 1), "mean", id="unbounded-is-a-mean"),
        pytest.param(SIG, "logits", (0, 1), "mean", id="sigmoid-in-the-model-is-the-mean"),
    ],
)
def test_gaussian_reads_logits_when_stated_or_when_the_loss_does(semantics, loss_reads, data_range, expected):
    actual = decoder_output_for(semantics, "gaussian", data_range=data_range, loss_reads=loss_reads)
    assert actual == expected


def test_gaussian_logits_need_data_in_0_1():
    with pytest.raises(DataError, match=r"output range \[0, 1\] \(--decoder-output logits, read as logits"):
        decoder_output_for(STATED_LOGITS, "gaussian", data_range=(-1, 1))


def test_a_mean_stated_for_a_bernoulli_loss_is_refused():
    with pytest.raises(
        InvalidArgumentError, match=r"Expected --decoder-output logits or probs for a bernoulli"
    ):
        decoder_output_for(STATED_MEAN, "bernoulli", data_range=(0, 1))
