"""A generator of VAE loss files, each with its objective known by construction.

Every file is composed from choices, one per *choice point* (the likelihood and how its
reconstruction term is written and reduced, the KL's parameterisation, idiom and reduction,
the KL weight and where it comes from, extra factors, the shape around the loss, argument
names, what it returns), and written as a whole source file in its framework's own idioms
(PyTorch, Keras 3 ``keras.ops``, Keras 2 ``K.*``, TensorFlow ``tf.reduce_*``, JAX ``jnp``).

Its own small algebra (it imports nothing of vaeloss): with the loss written as
``L = a * sum_{batch,data} NLL + b * sum_{batch,latent} KL + const``, each choice multiplies
``a`` or ``b`` by a monomial in the batch size B, the data dimension D and the latent
dimension k, and the effective beta is ``b / a``:

* a reconstruction term averaged over the data dims divides ``a`` by D; over the batch, by B;
* a squared error is twice the unit-variance Gaussian NLL (``a`` times 2); a ``Normal(r, 1)``
  log-density, a binary cross-entropy and an absolute error (Laplace, scale 1) are the NLL;
* a KL averaged over the latent dims divides ``b`` by k; over the batch, by B;
* the KL weight multiplies ``b``; a factor on the whole loss (``/ x.size(0)``) both.

The choosers: :func:`build` takes ``choose(point, options) -> option``; :func:`specs` is the
Hypothesis strategy (shrinking toward each point's first option, the plainest idiom) and
:func:`random_spec` draws with a :class:`random.Random` for the whole space
(``bench/corpus.py``).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

FRAMEWORKS = ("torch", "keras3", "keras2", "tf", "jax")


@dataclass(frozen=True)
class Mono:
    """``coef * B**b * D**d * k**kk``, exactly."""

    coef: Fraction
    b: int = 0
    d: int = 0
    kk: int = 0

    def __mul__(self, other: Mono) -> Mono:
        return Mono(self.coef * other.coef, self.b + other.b, self.d + other.d, self.kk + other.kk)

    def __truediv__(self, other: Mono) -> Mono:
        return Mono(self.coef / other.coef, self.b - other.b, self.d - other.d, self.kk - other.kk)

    def at(self, B: int, D: int, k: int) -> float:
        return float(self.coef) * B**self.b * D**self.d * k**self.kk


ONE = Mono(Fraction(1))
PER_B, PER_D, PER_K = Mono(Fraction(1), b=-1), Mono(Fraction(1), d=-1), Mono(Fraction(1), kk=-1)


def const(x: float | Fraction) -> Mono:
    return Mono(Fraction(x).limit_denominator(10**9))


# --- choice points -------------------------------------------------------------------------------

LIKELIHOODS = ("bernoulli", "bernoulli_logits", "gaussian", "laplace")
DECODER = {"bernoulli": "probabilities", "bernoulli_logits": "logits", "gaussian": "mean", "laplace": "mean"}
LIKELIHOOD_NAME = {
    "bernoulli": "bernoulli",
    "bernoulli_logits": "bernoulli",
    "gaussian": "gaussian",
    "laplace": "laplace",
}
PARAMS = ("logvar", "log_std", "std", "var")
REDUCTIONS = (
    ("sum", "sum"),
    ("mean", "mean"),
    ("sum", "mean"),
    ("mean", "sum"),
    ("sum", "none"),
    ("mean", "none"),
)

# (framework, likelihood) -> {style: (expression template on R, X; factor to the NLL; folded)}.
# A folded style reduces by itself: its reduction is fixed by the style (or its reduction
# argument); the others are element-wise and reduced by the file's own reduction calls.
_ELEMENT = "element"


@dataclass(frozen=True)
class Style:
    template: str  # an expression of R (reconstruction) and X (data); {red} for a folded one's reduction
    factor: Fraction = Fraction(1)  # this expression / the per-element NLL
    folded: tuple[tuple[str, str], ...] = ()  # the reductions it can take, when it reduces itself
    setup: str = ""  # a module-level line it needs (a loss module as an object)
    attribute: str = ""  # an attribute line of a class (``self.rec = nn.BCELoss(...)``)
    fixed: dict[tuple[str, str], str] = field(default_factory=dict)  # {red} text by reduction
    data_reduced: str = ""  # "mean": it gives a value per sample, averaged over the data dims


_BOTH = (("sum", "sum"), ("mean", "mean"))
_SUMMED = (("sum", "sum"),)
_TORCH_FN = {"bernoulli": "binary_cross_entropy", "bernoulli_logits": "binary_cross_entropy_with_logits",
             "gaussian": "mse_loss", "laplace": "l1_loss"}  # fmt: skip
_TORCH_MODULE = {"bernoulli": "BCELoss", "bernoulli_logits": "BCEWithLogitsLoss", "gaussian": "MSELoss",
                 "laplace": "L1Loss"}  # fmt: skip
_REDUCTION = {("sum", "sum"): "reduction='sum'", ("mean", "mean"): "reduction='mean'"}
_LEGACY = {("sum", "sum"): "size_average=False", ("mean", "mean"): "size_average=True"}
_TWO = Fraction(2)


def _torch_styles(lik: str) -> dict[str, Style]:
    fn, module = _TORCH_FN[lik], _TORCH_MODULE[lik]
    sq = _TWO if lik == "gaussian" else Fraction(1)
    styles = {
        "F.call": Style(f"F.{fn}(R, X, {{red}})", sq, _BOTH, fixed=_REDUCTION),
        "F.call-default": Style(f"F.{fn}(R, X)", sq, (("mean", "mean"),)),
        "F.legacy": Style(f"F.{fn}(R, X, {{red}})", sq, _BOTH, fixed=_LEGACY),
        "nn.inline": Style(f"nn.{module}({{red}})(R, X)", sq, _BOTH, fixed=_REDUCTION),
        "nn.object": Style("rec_loss(R, X)", sq, _BOTH, setup=f"rec_loss = nn.{module}({{red}})",
                           fixed=_REDUCTION),
        "nn.attribute": Style("self.rec_loss(R, X)", sq, _BOTH, fixed=_REDUCTION,
                              attribute=f"self.rec_loss = nn.{module}({{red}})"),
        "F.none": Style(f"F.{fn}(R, X, reduction='none')", sq),
        "F.legacy-none": Style(f"F.{fn}(R, X, reduce=False)", sq),
    }  # fmt: skip
    if lik == "bernoulli":
        styles["manual-log"] = Style("-(X * torch.log(R) + (1 - X) * torch.log(1 - R))")
        styles["distributions"] = Style("-torch.distributions.Bernoulli(probs=R).log_prob(X)")
    elif lik == "bernoulli_logits":
        styles["distributions"] = Style("-torch.distributions.Bernoulli(logits=R).log_prob(X)")
    elif lik == "gaussian":
        styles["pow"] = Style("(X - R).pow(2)", _TWO)
        styles["square-op"] = Style("(R - X) ** 2", _TWO)
        styles["half-square"] = Style("0.5 * (R - X) ** 2")
        styles["distributions"] = Style("-torch.distributions.Normal(R, 1.0).log_prob(X)")
    else:
        styles["abs"] = Style("torch.abs(R - X)")
        styles["abs-method"] = Style("(X - R).abs()")
        styles["distributions"] = Style("-torch.distributions.Laplace(R, 1.0).log_prob(X)")
    return styles


def _array_styles(fw: str, lik: str) -> dict[str, Style]:
    """Element-wise idioms of Keras 3, Keras 2, TensorFlow and JAX (and their per-sample losses)."""
    ops = {"keras3": "ops", "keras2": "K", "tf": "tf.math", "jax": "jnp"}[fw]
    log = f"{ops}.log"
    styles: dict[str, Style] = {}
    if lik == "bernoulli":
        styles["manual-log"] = Style(f"-(X * {log}(R) + (1 - X) * {log}(1 - R))")
        if fw == "keras3":
            styles["keras.losses"] = Style("keras.losses.binary_crossentropy(X, R)", data_reduced="mean")
        elif fw == "keras2":
            styles["K.binary_crossentropy"] = Style("K.binary_crossentropy(X, R)")
            styles["metrics"] = Style("metrics.binary_crossentropy(X, R)", data_reduced="mean")
        elif fw == "tf":
            styles["keras.losses"] = Style("tf.keras.losses.binary_crossentropy(X, R)", data_reduced="mean")
    elif lik == "bernoulli_logits":
        if fw == "tf":
            styles["tf.nn"] = Style("tf.nn.sigmoid_cross_entropy_with_logits(labels=X, logits=R)")
        elif fw == "jax":
            styles["optax"] = Style("optax.sigmoid_binary_cross_entropy(R, X)")
            styles["log_sigmoid"] = Style("-(X * jax.nn.log_sigmoid(R) + (1 - X) * jax.nn.log_sigmoid(-R))")
        else:
            styles["log_sigmoid"] = Style(
                f"-(X * {ops}.log_sigmoid(R) + (1 - X) * {ops}.log_sigmoid(-R))"
                if fw == "keras3" else "K.binary_crossentropy(X, R, from_logits=True)"
            )  # fmt: skip
    elif lik == "gaussian":
        square = {"keras3": "ops.square", "keras2": "K.square", "tf": "tf.square", "jax": "jnp.square"}[fw]
        styles["square"] = Style(f"{square}(X - R)", _TWO)
        styles["square-op"] = Style("(R - X) ** 2", _TWO)
        if fw in ("keras3", "tf"):
            mse = "keras.losses.mean_squared_error" if fw == "keras3" else "tf.keras.losses.mse"
            styles["keras.losses"] = Style(f"{mse}(X, R)", _TWO, data_reduced="mean")
    else:
        absolute = {"keras3": "ops.abs", "keras2": "K.abs", "tf": "tf.abs", "jax": "jnp.abs"}[fw]
        styles["abs"] = Style(f"{absolute}(R - X)")
    return styles


def recon_styles(fw: str, lik: str) -> dict[str, Style]:
    return _torch_styles(lik) if fw == "torch" else _array_styles(fw, lik)


def likelihoods(fw: str) -> tuple[str, ...]:
    return tuple(lik for lik in LIKELIHOODS if recon_styles(fw, lik))


# KL: each parameterisation's closed form as (factor outside, the inside, element-wise) with S
# the scale argument and M the mean, in the framework's ops (EXP, LOG, SQ(a) for a**2).
_KL_INSIDE = {
    "logvar": ("-0.5", "1 + S - SQ(M) - EXP(S)"),
    "log_std": ("-0.5", "1 + 2 * S - SQ(M) - EXP(2 * S)"),
    "std": ("0.5", "SQ(S) + SQ(M) - 1 - LOG(SQ(S))"),
    "var": ("0.5", "S + SQ(M) - 1 - LOG(S)"),
}
_KL_INSIDE_ALT = {  # the same KL written as one element-wise expression, no factor outside
    "logvar": "0.5 * (EXP(S) + SQ(M) - 1 - S)",
    "log_std": "-S + 0.5 * (EXP(2 * S) + SQ(M)) - 0.5",
    "std": "-LOG(S) + 0.5 * (SQ(S) + SQ(M)) - 0.5",
    "var": "0.5 * (S + SQ(M) - 1) - 0.5 * LOG(S)",
}
_STD_OF = {"logvar": "torch.exp(0.5 * S)", "log_std": "S.exp()", "std": "S", "var": "S.sqrt()"}


def kl_styles(fw: str) -> tuple[str, ...]:
    return (
        ("closed", "closed-alt", "distributions", "monte-carlo")
        if fw == "torch"
        else ("closed", "closed-alt")
    )


_OPS = {
    "torch": {"EXP": "torch.exp", "LOG": "torch.log", "SUM": "torch.sum", "MEAN": "torch.mean", "AX": "dim"},
    "keras3": {"EXP": "ops.exp", "LOG": "ops.log", "SUM": "ops.sum", "MEAN": "ops.mean", "AX": "axis"},
    "keras2": {"EXP": "K.exp", "LOG": "K.log", "SUM": "K.sum", "MEAN": "K.mean", "AX": "axis"},
    "tf": {
        "EXP": "tf.exp",
        "LOG": "tf.math.log",
        "SUM": "tf.reduce_sum",
        "MEAN": "tf.reduce_mean",
        "AX": "axis",
    },
    "jax": {"EXP": "jnp.exp", "LOG": "jnp.log", "SUM": "jnp.sum", "MEAN": "jnp.mean", "AX": "axis"},
}
_SQ = {"torch": ("{}.pow(2)", "{} ** 2"), "keras3": ("ops.square({})",), "keras2": ("K.square({})",),
       "tf": ("tf.square({})",), "jax": ("jnp.square({})", "{} ** 2")}  # fmt: skip

SHAPES = {
    "torch": (
        "function",
        "packed",
        "class-call",
        "module-forward",
        "model-method",
        "loop-top",
        "loop-train",
        "lightning-step",
        "nested-in-main",
    ),
    "keras3": ("function", "packed"),
    "keras2": ("function",),
    "tf": ("function", "packed"),
    "jax": ("function", "packed"),
}
WEIGHT_VALUES = (Fraction(1), Fraction(1, 2), Fraction(4), Fraction(1, 1000))
WEIGHT_SOURCES = ("literal", "default", "constant", "self", "argparse", "required", "none")
EXTRAS = ("none", "per-batch", "times-dim", "per-dataset", "times-original-dim")
ORIGINAL_DIM = 784  # ``original_dim = 784`` of the Keras examples: a constant, whatever D is
RETURNS = ("scalar", "tuple", "dict", "object")
# argument names: (reconstruction, data, mean, scale by parameterisation)
NAMES = (
    ("recon_x", "x", "mu", {"logvar": "logvar", "log_std": "log_std", "std": "std", "var": "var"}),
    ("x_hat", "x", "mean", {"logvar": "log_var", "log_std": "log_sigma", "std": "sigma", "var": "variance"}),
    ("recons", "input", "mu", {"logvar": "log_var", "log_std": "logstd", "std": "std", "var": "var"}),
    ("x_decoded_mean", "x", "z_mean", {"logvar": "z_log_var", "log_std": "z_log_sigma", "std": "z_std",
                                       "var": "z_var"}),
    ("reconstruction", "data", "z_mu", {"logvar": "z_logvar", "log_std": "z_log_std", "std": "z_sigma",
                                        "var": "sigma_sq"}),
)  # fmt: skip
ORDERS = ("recon,data,mu,scale", "data,recon,mu,scale", "recon,data,(mu,scale)")
SIZES = ((32, 64, 8), (16, 196, 2), (64, 784, 20))
N_TRAIN = 60000  # the data set size a loss is divided by (``/ N_TRAIN``)


@dataclass(frozen=True)
class Spec:
    """One generated file's choices; its truth (:meth:`beta`, ...) follows from them."""

    framework: str
    likelihood: str
    recon_style: str
    recon_red: tuple[str, str]
    param: str
    kl_style: str
    kl_red: tuple[str, str]
    weight: Fraction
    weight_source: str
    extra: str
    shape: str
    names: int
    order: str
    returns: str
    sizes: tuple[int, int, int]
    square: int = 0
    view: int = 0  # the data as given (0), flattened per sample (1), as x.view(-1, 784) (2)
    method: int = 0  # torch reductions as functions (0: torch.sum(e)) or methods (1: e.sum())

    @property
    def style(self) -> Style:
        return recon_styles(self.framework, self.likelihood)[self.recon_style]

    @property
    def per_sample(self) -> bool:
        return self.recon_red[1] == "none"

    @property
    def hard_coded_dim(self) -> bool:
        """Whether the file fixes D at 784 (``x.view(-1, 784)``): its formula holds there only."""
        return self.view == 2

    def a(self) -> Mono:
        dr, br = self.recon_red
        a = const(self.style.factor)
        a = a * PER_D if dr == "mean" else a
        a = a * PER_B if br == "mean" else a
        a = a * Mono(Fraction(1), d=1) if self.extra == "times-dim" else a
        a = a * const(ORIGINAL_DIM) if self.extra == "times-original-dim" else a
        return a * self._overall()

    def _overall(self) -> Mono:
        """A factor on the whole loss: ``/ x.size(0)``, ``/ N_TRAIN``."""
        return {"per-batch": PER_B, "per-dataset": const(Fraction(1, N_TRAIN))}.get(self.extra, ONE)

    def b(self) -> Mono:
        lr, br = self.kl_red
        b = const(self.weight)
        b = b * PER_K if lr == "mean" else b
        b = b * PER_B if br == "mean" else b
        return b * self._overall()

    def beta(self) -> Mono:
        """The effective beta, as a monomial in B, D, k."""
        return self.b() / self.a()

    @property
    def args(self) -> dict[str, float]:
        """The ``--arg`` values the check needs (a required KL weight)."""
        return {"beta": float(self.weight)} if self.weight_source == "required" else {}

    @property
    def output(self) -> str:
        return "per_sample" if self.per_sample else "scalar"

    @property
    def monte_carlo(self) -> bool:
        return self.kl_style == "monte-carlo"

    def label(self) -> str:
        """A readable one-line id of the choices."""
        return (
            f"{self.framework}:{self.shape}:{self.likelihood}/{self.recon_style}/{'-'.join(self.recon_red)}"
            f"+kl:{self.param}/{self.kl_style}/{'-'.join(self.kl_red)}"
            f"+w{self.weight}:{self.weight_source}+{self.extra}+{self.order}+n{self.names}+{self.returns}"
        )

    def idioms(self) -> dict[str, str]:
        """The choice points and what was chosen at each (the bench's table rows)."""
        return {
            "likelihood": self.likelihood,
            "recon style": self.recon_style,
            "recon reduction": "-".join(self.recon_red),
            "parameterisation": self.param,
            "kl style": self.kl_style,
            "kl reduction": "-".join(self.kl_red),
            "weight source": self.weight_source,
            "extra factor": self.extra,
            "shape": self.shape,
            "argument order": self.order,
            "returns": self.returns,
        }


