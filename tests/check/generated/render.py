"""Write a :class:`lossgen.Spec` as a whole source file, as people write it in its framework."""

from __future__ import annotations

import re
from fractions import Fraction

from lossgen import _KL_INSIDE, _KL_INSIDE_ALT, _OPS, _SQ, _STD_OF, N_TRAIN, NAMES, ORIGINAL_DIM, Spec

_FUNCTION_NAMES = ("loss_function", "vae_loss", "elbo_loss", "compute_loss", "loss_fn")
_IMPORTS = {
    "torch": "import torch\nimport torch.nn.functional as F\nfrom torch import nn\n",
    "keras3": "import keras\nfrom keras import ops\n",
    "keras2": "from keras import backend as K\nfrom keras import metrics\n",
    "tf": "import tensorflow as tf\n",
    "jax": "import jax\nimport jax.numpy as jnp\nimport optax\n",
}


def _number(w: Fraction) -> str:
    return str(int(w)) if w.denominator == 1 else repr(float(w))


class _Writer:
    def __init__(self, spec: Spec) -> None:
        self.s = spec
        recon, data, mu, scales = NAMES[spec.names]
        self.R, self.X, self.M, self.S = recon, data, mu, scales[spec.param]
        self.ops = _OPS[spec.framework]
        self.fw = spec.framework

    # --- reductions ---------------------------------------------------------------------------
    def _red(self, how: str, e: str, axis: str | None = None) -> str:
        fn = self.ops["SUM" if how == "sum" else "MEAN"]
        if self.fw == "torch" and self.s.method:
            inner = f"({e})" if not e.replace("_", "").replace(".", "").isalnum() else e
            return f"{inner}.{how}()" if axis is None else f"{inner}.{how}(dim={axis})"
        if axis is None:
            return f"{fn}({e})"
        return f"{fn}({e}, {self.ops['AX']}={axis})"

    def reduce(self, e: str, red: tuple[str, str], *, data_done: bool = False) -> str:
        """``e`` (per element, or per sample when ``data_done``) reduced as ``red``."""
        inner_axis = "1" if self.fw in ("torch", "tf") else "-1"
        dr, br = red
        if data_done:
            return (
                e if br == "none" else self._red(br, e, None if self.fw != "torch" or self.s.method else "0")
            )
        if dr == br:
            return self._red(dr, e)
        per_sample = self._red(dr, e, inner_axis)
        if br == "none":
            return per_sample
        return self._red(br, per_sample, None if self.fw != "torch" or self.s.method else "0")

    # --- terms --------------------------------------------------------------------------------
    def data(self) -> str:
        return {0: self.X, 1: f"{self.X}.view({self.X}.size(0), -1)", 2: f"{self.X}.view(-1, 784)"}[
            self.s.view
        ]

    def recon(self) -> str:
        st = self.s.style
        e = re.sub(r"\b[RX]\b", lambda m: {"R": self.R, "X": self.data()}[m.group(0)], st.template)
        if st.folded:
            return e.replace("{red}", st.fixed.get(self.s.recon_red, ""))
        return self.reduce(e, self.s.recon_red, data_done=bool(st.data_reduced))

    def _sq(self, e: str) -> str:
        return _SQ[self.fw][self.s.square].format(e)

    def kl(self) -> tuple[list[str], str]:
        """Statements before, and the KL term's expression."""
        s, M, S = self.s, self.M, self.S
        ops = self.ops
        if s.kl_style in ("closed", "closed-alt"):
            if s.kl_style == "closed":
                pre, inside = _KL_INSIDE[s.param]
            else:
                pre, inside = "", _KL_INSIDE_ALT[s.param]
            inside = re.sub(r"SQ\((\w)\)", lambda m: self._sq(m.group(1)), inside)
            inside = re.sub(r"\b(EXP|LOG)\b", lambda m: ops[m.group(1)], inside)
            inside = re.sub(r"\b[MS]\b", lambda m: {"M": M, "S": S}[m.group(0)], inside)
            reduced = self.reduce(inside, s.kl_red)
            return [], f"{pre} * {reduced}" if pre else reduced
        std = _STD_OF[s.param].replace("S", S)
        normal = "torch.distributions.Normal"
        if s.kl_style == "distributions":
            e = (f"torch.distributions.kl_divergence({normal}({M}, {std}), "
                 f"{normal}(torch.zeros_like({M}), torch.ones_like({M})))")  # fmt: skip
            return [], self.reduce(e, s.kl_red)
        before = [f"std = {std}", f"z = {M} + std * torch.randn_like(std)"]
        e = f"{normal}({M}, std).log_prob(z) - {normal}(0.0, 1.0).log_prob(z)"
        return before, self.reduce(e, s.kl_red)

    def weight(self) -> str:
        w = self.s.weight
        return {
            "literal": "" if w == 1 else _number(w),
            "default": "beta",
            "required": "beta",
            "constant": "BETA",
            "self": "self.beta",
            "argparse": "args.beta",
            "none": "",
        }[self.s.weight_source]

    def body(self) -> list[str]:
        """The loss's statements, ending with ``loss = ...``."""
        lines = [f"rec = {self.recon()}"]
        before, kl = self.kl()
        lines += before + [f"kld = {kl}"]
        w = self.weight()
        weighted = f"{w} * kld" if w else "kld"
        if self.s.extra == "times-dim":
            dim = f"{self.X}[0].numel()" if self.fw == "torch" else f"{self.X}.shape[-1]"
            lines.append(f"rec = rec * {dim}")
        elif self.s.extra == "times-original-dim":
            lines.append("rec = original_dim * rec")
        total = f"rec + {weighted}"
        if self.s.extra == "per-batch":
            batch = f"{self.X}.size(0)" if self.fw == "torch" else f"{self.X}.shape[0]"
            lines.append(f"loss = ({total}) / {batch}")
        elif self.s.extra == "per-dataset":
            lines.append(f"loss = ({total}) / N_TRAIN")
        else:
            lines.append(f"loss = {total}")
        return lines

    def returned(self) -> str:
        return {
            "scalar": "return loss",
            "tuple": "return loss, rec, kld",
            "dict": 'return {"loss": loss, "reconstruction": rec, "kl": kld}',
            "object": "return LossOutput(loss, rec, kld)",
        }[self.s.returns]

    def params(self) -> list[str]:
        R, X, M, S = self.R, self.X, self.M, self.S
        order = {
            "recon,data,mu,scale": [R, X, M, S],
            "data,recon,mu,scale": [X, R, M, S],
            "recon,data,(mu,scale)": [R, X, "posterior"],
        }[self.s.order]
        if self.s.shape == "packed":
            order = ["outputs", X]
        if self.s.weight_source == "default":
            order.append(f"beta={_number(self.s.weight)}")
        elif self.s.weight_source == "required":
            order.append("beta")
        return order

    def unpack(self) -> list[str]:
        if self.s.shape == "packed":
            return [f"{self.R}, {self.M}, {self.S} = outputs"]
        if self.s.order == "recon,data,(mu,scale)":
            return [f"{self.M}, {self.S} = posterior"]
        return []

    # --- the file -----------------------------------------------------------------------------
    def module_header(self) -> list[str]:
        s = self.s
        out = []
        if s.weight_source == "argparse" or s.shape.startswith("loop"):
            out.append("import argparse")
        out.append(_IMPORTS[self.fw].rstrip())
        if s.shape.startswith("loop"):
            out += ["from torch import optim", "from torchvision import datasets, transforms"]
        if s.shape == "lightning-step":
            out.append("import lightning as L")
        if s.returns == "object":
            out.insert(0, "from dataclasses import dataclass")
        out.append("")
        if s.returns == "object":
            out += [
                "",
                "@dataclass",
                "class LossOutput:",
                "    loss: torch.Tensor",
                "    reconstruction: torch.Tensor",
                "    kl: torch.Tensor",
                "",
                "",
            ]
        if s.weight_source == "argparse" or s.shape.startswith("loop"):
            out += [
                "parser = argparse.ArgumentParser(description='VAE')",
                "parser.add_argument('--epochs', type=int, default=10)",
            ]
            if s.weight_source == "argparse":
                out.append(f"parser.add_argument('--beta', type=float, default={_number(s.weight)})")
            out += ["args = parser.parse_args()", ""]
        if s.weight_source == "constant":
            out += [f"BETA = {_number(s.weight)}", ""]
        if s.extra == "per-dataset":
            out += [f"N_TRAIN = {N_TRAIN}", ""]
        if s.extra == "times-original-dim":
            out += [f"original_dim = {ORIGINAL_DIM}", ""]
        st = s.style
        if st.setup:
            out += [st.setup.replace("{red}", st.fixed[s.recon_red]), ""]
        return out

    def function(self, name: str, indent: str = "", self_arg: bool = False) -> list[str]:
        params = (["self"] if self_arg else []) + self.params()
        lines = [f"def {name}({', '.join(params)}):"]
        lines += ["    " + line for line in self.unpack() + self.body() + [self.returned()]]
        return [indent + line for line in lines]

    def attribute_lines(self) -> list[str]:
        st = self.s.style
        out = []
        if st.attribute:
            out.append(st.attribute.replace("{red}", st.fixed[self.s.recon_red]))
        if self.s.weight_source == "self":
            out.append("self.beta = beta")
        return out

    def source(self) -> str:
        s = self.s
        out = self.module_header()
        name = _FUNCTION_NAMES[s.names % len(_FUNCTION_NAMES)]
        init_beta = f", beta={_number(s.weight)}" if s.weight_source == "self" else ""
        if s.shape in ("function", "packed"):
            out += ["", *self.function(name)]
        elif s.shape == "nested-in-main":
            out += self.nested_in_main(name)
        elif s.shape == "class-call":
            out += ["", "class VAELoss:", f"    def __init__(self{init_beta}):"]
            out += ["        " + a for a in self.attribute_lines()] or ["        pass"]
            out += ["", *self.function("__call__", "    ", self_arg=True)]
        elif s.shape == "module-forward":
            out += [
                "",
                "class VAELoss(nn.Module):",
                f"    def __init__(self{init_beta}):",
                "        super().__init__()",
            ]
            out += ["        " + a for a in self.attribute_lines()]
            out += ["", *self.function("forward", "    ", self_arg=True)]
        elif s.shape == "lightning-step":
            out += ["", *self.lightning(init_beta)]
        elif s.shape == "model-method":
            out += [
                "",
                *self.model_class(init_beta),
                "",
                *self.function("loss_function", "    ", self_arg=True),
            ]
        else:
            out += self.loop()
        return "\n".join(out).rstrip() + "\n"

    def model_class(self, init_beta: str = "") -> list[str]:
        s = self.s
        out_act = {"probabilities": "torch.sigmoid(self.dec(z))"}.get(
            {"bernoulli": "probabilities"}.get(s.likelihood, ""), "self.dec(z)"
        )
        scale = {
            "logvar": "self.scale(h)",
            "log_std": "self.scale(h)",
            "std": "F.softplus(self.scale(h))",
            "var": "torch.exp(self.scale(h))",
        }[s.param]
        sample_std = {
            "logvar": "torch.exp(0.5 * s)",
            "log_std": "torch.exp(s)",
            "std": "s",
            "var": "s.sqrt()",
        }
        return [
            "class VAE(nn.Module):",
            f"    def __init__(self, data_dim=784, latent_dim=20{init_beta}):",
            "        super().__init__()",
            "        self.enc = nn.Linear(data_dim, 400)",
            "        self.mu = nn.Linear(400, latent_dim)",
            "        self.scale = nn.Linear(400, latent_dim)",
            "        self.dec = nn.Linear(latent_dim, data_dim)",
            *["        " + a for a in self.attribute_lines()],
            "",
            "    def forward(self, x):",
            "        h = F.relu(self.enc(x.view(x.size(0), -1)))",
            f"        m, s = self.mu(h), {scale}",
            f"        z = m + {sample_std[s.param]} * torch.randn_like(m)",
            f"        return {out_act}, m, s",
        ]

    def nested_in_main(self, name: str) -> list[str]:
        """The loss defined inside ``main(args)`` and called in its loop (the script's training
        runs under the main guard)."""
        call = [a.partition("=")[0] for a in self.params() if "=" not in a]
        call = [{"posterior": f"({self.M}, {self.S})", "outputs": f"({self.R}, {self.M}, {self.S})",
                 "beta": "1.0"}.get(a, a) for a in call]  # fmt: skip
        return [
            "",
            *self.model_class(),
            "",
            "",
            "def main(args):",
            *self.function(name, "    "),
            "",
            "    model = VAE()",
            "    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)",
            "    for epoch in range(args.epochs):",
            f"        for {self.X}, _ in args.loader:",
            f"            {self.R}, {self.M}, {self.S} = model({self.X})",
            f"            loss = {name}({', '.join(call)})",
            "            optimizer.zero_grad()",
            "            loss.backward()",
            "            optimizer.step()",
            "",
            "",
            "if __name__ == '__main__':",
            "    import argparse",
            "",
            "    parser = argparse.ArgumentParser()",
            "    parser.add_argument('--epochs', type=int, default=10)",
            "    main(parser.parse_args())",
        ]

    def lightning(self, init_beta: str) -> list[str]:
        """A LightningModule whose ``training_step`` computes the loss (the model's layers give
        the posterior's parameters directly, as a probe through the model needs them)."""
        s = self.s
        B, D, k = s.sizes
        scale_name = {"logvar": "fc_logvar", "log_std": "fc_log_std", "std": "fc_std", "var": "fc_var"}[
            s.param
        ]
        positive = s.param in ("std", "var")
        scale_layer = "nn.Sequential(nn.Linear(400, latent_dim), nn.Softplus())" if positive else (
            "nn.Linear(400, latent_dim)")  # fmt: skip
        sigmoid = ", nn.Sigmoid()" if s.likelihood == "bernoulli" else ""
        std = {"logvar": "torch.exp(0.5 * s)", "log_std": "torch.exp(s)", "std": "s", "var": "s.sqrt()"}[
            s.param
        ]
        return [
            "class LitVAE(L.LightningModule):",
            f"    def __init__(self, data_dim={D}, latent_dim={k}{init_beta}):",
            "        super().__init__()",
            "        self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(data_dim, 400), nn.ReLU())",
            "        self.fc_mu = nn.Linear(400, latent_dim)",
            f"        self.{scale_name} = {scale_layer}",
            "        self.decoder = nn.Sequential(",
            f"            nn.Linear(latent_dim, 400), nn.ReLU(), nn.Linear(400, data_dim){sigmoid})",
            *["        " + a for a in self.attribute_lines()],
            "",
            "    def forward(self, x):",
            "        h = self.encoder(x)",
            f"        m, s = self.fc_mu(h), self.{scale_name}(h)",
            f"        z = m + {std} * torch.randn_like(m)",
            "        return self.decoder(z), m, s",
            "",
            "    def training_step(self, batch, batch_idx):",
            f"        {self.X}, _ = batch",
            f"        {self.R}, {self.M}, {self.S} = self({self.X})",
            *["        " + line for line in self.body()],
            '        self.log("train_loss", loss)',
            "        return loss",
            "",
            "    def configure_optimizers(self):",
            "        return torch.optim.Adam(self.parameters(), lr=1e-3)",
        ]

    def loop(self) -> list[str]:
        s = self.s
        head = [
            "",
            "train_loader = torch.utils.data.DataLoader(",
            "    datasets.MNIST('../data', train=True, download=True, transform=transforms.ToTensor()),",
            "    batch_size=128, shuffle=True)",
            "",
            "",
            *self.model_class(),
            "",
            "",
            "model = VAE()",
            "optimizer = optim.Adam(model.parameters(), lr=1e-3)",
            "",
        ]
        step = [
            f"for batch_idx, ({self.X}, _) in enumerate(train_loader):",
            "    optimizer.zero_grad()",
            f"    {self.R}, {self.M}, {self.S} = model({self.X})",
            *["    " + line for line in self.body()],
            "    loss.backward()",
            "    optimizer.step()",
        ]
        if s.shape == "loop-top":
            return [*head, "for epoch in range(args.epochs):", *["    " + line for line in step]]
        return [
            *head,
            "",
            "def train(epoch):",
            "    model.train()",
            *["    " + line for line in step],
            "",
            "",
            "for epoch in range(1, args.epochs + 1):",
            "    train(epoch)",
        ]


def render(spec: Spec) -> str:
    """The whole source file of ``spec``."""
    return _Writer(spec).source()
