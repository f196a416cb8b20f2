"""Worker process of ``vaeloss check``: loads the user's file and probes one loss.

Run as ``python -m vaeloss.check.worker FD`` with the request (JSON) on stdin. Messages go to
the file descriptor FD, one JSON object per line, so that the user's own prints cannot mix
with them: ``{"phase": "import"}`` when loading the user's file starts, ``{"phase": "call"}``
when it is loaded and the probing starts, ``{"enter": 1}`` before each call of the user's code
and ``{"call": seconds}`` after it, and at the end ``{"ok": true, "result": ...}`` or
``{"ok": false, "error": ..., "phase": ...}``. The CLI process enforces ``--timeout`` on the
time spent in the user's code: the loading, and the calls (:mod:`runner`).
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["run"]


class _Channel:
    def __init__(self, fd: int | None) -> None:
        self.fd = fd
        self.messages: list[dict[str, Any]] = []

    def send(self, message: dict[str, Any]) -> None:
        if self.fd is None:
            self.messages.append(message)
            return
        os.write(self.fd, (json.dumps(message) + "\n").encode())

    def started(self) -> None:
        """A call of the user's code starts (a :class:`~vaeloss.check.probe.CallWatch`)."""
        self.send({"enter": 1})

    def finished(self, seconds: float) -> None:
        self.send({"call": seconds})


def _hint(error: str, request: dict[str, Any]) -> str:
    missing = re.search(r"KeyError: '(\w+)'", error)
    if missing:
        error += (
            f"\nThe function reads a keyword argument {missing.group(1)!r} it was not given. "
            f"Try --arg {missing.group(1)}=VALUE."
        )
    return error


def _values(texts: dict[str, str], namespace: dict[str, Any]) -> dict[str, Any]:
    from vaeloss.construct import evaluate_value

    return {name: evaluate_value(text, namespace) for name, text in texts.items()}


def _summary(reading: Any) -> str:
    fits = reading.fits
    if reading.total is not None and fits[reading.total].a and fits[reading.total].b:
        return "a full loss (reconstruction and KL)"
    if reading.components is not None:
        return "the loss's terms, returned apart"
    if any(f.a for f in fits) and not any(f.b for f in fits):
        return "a reconstruction term only"
    if any(f.b for f in fits) and not any(f.a for f in fits):
        return "a KL term only"
    return "neither term of a VAE loss"


def run(request: dict[str, Any], channel: _Channel) -> dict[str, Any]:
    """Load the file, resolve and probe the loss; the answer as JSON-able data."""
    from vaeloss.check import sandbox
    from vaeloss.check.forms import OutputError, call_forms, missing_arguments, params_of
    from vaeloss.check.loader import load_module
    from vaeloss.check.model_probe import ModelError, model_callers, model_of
    from vaeloss.check.objects import ObjectError, StateGuard, resolve_object
    from vaeloss.check.probe import Plan, ProbeFailure, function_callers, probe, search

    def fail(message: str, phase: str, skipped: list[Any] | None = None) -> dict[str, Any]:
        return {"ok": False, "error": message, "phase": phase, "skipped": skipped or []}

    sandbox.install([Path(p) for p in request["writable"]])
    path = Path(request["path"])
    started = time.time()
    channel.send({"phase": "import", "time": started})
    try:
        loaded = load_module(
            path, request["module"], tuple(request["search_path"]), exec_module=request["exec_module"]
        )
    except SystemExit as exc:
        return fail(f"importing {path.name} called sys.exit({exc.code!r})", "import")
    except BaseException as exc:  # noqa: BLE001 - with --exec-module, any import failure
        return fail(f"importing {path.name} raised {type(exc).__name__}: {exc}", "import")
    skipped = [s.to_json() for s in loaded.skipped]
    namespace = vars(loaded.module)
    init = _values(request["init"], namespace)
    extra = _values(request["args"], namespace)
    B, D, k = request["B"], request["D"], request["k"]
    shape = tuple(request["input_shape"]) if request["input_shape"] else None
    loaded_in = time.time() - started
    channel.send({"phase": "call", "time": time.time()})
    plan = Plan()
    names_given = {"mu": request.get("mu"), "scale": request.get("scale"), "recon": request.get("recon")}
    candidates: list[tuple[str, Any, list[Any], str]] = []
    problems: list[str] = []
    with sandbox.enforced():
        for name in request["names"]:
            try:
                obj = resolve_object(loaded, name, init)
            except ObjectError as exc:
                problems.append(str(exc) if request["explicit"] else f"{name}: {exc}")
                continue
            params = params_of(obj.function or obj.call, obj.call, set(extra))
            forms = call_forms(params)
            missing = missing_arguments(params)
            if missing and not (not forms and model_of(obj) is not None):
                hint = " ".join(f"--arg {m}=VALUE" for m in missing)
                problems.append(
                    f"Expected values for the required argument(s) {', '.join(missing)} of {name} but got "
                    f"none. Try {hint}."
                )
                continue
            candidates.append((name, obj, forms, obj.described))
        if not candidates:
            return fail("; ".join(problems) or "nothing to check", "resolve", skipped)
        chosen = candidates[0]
        others: list[dict[str, str]] = []
        if not request["explicit"] and len(candidates) > 1:
            for name, obj, forms, _ in candidates:
                try:
                    screen = function_callers(
                        obj,
                        forms,
                        extra,
                        D=D,
                        input_shape=shape,
                        guard=StateGuard(obj.instance),
                        timings=[],
                        watch=channel,
                    )
                    _, reading = search(screen, B=B, k=k, plan=Plan.reduced())
                    summary = _summary(reading)
                except Exception as exc:  # noqa: BLE001 - a candidate that cannot be probed
                    summary = f"cannot be probed ({type(exc).__name__})"
                others.append({"name": name, "summary": summary})
            full = [
                i
                for i, o in enumerate(others)
                if o["summary"].startswith(("a full loss", "the loss's terms"))
            ]
            pick = full[0] if full else 0
            chosen = candidates[pick]
            others = [o for i, o in enumerate(others) if i != pick]
        name, obj, forms, described = chosen
        defaults = _numeric_defaults(obj.call, set(extra))
        weights = {
            n: float(v)
            for n, v in {**defaults, **extra}.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)
        }
        through_model: dict[str, Any] | None = None
        model = model_of(obj) if not forms else None
        try:
            first = time.perf_counter()
            if model is not None:
                callers, taps, sample_shape = model_callers(
                    obj,
                    model,
                    extra,
                    B=B,
                    input_shape=shape,
                    names=names_given,
                    guard=StateGuard(obj.instance),
                    timings=[],
                    watch=channel,
                )
                D, k = math.prod(sample_shape), taps.k
                make = lambda guard, timings: callers  # noqa: E731 - the same callers throughout
                through_model = {
                    "mu": taps.mu,
                    "scale": taps.scale,
                    "recon": taps.recon,
                    "input_shape": list(sample_shape),
                    "log_scales": _log_scales(model),
                }
            else:

                def make(guard: Any, timings: list[float]) -> Any:
                    return function_callers(
                        obj,
                        forms,
                        extra,
                        D=D,
                        input_shape=shape,
                        guard=guard,
                        timings=timings,
                        watch=channel,
                    )

            budget = request["timeout"] - loaded_in
            result = probe(obj, make, weights, B=B, D=D, k=k, plan=plan, budget=budget)
        except ModelError as exc:
            return fail(
                f"Expected a model whose posterior and decoder outputs can be found but {exc}",
                "call",
                skipped,
            )
        except (ProbeFailure, OutputError) as exc:
            return fail(_explain(str(exc), loaded), "call", skipped)
        except SystemExit as exc:
            return fail(f"calling {name} called sys.exit({exc.code!r})", "call", skipped)
        except Exception as exc:  # noqa: BLE001 - the user's code
            return fail(
                _explain(f"calling {name} raised {type(exc).__name__}: {exc}", loaded), "call", skipped
            )
    return {
        "ok": True,
        "name": name,
        "described": described,
        "others": others,
        "probe": result.to_json(),
        "skipped": skipped,
        "init": {k_: _plain(v) for k_, v in init.items()},
        "defaults": {**defaults, **{k_: _plain(v) for k_, v in extra.items()}},
        "seconds": time.perf_counter() - first,
        "sizes": {"B": B, "D": D, "k": k},
        "model": through_model,
    }