Choose = Callable[[str, Sequence[Any]], Any]


def build(framework: str, choose: Choose) -> Spec:
    """A spec of ``framework``, each choice made by ``choose(point, options)``."""
    lik = choose("likelihood", likelihoods(framework))
    styles = recon_styles(framework, lik)
    shape = choose("shape", SHAPES[framework])
    in_class = shape in ("class-call", "module-forward", "model-method", "lightning-step")
    # through a model (a Lightning step): the sizes are the model's, D = 784 as it flattens MNIST
    stepped = shape == "lightning-step"
    # qualified by the likelihood, so that a covering sample takes every idiom of each likelihood
    style_name = choose(
        f"recon style:{lik}", tuple(n for n, st in styles.items() if in_class or not st.attribute)
    )
    style = styles[style_name]
    loop = shape.startswith("loop") or stepped
    reds = style.folded or tuple(r for r in REDUCTIONS if r[0] == (style.data_reduced or r[0]))
    if loop or shape == "module-forward":  # backward() and nn.Module losses take a scalar
        reds = tuple(r for r in reds if r[1] != "none") or reds
    recon_red = choose("recon reduction", reds)
    kl_reds = tuple(r for r in REDUCTIONS if (r[1] == "none") == (recon_red[1] == "none"))
    kl_style = choose("kl style", kl_styles(framework))
    param = choose("parameterisation", PARAMS)  # a model's: its layer's output (softplus for std, var)
    kl_red = choose("kl reduction", kl_reds)
    sources = [s for s in WEIGHT_SOURCES if s != "self" or in_class]
    if loop:
        sources = [s for s in sources if s not in ("default", "required")]
    if shape == "nested-in-main":  # main(args)'s own args is out of the loss's reach (a closure)
        sources = [s for s in sources if s != "argparse"]
    source = choose("weight source", tuple(sources))
    weight = Fraction(1) if source == "none" else choose("weight", WEIGHT_VALUES)
    extras = EXTRAS if recon_red[1] != "none" else ("none", "times-dim", "times-original-dim")
    extra = choose("extra factor", extras)
    orders = ORDERS if not loop and shape != "packed" else ORDERS[:1]
    order = choose("argument order", orders)
    scalar = not loop and recon_red[1] != "none"
    returns = choose("returns", (RETURNS if framework == "torch" else RETURNS[:3]) if scalar else RETURNS[:1])
    names = choose("names", tuple(range(len(NAMES))))
    square = choose("square", tuple(range(len(_SQ[framework]))))
    view = choose("data view", (0, 1, 2) if framework == "torch" else (0,))
    sizes = choose("sizes", tuple(s for s in SIZES if s[1] == 784) if view == 2 or stepped else SIZES)
    method = choose("call style", (0, 1) if framework == "torch" else (0,))
    return Spec(framework, lik, style_name, recon_red, param, kl_style, kl_red, weight, source, extra, shape,
                names, order, returns, sizes, square, view, method)  # fmt: skip


