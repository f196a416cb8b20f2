"""Run a check: read the file, probe the function in a separate process, build the report."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from vaeloss.check.findings import Context, build_findings, build_fix
from vaeloss.check.result import TOLERANCE, CheckReport, fit_monomial
from vaeloss.check.source import assign_roles, read_source, select_function
from vaeloss.errors import LossCheckError
from vaeloss.validation import check_positive, check_positive_int

__all__ = ["CheckReport", "check_loss", "parse_target"]


def parse_target(target: str) -> tuple[Path, str | None]:
    """Split ``PATH[:FUNCTION]``."""
    if ":" in target:
        path, _, fn = target.rpartition(":")
        if path and all(part.isidentifier() for part in fn.split(".")):
            return Path(path), fn
    return Path(target), None


def _run_worker(request: dict[str, Any], timeout: float, isolate: bool) -> dict[str, Any]:
    if not isolate:
        from vaeloss.check.worker import run

        return _unwrap(run(request), request)
    with tempfile.TemporaryDirectory(prefix="vaeloss-check-") as tmp:
        req = Path(tmp) / "request.json"
        res = Path(tmp) / "result.json"
        req.write_text(json.dumps(request))
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "vaeloss.check.worker", str(req), str(res)],
                capture_output=True,
                text=True,
                timeout=timeout,
                env=env,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            raise LossCheckError(
                f"Expected {request['function']} to return within timeout={timeout:g} s but it "
                f"did not (an infinite loop, or training at import?). Try --timeout with a larger "
                f"value, or move slow code under `if __name__ == '__main__':`."
            ) from None
        if not res.exists():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
            raise LossCheckError(
                f"Expected the check of {request['path']} to finish but its process exited with "
                f"status {proc.returncode} before reporting (os._exit or a crash?). "
                + ("Its last output: " + " | ".join(tail) if tail else "It printed nothing.")
            )
        answer: dict[str, Any] = json.loads(res.read_text())
    return _unwrap(answer, request)


def _unwrap(answer: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
    if not answer["ok"] and "." in request["function"] and "'NoneType'" in answer["error"]:
        answer["error"] += (
            f"\n{request['function']} is a method that uses self; it is called with self=None. "
            f"Try moving the loss into a plain function that takes what it needs as arguments."
        )
    if not answer["ok"]:
        missing = re.search(r"KeyError: '(\w+)'", answer["error"])
        if missing:
            answer["error"] += (
                f"\nThe function reads a keyword argument {missing.group(1)!r} it was not given. "
                f"Try --arg {missing.group(1)}=VALUE."
            )
        raise LossCheckError(
            f"Expected a loss that can be probed but {request['path']}:{request['function']} "
            f"could not be checked: {answer['error']}"
        )
    result: dict[str, Any] = answer["result"]
    return result


def check_loss(
    target: str,
    *,
    batch_size: int = 128,
    data_dim: int | None = None,
    latent_dim: int = 20,
    input_shape: tuple[int, ...] | None = None,
    args: dict[str, Any] | None = None,
    expect_beta: float | None = None,
    timeout: float = 60.0,
    isolate: bool = True,
) -> CheckReport:
    """Check the loss function ``PATH[:FUNCTION]`` and return a :class:`CheckReport`.

    The file is executed (imported) in a separate Python process, as pytest does, with a
    time limit of ``timeout`` seconds; ``isolate=False`` runs it in this process instead
    (no time limit; for tests and trusted code).

    Raises:
        LossCheckError: the file cannot be checked (missing, syntax error, no or several
            candidate functions, crashes, never returns, returns a non-tensor or NaN).
    """
    B = check_positive_int("batch_size", batch_size, example=128)
    k = check_positive_int("latent_dim", latent_dim, example=20)
    check_positive("timeout", timeout)
    if input_shape is not None:
        for n in input_shape:
            check_positive_int("input_shape", n, example=28)
        D = math.prod(input_shape)
        if data_dim is not None and data_dim != D:
            raise LossCheckError(
                f"Expected --data-dim to equal the product of --input-shape but got "
                f"data_dim={data_dim}, input_shape={','.join(map(str, input_shape))}. "
                f"Try leaving out --data-dim."
            )
    else:
        D = check_positive_int("data_dim", data_dim if data_dim is not None else 784, example=784)
    path, name = parse_target(target)
    source = read_source(path)
    fn, why = select_function(source, name)
    extra = dict(args or {})
    tensor_params = [p for p in fn.required if p not in extra]
    if fn.varargs and len(tensor_params) < 4:
        # def loss(self, *args, **kwargs): recons, input, mu, log_var = args[:4]
        tensor_params = tensor_params + [f"*{i}" for i in range(4 - len(tensor_params))]
    roles = assign_roles(tensor_params)
    unknown_required = [
        p for p in tensor_params[4:] if p.lower() not in ("z", "z_sample", "sample", "z_sampled")
    ]
    if len(tensor_params) < 4:
        raise LossCheckError(
            f"Expected {fn.name} to take at least 4 tensors (reconstruction, data, mu, logvar) "
            f"but it takes {fn.required}. Try a function with that signature, or pass fixed "
            f"arguments with --arg NAME=VALUE."
        )
    if unknown_required:
        hint = " ".join(f"--arg {p}=VALUE" for p in unknown_required)
        raise LossCheckError(
            f"Expected values for the required argument(s) {', '.join(unknown_required)} of "
            f"{fn.name} but got none. Try {hint}."
        )
    defaults = {k_: v for k_, v in fn.defaults.items() if k_ not in extra}
    weights = {
        n: float(v)
        for n, v in {**defaults, **extra}.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    }
    request = {
        "path": str(path),
        "function": fn.name,
        "roles": roles,
        "extra": extra,
        "weights": weights,
        "B": B,
        "D": D,
        "k": k,
        "input_shape": list(input_shape) if input_shape else None,
    }
    try:
        result = _run_worker(request, timeout, isolate)
    except LossCheckError as exc:
        fixed = source.lines.get("hard_coded_784")
        if fixed and D != 784:
            raise LossCheckError(
                f"{exc}\nThe file hard-codes 784 (line {fixed[0]}): try --data-dim 784, or use "
                f"x.view(x.shape[0], -1) instead of a fixed size."
            ) from None
        raise
    return _build(
        result,
        source.lines,
        fn.name,
        str(path),
        why,
        {"B": B, "D": D, "k": k},
        {**defaults, **extra},
        expect_beta,
    )


def _build(
    result: dict[str, Any],
    lines: dict[str, list[int]],
    function: str,
    path: str,
    why: str,
    sizes: dict[str, int],
    defaults: dict[str, Any],
    expect_beta: float | None,
) -> CheckReport:
    fit = result["fit"]
    recon_ok = fit["recon_residual"] < TOLERANCE
    kl_ok = fit["kl_residual"] < TOLERANCE
    d_fixed = "error" in result["size_fits"].get("D", {})
    likelihood, decoder_output = (fit["likelihood"], fit["decoder_output"]) if recon_ok else (None, None)
    recon_factor = fit_monomial(fit["a"], result["size_fits"], "a", sizes, d_fixed) if recon_ok else None
    kl_factor = fit_monomial(fit["b"], result["size_fits"], "b", sizes, d_fixed) if kl_ok else None
    weight_param = None
    for pname, eff in result["weight_effects"].items():
        if "error" in eff or not kl_ok or fit["b"] == 0:
            continue
        ratio = eff["b"] / fit["b"]
        target = 2.0 if eff["value"] else math.nan
        if abs(ratio - target) < 1e-6 and abs(eff["a"] / fit["a"] - 1) < 1e-6:
            weight_param = pname
    report = CheckReport(
        function=function,
        path=path,
        selected_because=why,
        sizes=sizes,
        roles=result["roles"],
        input_shape=result["input_shape"],
        output=result["output"],
        likelihood=likelihood,
        decoder_output=decoder_output,
        latent_parameterisation=fit["kl"] if kl_ok else None,
        recon_factor=recon_factor,
        kl_factor=kl_factor,
        constant=fit["c"],
        defaults=defaults,
        kl_weight_parameter=weight_param,
        data_dim_fixed=d_fixed,
        gradients=result["gradients"],
        edges=result["edges"],
        fit=fit,
    )
    report.findings = build_findings(report, Context(lines, expect_beta))
    report.fix = build_fix(report)
    return report
