"""Finding how to call a VAE module: posteriors as tuples, lists, dicts, Normals, from encode
or forward (PyTorch-VAE's order), image-shaped or flat inputs; clear errors otherwise."""

import pytest
import torch
from torch import nn

from vaeloss.engine.interface import decode_with, encode_with, find_interface, parse_model_api
from vaeloss.errors import InvalidArgumentError

X = torch.rand(2, 64)


class Flat(nn.Module):
    """encode(x [N, 64]) -> (mu, logvar), like pytorch/examples."""

    def __init__(self, k=3):
        super().__init__()
        self.e, self.d = nn.Linear(64, 2 * k), nn.Linear(k, 64)

    def encode(self, x):
        return tuple(self.e(x.view(-1, 64)).chunk(2, -1))

    def decode(self, z):
        return torch.sigmoid(self.d(z))


class Image(Flat):
    """Needs [N, 1, 8, 8] (a conv layer first)."""

    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(1, 1, 3, padding=1)

    def encode(self, x):
        return super().encode(self.c(x).flatten(1))

    def decode(self, z):
        return super().decode(z).view(-1, 1, 8, 8)


class ListEncode(Flat):  # PyTorch-VAE: encode returns [mu, log_var]
    def encode(self, x):
        return list(super().encode(x))

    def forward(self, x):
        mu, log_var = self.encode(x)
        return [self.decode(mu), x, mu, log_var]


class ForwardOnly(Flat):
    """encode returns the hidden layer; forward returns (recon, z, mu, logvar)."""

    def encode(self, x):
        return self.e(x)

    def forward(self, x):
        mu, logvar = self.e(x).chunk(2, -1)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        return self.decode(z), z, mu, logvar


class DictOut(Flat):
    def encode(self, x):
        mu, s = super().encode(x)
        return {"z_mean": mu, "std": s.exp()}


class NormalOut(Flat):
    def encode(self, x):
        mu, logvar = super().encode(x)
        return torch.distributions.Normal(mu, (0.5 * logvar).exp())


class DecoderModule(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder, self.decoder = nn.Linear(64, 6), nn.Linear(3, 64)

    def forward(self, x):
        mu, logvar = self.encoder(x).chunk(2, -1)
        return self.decoder(mu), mu, logvar


CASES = [
    pytest.param(Flat, (64,), "encode(x) -> (mu, logvar)", (64,), id="tuple-flat"),
    pytest.param(Image, (1, 8, 8), "encode(x) -> (mu, logvar)", (1, 8, 8), id="tuple-image"),
    pytest.param(Image, (64,), "encode(x) -> (mu, logvar)", (1, 8, 8), id="flat-square-data-as-image"),
    pytest.param(ListEncode, (64,), "encode(x) -> (mu, logvar)", (64,), id="pytorch-vae-list"),
    pytest.param(ForwardOnly, (64,), "forward(x) -> (recon, z, mu, logvar)", (64,), id="forward-with-z"),
    pytest.param(DictOut, (64,), "encode(x) -> dict[z_mean, std]", (64,), id="dict"),
    pytest.param(NormalOut, (64,), "encode(x) -> Normal(mu, std)", (64,), id="normal"),
    pytest.param(DecoderModule, (64,), "forward(x) -> (recon, mu, logvar)", (64,), id="decoder-submodule"),
]


@pytest.mark.parametrize(("cls", "data_shape", "api", "input_shape"), CASES)
def test_interface_found_and_read_as_written(cls, data_shape, api, input_shape):
    torch.manual_seed(0)
    model = cls().eval()
    iface = find_interface(model, X, data_shape)
    assert iface.api.describe() == api
    assert iface.input_shape == input_shape and iface.latent_dim == 3
    actual_mu, actual_logvar = encode_with(model, X, iface)
    if cls is DecoderModule:
        expected_mu, expected_logvar = model.encoder(X).chunk(2, -1)
    elif cls is ForwardOnly:
        expected_mu, expected_logvar = model.e(X).chunk(2, -1)
    else:
        expected_mu, expected_logvar = (
            Flat.encode(model, model.c(X.view(2, 1, 8, 8)).flatten(1))
            if cls is Image
            else Flat.encode(model, X)
        )
    if cls is DictOut:  # its entry is std = exp(s): the log-variance is 2 s
        expected_logvar = 2 * expected_logvar
    torch.testing.assert_close(actual_mu, expected_mu)
    torch.testing.assert_close(actual_logvar, expected_logvar)
    assert decode_with(model, torch.zeros(5, 3), iface).shape == (5, 64)


def test_model_api_states_what_probing_cannot_find():
    class ThreeHeads(Flat):  # (mu, logvar, h) would be ambiguous without names
        def encode(self, x):
            mu, lv = super().encode(x)
            return lv.exp().sqrt(), mu, mu * 0 + 1

    model = ThreeHeads()
    with pytest.raises(InvalidArgumentError, match=r"Try --model-api METHOD:NAMES"):
        find_interface(model, X, (64,))
    iface = find_interface(model, X, (64,), api=parse_model_api("encode:std,mu,_"))
    mu, logvar = encode_with(model, X, iface)
    expected_mu, expected_logvar = Flat.encode(model, X)
    torch.testing.assert_close(mu, expected_mu)
    torch.testing.assert_close(logvar, expected_logvar, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("encode:mu", r"model_api='encode:mu'"),
        ("call:mu,logvar", r"METHOD encode or forward"),
        ("forward:mu,mu,logvar", r"naming mu once"),
    ],
    ids=["no-scale", "bad-method", "mu-twice"],
)
def test_bad_model_api(text, match):
    with pytest.raises(InvalidArgumentError, match=match):
        parse_model_api(text)


