import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from vaeloss import get_preset
from vaeloss.testing import assert_is_elbo, assert_same_objective, vae_inputs


@given(vae_inputs(decoder_output="logits"))
def test_strategy_logits_are_valid_and_distinct_from_probabilities(inputs):
    assert inputs.decoder_output == "logits"
    assert torch.isfinite(inputs.recon).all()
    assert ((inputs.x >= 0) & (inputs.x <= 1)).all()


@given(vae_inputs(binary=True))
def test_strategy_binary_data(inputs):
    assert set(inputs.x.unique().tolist()) <= {0.0, 1.0}
    assert ((inputs.recon > 0) & (inputs.recon < 1)).all()


@given(vae_inputs(batch_sizes=st.integers(2, 16)))
def test_assert_is_elbo_accepts_the_elbo_and_refutes_size_average(inputs):
    assert_is_elbo(get_preset("pytorch_examples").loss, inputs, convention="pytorch_examples")
    with pytest.raises(AssertionError, match="is not the pytorch_examples ELBO with beta=1"):
        assert_is_elbo(get_preset("size_average").loss, inputs, convention="pytorch_examples")


@given(vae_inputs())
def test_assert_same_objective_refutes_blog_vs_docs(inputs):
    if inputs.x.shape[1] == inputs.mu.shape[1]:
        return  # D == k: then they are the same objective (beta = D/k = 1)
    with pytest.raises(AssertionError, match="differs"):
        assert_same_objective(get_preset("keras_blog").loss, get_preset("keras_docs").loss, inputs)


def test_readme_example_runs():
    from pathlib import Path

    text = (Path(__file__).parents[1] / "README.md").read_text()
    block = text.split("```python\n# test_my_loss.py\n")[1].split("```")[0]
    namespace: dict = {}
    exec(
        block.replace(
            "from my_project import loss_function",
            "from vaeloss.objective.presets import _pytorch_examples as loss_function",
        ),
        namespace,
    )
    namespace["test_loss_is_the_summed_elbo"]()
