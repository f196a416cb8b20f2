"""The audit plan is plain data: it pickles (so that it can run in another process), and each
sweep model's initial weights depend on its place in the whole sweep, never on the group it is
trained in."""

import pickle
from pathlib import Path

import torch

from vaeloss.audit.plan import AuditOptions, SweepMember, plan_audit

MODELS = Path(__file__).parent / "models"


def _weights(model, n_models, copy):
    """Copy ``copy``'s parameters of a batched model (those stacked over its ``n_models``)."""
    stacked = {k: v for k, v in model.state_dict().items() if v.dim() >= 2 and v.shape[0] == n_models}
    assert stacked, "no parameters stacked over the models"
    return {k: v[copy] for k, v in stacked.items()}


def test_plan_pickles_and_builds_the_same_models_after():
    plan = plan_audit(AuditOptions(sweep="0.1,1,10"))
    again = pickle.loads(pickle.dumps(plan))
    assert again.elbo_betas == plan.elbo_betas
    assert again.members == plan.members
    assert torch.equal(again.data.x_train, plan.data.x_train)
    seeds = [m.seed(plan.setup.seed) for m in plan.members]
    expected, _ = plan.source.build(3, seeds, plan.data.x_train[:8])
    actual, _ = again.source.build(3, seeds, again.data.x_train[:8])
    for name, value in expected.state_dict().items():
        assert torch.equal(actual.state_dict()[name], value), name


def test_a_members_weights_do_not_depend_on_its_group():
    plan = plan_audit(AuditOptions(sweep="0.1,1,10,100"))
    members = plan.members
    whole, _ = plan.source.build(4, [m.seed(7) for m in members], plan.data.x_train[:8])
    part, _ = plan.source.build(2, [m.seed(7) for m in members[2:]], plan.data.x_train[:8])
    for name, value in _weights(part, 2, 1).items():
        assert torch.equal(_weights(whole, 4, 3)[name], value), name


def test_replicates_get_other_weights():
    plan = plan_audit(AuditOptions(sweep="1"))
    seeds = [SweepMember(0, 1.0, 0).seed(0), SweepMember(1, 1.0, 1).seed(0)]
    model, _ = plan.source.build(2, seeds, plan.data.x_train[:8])
    first, second = _weights(model, 2, 0), _weights(model, 2, 1)
    assert any(not torch.equal(first[k], second[k]) for k in first)


def test_a_plan_with_a_users_model_pickles():
    plan = plan_audit(AuditOptions(model=f"{MODELS / 'activations.py'}:LogitVAE", sweep="1,10", epochs=1))
    again = pickle.loads(pickle.dumps(plan))
    seeds = [m.seed(0) for m in plan.members]
    expected, _ = plan.source.build(2, seeds, plan.data.x_train[:4])
    actual, _ = again.source.build(2, seeds, again.data.x_train[:4])
    for name, value in expected.state_dict().items():
        assert torch.equal(actual.state_dict()[name], value), name


def test_a_users_model_with_more_latent_dims_than_the_data_is_told_about_the_data():
    """A D=784 model's latent dim above the built-in digits' D=64: the advice names the data (it
    said "a model with a latent dim of at most 8", wrong for a model made for MNIST)."""
    import pytest

    from vaeloss.audit.plan import check_latent_dim
    from vaeloss.errors import InvalidArgumentError

    with pytest.raises(InvalidArgumentError) as info:
        check_latent_dim(100, 64, user_model=True)
    assert str(info.value) == (
        "Expected your model's latent dim at most the data dimension D=64 (more latent dims than data "
        "dims cannot all carry information) but got latent_dim=100. Try the data your model is made for "
        "(--data; D=64 is the data's), or a model with a latent dim of at most 64."
    )
