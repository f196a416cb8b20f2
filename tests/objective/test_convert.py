import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from vaeloss import (
    InvalidArgumentError,
    bits_per_dim,
    bits_to_nats,
    convert_kl_weight,
    gaussian_nll,
    gaussian_nll_to_mse,
    get_convention,
    mse_to_gaussian_nll,
    nats_to_bits,
    per_batch_to_per_sample,
)

finite = st.floats(-1e6, 1e6, allow_nan=False)


@given(finite)
def test_bits_nats_round_trip(x):
    assert bits_to_nats(nats_to_bits(x)) == pytest.approx(x, rel=1e-12, abs=1e-12)


def test_bits_per_dim_by_hand():
    assert bits_per_dim(784 * math.log(2), data_dim=784) == pytest.approx(1.0)
    assert per_batch_to_per_sample(10.0, batch_size=5, batch_reduction="mean") == 10.0


@given(st.floats(0, 10), st.floats(0.05, 5), st.integers(1, 100))
def test_mse_gaussian_nll_round_trip_and_reference(mse, sigma, D):
    nll = mse_to_gaussian_nll(mse, sigma=sigma, data_dim=D)
    assert gaussian_nll_to_mse(nll, sigma=sigma, data_dim=D) == pytest.approx(mse, rel=1e-9, abs=1e-9)
    # against the element-wise Gaussian NLL of residuals with that mean square
    r = torch.full((1, D), math.sqrt(mse), dtype=torch.float64)
    ref = gaussian_nll(torch.zeros_like(r), r, sigma=sigma).sum().item()
    assert nll == pytest.approx(ref, rel=1e-9, abs=1e-9)


@given(
    st.floats(1e-6, 1e3),
    st.sampled_from(["size_average", "keras_blog", "pytorch_vae", "sse_sum"]),
    st.sampled_from(["per_sample_mean", "pytorch_examples", "kl_weight_c"]),
)
def test_convert_kl_weight_preserves_beta(w, src, dst):
    s, d = get_convention(src), get_convention(dst)
    out = convert_kl_weight(w, s, d, B=64, D=100, k=8)
    assert d.with_kl_weight(out).effective_beta(B=64, D=100, k=8) == pytest.approx(
        s.with_kl_weight(w).effective_beta(B=64, D=100, k=8), rel=1e-9
    )


def test_convert_errors():
    with pytest.raises(InvalidArgumentError, match=r"integer >= 1 but got batch_size=0"):
        per_batch_to_per_sample(1.0, batch_size=0)
    with pytest.raises(InvalidArgumentError, match=r"number > 0 but got sigma=0"):
        mse_to_gaussian_nll(1.0, sigma=0)
    with pytest.raises(InvalidArgumentError, match=r"number >= 0 but got mse=-1"):
        mse_to_gaussian_nll(-1.0)
