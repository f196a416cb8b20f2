"""Hypothesis strategies and assertions for users' own VAE-loss tests.

Example (paste into your pytest suite)::

    from hypothesis import given
    from vaeloss.testing import assert_is_elbo, vae_inputs
    from my_project import loss_function

    @given(vae_inputs())
    def test_loss_is_the_summed_elbo(inputs):
        assert_is_elbo(loss_function, inputs, convention="pytorch_examples")
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from hypothesis import strategies as st
from torch import Tensor

from vaeloss.objective.convention import Convention
from vaeloss.objective.elbo import negative_elbo
from vaeloss.objective.likelihoods import LIKELIHOODS, DecoderOutput, Likelihood
from vaeloss.objective.presets import get_convention
from vaeloss.validation import check_choice

__all__ = ["VaeInputs", "assert_is_elbo", "assert_same_objective", "loss_gradients", "vae_inputs"]

LossFn = Callable[..., Any]


class VaeInputs(NamedTuple):
    """One batch of synthetic loss inputs.

    Attributes:
        recon: decoder output [B, D]: probabilities, logits or Gaussian mean.
        x: data [B, D]: binary, or continuous in [0, 1].
        mu: posterior means [B, k].
        logvar: posterior log-variances [B, k].
        likelihood: the likelihood these inputs are drawn for.
        decoder_output: what ``recon`` is.
    """

    recon: Tensor
    x: Tensor
    mu: Tensor
    logvar: Tensor
    likelihood: Likelihood = "bernoulli"
    decoder_output: DecoderOutput = "probabilities"


_BATCH_SIZES = st.integers(1, 16)
_DATA_DIMS = st.integers(1, 64)
_LATENT_DIMS = st.integers(1, 12)


@st.composite
def vae_inputs(
    draw: st.DrawFn,
    *,
    likelihood: Likelihood = "bernoulli",
    decoder_output: DecoderOutput | None = None,
    binary: bool | None = None,
    batch_sizes: st.SearchStrategy[int] = _BATCH_SIZES,
    data_dims: st.SearchStrategy[int] = _DATA_DIMS,
    latent_dims: st.SearchStrategy[int] = _LATENT_DIMS,
    dtype: torch.dtype = torch.float64,
) -> VaeInputs:
    """Strategy for valid VAE-loss inputs: shapes, decoder outputs, data, mu and logvar.

    Args:
        likelihood: "bernoulli" | "gaussian" | "continuous_bernoulli".
        decoder_output: "probabilities" or "logits" (Bernoulli kinds), "mean" (Gaussian);
            default: probabilities or mean.
        binary: binary data (True), continuous data in [0, 1] (False), or either (None).
        batch_sizes, data_dims, latent_dims: strategies for B, D, k.
        dtype: tensor dtype.

    Returns:
        A strategy of :class:`VaeInputs`; mu in [-3, 3], logvar in [-4, 2],
        probabilities in [0.01, 0.99].
    """
    check_choice("likelihood", likelihood, LIKELIHOODS)
    if decoder_output is None:
        decoder_output = "mean" if likelihood == "gaussian" else "probabilities"
    B, D, k = draw(batch_sizes), draw(data_dims), draw(latent_dims)
    seed = draw(st.integers(0, 2**31 - 1))
    is_binary = draw(st.booleans()) if binary is None else binary
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(B, D, generator=gen, dtype=dtype)
    if is_binary:
        x = (x > 0.5).to(dtype)
    probs = 0.01 + 0.98 * torch.rand(B, D, generator=gen, dtype=dtype)
    if decoder_output == "logits":
        recon = torch.log(probs) - torch.log1p(-probs)
    else:
        recon = probs
    mu = 6 * torch.rand(B, k, generator=gen, dtype=dtype) - 3
    logvar = 6 * torch.rand(B, k, generator=gen, dtype=dtype) - 4
    return VaeInputs(recon, x, mu, logvar, likelihood, decoder_output)


def loss_gradients(loss_fn: LossFn, inputs: VaeInputs) -> tuple[float, list[Tensor]]:
    """Call ``loss_fn(recon, x, mu, logvar)`` and return its value and its gradients.

    A per-sample vector output is averaged over the batch, as frameworks do.

    Returns:
        (value, [d/d recon, d/d mu, d/d logvar]).
    """
    recon = inputs.recon.detach().clone().requires_grad_(True)
    mu = inputs.mu.detach().clone().requires_grad_(True)
    logvar = inputs.logvar.detach().clone().requires_grad_(True)
    out = loss_fn(recon, inputs.x, mu, logvar)
    if out.dim() > 0:
        out = out.mean()
    grads = torch.autograd.grad(out, [recon, mu, logvar], allow_unused=True)
    filled = [torch.zeros_like(t) if g is None else g for g, t in zip(grads, (recon, mu, logvar))]
    return float(out.detach()), filled


def assert_is_elbo(
    loss_fn: LossFn,
    inputs: VaeInputs,
    *,
    convention: str | Convention = "per_sample_mean",
    beta: float = 1.0,
    rtol: float = 1e-6,
) -> None:
    """Assert that ``loss_fn`` is the negative ELBO with this ``beta`` in this convention.

    That is, ``loss_fn = gradient_scale * (per-sample negative ELBO_beta) + const`` with the
    convention's gradient scale at these B, D, k. Compared through gradients with respect
    to recon, mu and logvar (the constant drops out).

    Raises:
        AssertionError: naming the input whose gradient differs and by how much.
    """
    conv = get_convention(convention) if isinstance(convention, str) else convention
    B, D = inputs.x.shape[0], inputs.x[0].numel()
    k = inputs.mu.shape[1]
    scale = conv.gradient_scale(B=B, D=D, k=k)

    def reference(recon: Tensor, x: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
        terms = negative_elbo(
            recon,
            x,
            mu,
            logvar,
            likelihood=inputs.likelihood,
            decoder_output=inputs.decoder_output,
            beta=beta,
        )
        return scale * terms.loss

    _, actual = loss_gradients(loss_fn, inputs)
    _, expected = loss_gradients(reference, inputs)
    _compare(actual, expected, rtol, f"the {conv.name} ELBO with beta={beta}")


def assert_same_objective(
    loss_a: LossFn,
    loss_b: LossFn,
    inputs: VaeInputs,
    *,
    up_to_scale: bool = True,
    rtol: float = 1e-6,
) -> float:
    """Assert two losses are the same objective: equal gradients, up to one positive scale.

    Returns:
        The scale s with grad(loss_a) = s * grad(loss_b).
    """
    _, ga = loss_gradients(loss_a, inputs)
    _, gb = loss_gradients(loss_b, inputs)
    flat_a = torch.cat([g.flatten() for g in ga])
    flat_b = torch.cat([g.flatten() for g in gb])
    norm_b = float(flat_b.norm())
    scale = float(flat_a @ flat_b) / norm_b**2 if norm_b > 0 else 1.0
    if not up_to_scale:
        scale = 1.0
    _compare(ga, [scale * g for g in gb], rtol, f"{scale:.6g} x the other loss")
    return scale


def _compare(actual: list[Tensor], expected: list[Tensor], rtol: float, what: str) -> None:
    for name, a, e in zip(("recon", "mu", "logvar"), actual, expected):
        err = float((a - e).abs().max()) if a.numel() else 0.0
        tol = rtol * max(float(e.abs().max()) if e.numel() else 0.0, 1e-12)
        if err > tol:
            raise AssertionError(
                f"the loss is not {what}: its gradient with respect to {name} differs by "
                f"{err:.3g} (tolerance {tol:.3g})"
            )
