"""Which way a check reads the loss: run the user's step, or call the candidates."""

from __future__ import annotations

import ast

import pytest

from vaeloss.check.observe.mode import choose_mode, differentiates
from vaeloss.errors import InvalidArgumentError

LOOP = "for x in loader:\n    loss = loss_fn(*model(x), x)\n    loss.backward()\n"


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        pytest.param(LOOP, True, id="loss.backward()"),
        pytest.param("(a + b).backward()", True, id="an expression's backward"),
        pytest.param("g = torch.autograd.grad(loss, params)", True, id="torch.autograd.grad"),
        pytest.param("self.backward(x_hat, mu)", False, id="a hand-written backward pass"),
        pytest.param("def loss(r, x, m, v):\n    return r.sum()", False, id="a loss alone"),
        pytest.param("grads = jax.grad(loss_fn)(params)", False, id="JAX's grad"),
    ],
)
def test_differentiates(code, expected):
    assert differentiates(ast.parse(code)) is expected


def test_auto_runs_a_pytorch_loop_whose_loss_is_not_named():
    tree = ast.parse(LOOP)
    assert choose_mode("auto", tree, "torch", named=False) == "run"
    assert choose_mode("auto", tree, "torch", named=True) == "call"
    assert choose_mode("auto", tree, "jax", named=False) == "call"
    assert choose_mode("call", tree, "torch", named=False) == "call"
    assert choose_mode("run", ast.parse("x = 1"), "torch", named=True) == "run"


def test_run_is_refused_for_a_framework_it_cannot_observe():
    with pytest.raises(
        InvalidArgumentError, match=r"Expected a PyTorch file for --mode run .* Try --mode call"
    ):
        choose_mode("run", ast.parse(LOOP), "tensorflow", named=False)


def test_an_unknown_mode_is_refused():
    with pytest.raises(
        InvalidArgumentError, match=r"Expected --mode to be one of auto, run, call but got mode='walk'"
    ):
        choose_mode("walk", ast.parse(LOOP), "torch", named=False)