EXPENSIVE = {"kl style": ("monte-carlo",)}
"""Options whose check costs many times the others' (a Monte-Carlo KL is fitted on averages
over draws: about 16,000 calls of the loss, 10 s): a sample sized for the test suite takes
them where it must cover them only."""


def cheap(choose: Choose) -> Choose:
    """``choose`` that leaves out the :data:`EXPENSIVE` options."""
    return lambda point, options: choose(point, [o for o in options if o not in EXPENSIVE.get(point, ())])


def random_spec(framework: str, rng: random.Random, *, cheap_only: bool = False) -> Spec:
    choose: Choose = lambda _point, options: rng.choice(list(options))  # noqa: E731
    return build(framework, cheap(choose) if cheap_only else choose)


def specs(framework: str, *, cheap_only: bool = False) -> Any:
    """The Hypothesis strategy of specs of ``framework``."""
    from hypothesis import strategies as st

    @st.composite
    def draw_spec(draw: Any) -> Spec:
        choose: Choose = lambda point, options: draw(st.sampled_from(list(options)), label=point)  # noqa: E731
        return build(framework, cheap(choose) if cheap_only else choose)

    return draw_spec()


def covering(framework: str, seed: int = 0, patience: int = 300) -> list[Spec]:
    """Specs in which every option of every choice point (each likelihood's idioms apart) is
    taken at least once: each spec takes an option not yet taken wherever there is one, the
    others drawn from a seeded generator; done when ``patience`` draws in a row add nothing."""
    rng = random.Random(seed)
    seen: set[tuple[str, str]] = set()
    out: list[Spec] = []
    idle = 0
    while idle < patience:
        fresh_taken: list[str] = []

        def choose(point: str, options: Sequence[Any]) -> Any:
            fresh = [o for o in options if (point, repr(o)) not in seen]
            fresh_taken.extend(point for _ in fresh[:1])
            filler = [o for o in options if o not in EXPENSIVE.get(point, ())] or list(options)
            return fresh[0] if fresh else rng.choice(filler)

        spec = build(framework, choose)
        if not fresh_taken:
            idle += 1
            continue
        trace: list[tuple[str, Any]] = []
        build(framework, lambda p, o: trace.append((p, _replay(spec, p, o))) or trace[-1][1])
        seen |= {(p, repr(v)) for p, v in trace}
        out.append(spec)
        idle = 0
    return out


_POINT_FIELD = {
    "likelihood": "likelihood", "recon style": "recon_style", "shape": "shape",
    "recon reduction": "recon_red", "kl style": "kl_style", "parameterisation": "param",
    "kl reduction": "kl_red", "weight source": "weight_source", "weight": "weight", "extra factor": "extra",
    "argument order": "order", "returns": "returns", "names": "names", "sizes": "sizes", "square": "square",
    "data view": "view", "call style": "method",
}  # fmt: skip


def _replay(spec: Spec, point: str, options: Sequence[Any]) -> Any:
    value = getattr(spec, _POINT_FIELD[point.partition(":")[0]])
    return value if value in options else options[0]


def simpler(spec: Spec) -> list[Spec]:
    """Specs one step simpler than ``spec``: one choice point moved to its first option."""
    out = []
    for point in _POINT_FIELD:
        changed = {"done": False}

        def choose(p: str, options: Sequence[Any], point: str = point, changed: dict = changed) -> Any:
            value = _replay(spec, p, options)
            if p.partition(":")[0] == point and value != options[0]:
                changed["done"] = True
                return options[0]
            return value

        candidate = build(spec.framework, choose)
        if changed["done"] and candidate != spec:
            out.append(candidate)
    return out