def _plain(value: Any) -> Any:
    """A value as JSON can carry it: numbers, text and booleans as they are, else its repr."""
    return value if isinstance(value, (int, float, str, bool)) or value is None else repr(value)


def _log_scales(model: Any) -> dict[str, float]:
    """Learned decoder scales of a model (parameters named like log_scale, log_sigma), by name:
    their mean value (a log standard deviation or log variance, as named)."""
    out = {}
    for pname, p in model.named_parameters():
        last = pname.rsplit(".", 1)[-1].lower()
        if (
            last
            in (
                "log_scale",
                "logscale",
                "log_sigma",
                "logsigma",
                "log_std",
                "log_var_x",
                "logvar_x",
                "x_logvar",
                "x_log_var",
                "log_var",
                "logvar",
            )
            and p.numel() <= 4096
        ):
            out[pname] = float(p.detach().double().mean())
    return out


def _numeric_defaults(call: Any, given: set[str]) -> dict[str, float | int]:
    """The loss's own arguments with numeric defaults (candidates for its KL weight)."""
    import inspect

    try:
        params = inspect.signature(call).parameters.values()
    except (TypeError, ValueError):
        return {}
    return {
        p.name: p.default
        for p in params
        if p.name not in given and isinstance(p.default, (int, float)) and not isinstance(p.default, bool)
    }


def _explain(message: str, loaded: Any) -> str:
    """Add why a name the loss needs is missing (a skipped statement) to an error."""
    missing = re.search(r"NameError: name '(\w+)' is not defined", message)
    if missing:
        why = loaded.explain_name(missing.group(1))
        if why:
            message += f"\n{why}."
    return message


def main() -> None:
    fd = int(sys.argv[1])
    request = json.loads(sys.stdin.read())
    channel = _Channel(fd)
    channel.send({"phase": "start", "time": time.time()})
    import torch  # start-up, before the clock of --timeout starts

    torch.set_num_threads(1)  # a probe's tensors are small: one thread never waits for a core

    try:
        answer = run(request, channel)
    except BaseException as exc:  # noqa: BLE001 - an internal error, reported as such
        answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}", "phase": "internal", "skipped": []}
    if not answer["ok"]:
        answer["error"] = _hint(answer["error"], request)
    channel.send(answer)
    sys.stdout.flush()
    os._exit(0)  # no interpreter shutdown: the user's objects may not finalise cleanly


if __name__ == "__main__":
    main()