def test_no_decoder_is_a_clear_error():
    class NoDecode(nn.Module):
        def encode(self, x):
            return x[:, :2], x[:, 2:4]

    with pytest.raises(
        InvalidArgumentError, match=r"Expected NoDecode to have decode\(z\) \(or a decoder submodule\)"
    ):
        find_interface(NoDecode(), X, (64,))


def test_decoder_of_the_wrong_size_is_a_clear_error():
    class Wrong(Flat):
        def decode(self, z):
            return torch.zeros(z.shape[0], 10)

    with pytest.raises(InvalidArgumentError, match=r"return 64 values per row .* returned 10"):
        find_interface(Wrong(), X, (64,))


class StdTuple(Flat):
    """encode returns (mu, std) with std = softplus(.) + 1e-4: a tuple read by position."""

    def encode(self, x):
        mu, s = super().encode(x)
        return mu, torch.nn.functional.softplus(s) + 1e-4


class VarTuple(Flat):
    def encode(self, x):
        mu, s = super().encode(x)
        return mu, s.exp()


@pytest.mark.parametrize(("cls", "op"), [(StdTuple, "softplus"), (VarTuple, "exp")], ids=["std", "var"])
def test_a_positive_scale_in_a_tuple_is_not_read_as_a_logvar(cls, op):
    with pytest.raises(InvalidArgumentError, match=rf"positive everywhere and made by {op}") as info:
        find_interface(cls(), X, (64,))
    assert "Try --model-api encode:mu,std or --model-api encode:mu,var" in str(info.value)
    iface = find_interface(cls(), X, (64,), api=parse_model_api("encode:mu,std"))
    model = cls()
    actual = encode_with(model, X, iface)[1]
    expected = 2 * torch.log(model.encode(X)[1])
    torch.testing.assert_close(actual, expected)


def test_a_signed_logvar_head_is_read_as_a_logvar():
    torch.manual_seed(0)
    iface = find_interface(Flat(k=8), X, (64,))
    assert iface.api.scale_kind == "logvar"


class BernoulliDecode(Flat):
    def decode(self, z):
        return torch.distributions.Bernoulli(logits=self.d(z))


def test_a_decoder_returning_a_distribution_is_a_clear_error():
    with pytest.raises(
        InvalidArgumentError, match=r"Expected decode\(z\) to return a tensor of reconstructions"
    ):
        find_interface(BernoulliDecode(), X, (64,))


class WrongLinear(Flat):
    """A bug in the model: its first layer expects 32 inputs, the data have 64."""

    def __init__(self):
        super().__init__()
        self.e = nn.Linear(32, 6)


@pytest.mark.parametrize("api", [None, "encode:mu,logvar"], ids=["probed", "stated"])
def test_a_model_that_raises_is_reported_as_its_error_not_as_an_unknown_api(api):
    with pytest.raises(InvalidArgumentError) as info:
        find_interface(WrongLinear(), X, (1, 8, 8), api=None if api is None else parse_model_api(api))
    message = str(info.value)
    assert message.startswith(
        "Expected WrongLinear to run on the data but encode(x of shape [2, 1, 8, 8]) raised"
    )
    assert (
        "(at line" in message
        and "of test_interface.py: return tuple(self.e(x.view(-1, 64)).chunk(2, -1)))" in message
    )
    assert "--model-api" not in message


class WrongView(Image):
    def decode(self, z):
        return Flat.decode(self, z).view(-1, 1, 4, 16)


def test_a_decoder_output_of_another_shape_is_noted():
    iface = find_interface(WrongView(), X, (1, 8, 8))
    assert iface.output_shape == (1, 4, 16)
    assert iface.output_mismatch().startswith(
        "the decoder returns rows of shape 1x4x16 for inputs of shape 1x8x8"
    )
    assert find_interface(Image(), X, (1, 8, 8)).output_mismatch() is None
    assert find_interface(Flat(), X, (1, 8, 8)).output_mismatch() is None  # flat [N, 64] is fine
