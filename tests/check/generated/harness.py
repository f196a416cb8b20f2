"""Run ``vaeloss check`` on a generated file and judge its answer against the spec's truth.

Outcomes: ``right``; ``refused`` (a clear refusal: the check's own error, or a finding of a
documented limit, its message kept); ``misleading`` (a refusal or finding that is false of the
file by construction: "not a Gaussian KL", "no posterior"); ``wrong`` (a beta, likelihood,
parameterisation or output that is not the truth); ``traceback`` (any other exception: a bug
of the tool); ``timeout``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

from lossgen import DECODER, LIKELIHOOD_NAME, Spec
from render import render

MC_RELATIVE = 0.05  # a Monte-Carlo KL is fitted in expectation: its beta within this
MISLEADING = ("a classifier's or a GAN's loss", "no posterior mean")
"""Refusals that are false of every generated file (each is a VAE loss reading a posterior)."""
FALSE_BY_CONSTRUCTION = {"kl-not-gaussian", "recon-not-a-likelihood"}
"""Findings that no generated file deserves (its KL is Gaussian, its reconstruction one of the
likelihoods): a report without a beta that gives one of them is misleading."""


@dataclass(frozen=True)
class Outcome:
    spec: Spec
    kind: str  # right, refused, misleading, wrong, traceback, timeout
    detail: str = ""
    seconds: float = 0.0

    @property
    def reason(self) -> str:
        """The failure's class: its kind and the first line of its detail, without the numbers."""
        import re

        first = self.detail.splitlines()[0] if self.detail else ""
        first = re.sub(r"(line|lines) \d+(-\d+)?", r"\1 N", first)
        first = re.sub(r"_vaeloss_inline_\d+", "_vaeloss_inline_N", first)
        first = re.sub(r"/[^\s'\"]*/", "/.../", first)
        return f"{self.kind}: {re.sub(r'[-+]?[0-9][0-9.e+-]*', '#', first)[:160]}"


def _formula_at(formula: str, B: int, D: int, k: int) -> float:
    return float(eval(formula.replace("^", "**"), {"__builtins__": {}}, {"B": B, "D": D, "k": k}))


def judge(spec: Spec, report: dict) -> str:
    """What is wrong in the check's JSON report (empty when right)."""
    B, D, k = spec.sizes
    wrong = []
    if report["likelihood"] != LIKELIHOOD_NAME[spec.likelihood]:
        wrong.append(f"likelihood {report['likelihood']} (truth {LIKELIHOOD_NAME[spec.likelihood]})")
    if report["decoder_output"] != DECODER[spec.likelihood]:
        wrong.append(f"decoder output {report['decoder_output']} (truth {DECODER[spec.likelihood]})")
    if report["latent_parameterisation"] != spec.param:
        wrong.append(f"parameterisation {report['latent_parameterisation']} (truth {spec.param})")
    if report["output"] != spec.output:
        wrong.append(f"output {report['output']} (truth {spec.output})")
    truth = spec.beta()
    rel = MC_RELATIVE if spec.monte_carlo else 1e-6
    beta = report["effective_beta"]
    if beta is None or not math.isclose(beta, truth.at(B, D, k), rel_tol=rel):
        wrong.append(f"beta {beta} (truth {truth.at(B, D, k):.6g})")
    formula = report["effective_beta_formula"]
    if formula is not None and not spec.hard_coded_dim and beta is not None:
        fixed = set(report["formula_fixed_dims"])  # a model's own D and k: the formula holds there
        other = (B * 2 + 1 if "B" not in fixed else B, D * 3 + 2 if "D" not in fixed else D,
                 k + 3 if "k" not in fixed else k)  # fmt: skip
        value = _formula_at(formula, *other)
        if not math.isclose(value, truth.at(*other), rel_tol=rel):
            wrong.append(f"formula {formula} = {value:.6g} at B,D,k={other} (truth {truth.at(*other):.6g})")
    if spec.monte_carlo != bool(report["monte_carlo_kl"]):
        wrong.append(f"monte_carlo_kl {report['monte_carlo_kl']} (truth {spec.monte_carlo})")
    return "; ".join(wrong)


def run_spec(spec: Spec, folder: Path, *, isolate: bool = False, timeout: float = 60.0) -> Outcome:
    """Write ``spec``'s file in ``folder`` and check it as a user would (no name given)."""
    from vaeloss.check.runner import check_loss
    from vaeloss.errors import VaelossError

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "vae_loss_file.py"
    path.write_text(render(spec))
    B, D, k = spec.sizes
    started = time.perf_counter()
    try:
        report = check_loss(
            str(path),
            batch_size=B,
            data_dim=D,
            latent_dim=k,
            args=spec.args,
            isolate=isolate,
            timeout=timeout,
        )
    except VaelossError as exc:
        text = str(exc)
        timed_out = "within timeout=" in text or "to finish within" in text or "to start Python" in text
        kind = "timeout" if timed_out else "misleading" if any(m in text for m in MISLEADING) else "refused"
        return Outcome(spec, kind, text, time.perf_counter() - started)
    except Exception as exc:  # noqa: BLE001 - a bug of the tool, classified
        return Outcome(spec, "traceback", f"{type(exc).__name__}: {exc}", time.perf_counter() - started)
    seconds = time.perf_counter() - started
    data = report.to_json()
    wrong = judge(spec, data)
    if not wrong:
        return Outcome(spec, "right", "", seconds)
    codes = {f["code"]: f["message"] for f in data["findings"]}
    if data["effective_beta"] is None and "term-below-rounding" in codes:  # a documented limit, said
        return Outcome(spec, "refused", f"term-below-rounding: {codes['term-below-rounding']}", seconds)
    if data["effective_beta"] is None and FALSE_BY_CONSTRUCTION & set(codes):
        claims = "; ".join(f"{c}: {codes[c]}" for c in sorted(FALSE_BY_CONSTRUCTION & set(codes)))
        return Outcome(spec, "misleading", f"{wrong}; it says {claims}", seconds)
    return Outcome(spec, "wrong", wrong, seconds)
