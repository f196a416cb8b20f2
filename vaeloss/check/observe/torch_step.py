"""Run a PyTorch file as its user runs it, up to its first differentiation of a scalar, and
read what that step computed (runs in the check's worker process, in the sandbox).

The file runs as ``__main__`` (its main guard too) with its argparse defaults, its data sets
and devices replaced (:mod:`vaeloss.check.observe.substitutes`), and stops at the first
``Tensor.backward()``, ``torch.autograd.backward`` or ``torch.autograd.grad``. By then:

* the batches a ``DataLoader`` gave and every outermost call of a module with parameters (a
  global forward hook) have been seen: the last batch (else the first model input of more
  than one sample) gives B (its first dim) and D (the product of the others);
* the arguments of the loss function (below), else the tensors of the frame that differentiates,
  give k: the most common width ``m`` of the 2-D ``[B, m]`` ones with ``m != D``;
* every function of the user's file that returned since the first model call has been seen (a
  profile hook): the innermost one whose return value is the differentiated tensor (or holds it:
  a tuple, a dict, an object's ``.loss``) is the loss function, when the model's outputs are
  among its arguments.

>>> qualified("main.<locals>.loss_fn"), qualified("VAE.loss_function"), qualified("<lambda>")
('main.loss_fn', 'VAE.loss_function', None)
"""

from __future__ import annotations

import linecache
import math
import os
import sys
import time
import traceback
import types
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vaeloss.check.observe.result import Observation, ObservedSize
from vaeloss.check.observe.substitutes import (
    Replacements,
    cpu_only,
    loader_in_process,
    logger_stand_ins,
    notebook_shims,
    pretend_writes,
    torchvision_datasets,
)

__all__ = ["Live", "qualified", "run_torch_step"]

_KEEP = 256
"""Returns of the user's functions kept (the latest), to find the one that returned the loss;
and model calls kept (the first)."""


@dataclass(frozen=True)
class Live:
    """The loss the run's step called, as the run left it (in this process): the function, and
    the object it is a method of (its state as the user's code set it: ``self.beta`` from the
    config), or the closure with its cells (``args`` of ``main(args)``)."""

    function: Callable[..., Any]
    instance: object | None


def _function_of(code: types.CodeType) -> Callable[..., Any] | None:
    """The function object whose code ``code`` is (a closure: the one the run made)."""
    import gc

    found = [f for f in gc.get_referrers(code) if isinstance(f, types.FunctionType) and f.__code__ is code]
    return found[-1] if found else None


def _live(r: _Return) -> Live | None:
    function = _function_of(r.code)
    if function is None:
        return None
    names = r.code.co_varnames[: r.code.co_argcount]
    instance = r.arguments.get(names[0]) if names and names[0] == "self" else None
    return Live(function, instance)


class _Stopped(BaseException):
    """Raised at the first differentiation (a BaseException: a user's ``except Exception`` does
    not swallow it)."""

    def __init__(self, loss: Any, how: str, step: dict[str, Any]) -> None:
        super().__init__(how)
        self.loss, self.how, self.step = loss, how, step


@dataclass
class _Call:
    """One outermost call of a module with parameters (a model, not a loss module): its class
    name, inputs and outputs, and the line of the user's file it was called from."""

    module: str
    inputs: tuple[Any, ...]
    output: Any
    line: str | None


@dataclass
class _Return:
    """One return of a function of the user's file: its qualified name, the arguments it was
    called with and what it returned."""

    name: str
    file: str
    arguments: dict[str, Any]
    value: Any
    code: types.CodeType


@dataclass
class _Project:
    """The user's files: the checked one and the Python files of its folder (``trainer.py`` it
    imports), not installed packages (a virtual environment inside the folder included)."""

    main: str
    where_main: Callable[[int], str]
    owned: dict[str, bool] = field(default_factory=dict)

    def owns(self, filename: str) -> bool:
        known = self.owned.get(filename)
        if known is None:
            folder = os.path.dirname(self.main) + os.sep
            installed = ("site-packages", "dist-packages")
            known = filename == self.main or (
                filename.startswith(folder)
                and filename.endswith(".py")
                and not any(part in installed for part in filename.split(os.sep))
                and not filename.startswith((sys.prefix + os.sep, sys.base_prefix + os.sep))
            )
            self.owned[filename] = known
        return known

    def where(self, filename: str, line: int) -> str:
        """Where a line is for people: "line 12", "cell 3, line 4", "trainer.py, line 40"."""
        if filename == self.main:
            return self.where_main(line)
        return f"{os.path.relpath(filename, os.path.dirname(self.main))}, line {line}"


@dataclass
class _Tape:
    """What the run has seen."""

    project: _Project
    calls: list[_Call] = field(default_factory=list)
    returns: list[_Return] = field(default_factory=list)
    depth: int = 0
    started: dict[int, dict[str, Any]] = field(default_factory=dict)
    profiling: bool = False
    batch: Any = None

    def profile(self, frame: types.FrameType, event: str, arg: Any) -> None:
        if not self.project.owns(frame.f_code.co_filename):
            return
        if event == "call":
            code = frame.f_code
            names = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
            self.started[id(frame)] = {n: frame.f_locals.get(n) for n in names}
        elif event == "return":
            arguments = self.started.pop(id(frame), None)
            if arguments is None:  # called before the profile started: its locals now
                code = frame.f_code
                names = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
                arguments = {n: frame.f_locals.get(n) for n in names}
            if arg is not None:
                self.returns.append(
                    _Return(frame.f_code.co_qualname, frame.f_code.co_filename, arguments, arg, frame.f_code)
                )
                del self.returns[:-_KEEP]


def _tensors(value: Any, depth: int = 0) -> list[Any]:
    """The tensors in a value: itself, the items of a tuple, list or dict, an object's fields."""
    import torch

    if isinstance(value, torch.Tensor):
        return [value]
    if depth > 2:
        return []
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _tensors(v, depth + 1)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _tensors(v, depth + 1)]
    fields = getattr(value, "__dict__", None)
    if isinstance(fields, dict) and not isinstance(value, (type, types.ModuleType)):
        return [t for v in fields.values() for t in _tensors(v, depth + 1)]
    return []


def _holds(value: Any, loss: Any) -> bool:
    return any(t is loss for t in _tensors(value))


def qualified(qualname: str) -> str | None:
    """The name ``vaeloss check FILE:NAME`` takes for a function's ``__qualname__`` (a function
    nested in a top-level function as ``outer.inner``), or None (a lambda, deeper nesting)."""
    parts = qualname.split(".")
    if any(p.startswith("<") and p != "<locals>" for p in parts):
        return None
    if parts.count("<locals>") > 1 or (parts.count("<locals>") == 1 and parts.index("<locals>") != 1):
        return None
    return ".".join(p for p in parts if p != "<locals>")


def _user_frame(project: _Project) -> types.FrameType | None:
    """The innermost frame of the user's files the current call came from."""
    frame: types.FrameType | None = sys._getframe(2)
    while frame is not None:
        if project.owns(frame.f_code.co_filename):
            return frame
        frame = frame.f_back
    return None


def _user_line(project: _Project) -> str | None:
    frame = _user_frame(project)
    return None if frame is None else project.where(frame.f_code.co_filename, frame.f_lineno)


def _shape(t: Any) -> str:
    return "[" + ", ".join(str(n) for n in t.shape) + "]"


def _widths(tensors: list[Any], B: int, D: int) -> Counter[int]:
    return Counter(
        int(t.shape[1])
        for t in tensors
        if t.dim() == 2 and int(t.shape[0]) == B and int(t.shape[1]) != D and t.is_floating_point()
    )


def _batch(tape: _Tape) -> tuple[Any, str] | None:
    """The batch of the step and where it came from: the last one a ``DataLoader`` gave, else
    the input of the first model call (a module with parameters, given more than one sample)."""
    if tape.batch is not None:
        floats = [t for t in _tensors(tape.batch) if t.dim() >= 2 and t.is_floating_point()]
        if floats:
            return floats[0], "the batch your DataLoader gave"
    for call in tape.calls:
        inputs = [t for t in _tensors(call.inputs) if t.dim() >= 2 and t.is_floating_point()]
        if inputs and int(inputs[0].shape[0]) > 1:
            where = f" at {call.line}" if call.line is not None else ""
            return inputs[0], f"the batch {call.module} was given{where}"
    return None


def _sizes(tape: _Tape, loss_args: list[Any], step: dict[str, Any]) -> tuple[ObservedSize, ...]:
    """B and D from the step's batch, k from the widest agreement of the loss's 2-D arguments
    ``[B, m]`` with ``m != D`` (else of the differentiating frame's tensors)."""
    found = _batch(tape)
    if found is None:
        return ()
    x, origin = found
    B, D = int(x.shape[0]), math.prod(int(n) for n in x.shape[1:])
    sizes = [
        ObservedSize("B", B, f"{origin}: {_shape(x)}"),
        ObservedSize(
            "D", D, f"the size of each sample of that batch: {'x'.join(str(n) for n in x.shape[1:])}"
        ),
    ]
    named = {n: t for n, t in step.items() if hasattr(t, "shape")}
    for source, what in ((loss_args, "the loss's arguments"), (list(named.values()), "the step's tensors")):
        widths = _widths(source, B, D)
        if widths:
            k, n = max(widths.items(), key=lambda item: (item[1], -item[0]))
            if what == "the step's tensors":
                names = [name for name, t in named.items() if t.dim() == 2 and tuple(t.shape) == (B, k)]
                what = "the step's " + ", ".join(names)
            sizes.append(ObservedSize("k", k, f"the latent's: {n} of {what} are [{B}, {k}]"))
            break
    return tuple(sizes)


def _failure(exc: BaseException, project: _Project) -> str:
    """The statement of the user's files that raised, and the error."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if project.owns(f.filename)]
    error = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
    if not frames:
        return f"it raised {error}"
    last = frames[-1]
    line = (last.line or linecache.getline(last.filename, last.lineno or 0)).strip()
    return f"{project.where(last.filename, last.lineno or 0)} (`{line}`) raised {error}"


def _run_file(path: Path, package: str, source: str) -> None:
    """Execute the file's text as ``__main__``."""
    module = types.ModuleType("__main__")
    module.__file__ = str(path)
    module.__package__ = package or None
    lines = source.splitlines(keepends=True)
    linecache.cache[str(path)] = (len(source), None, lines, str(path))  # a notebook's Python text
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = module
    try:
        exec(compile(source, str(path), "exec"), module.__dict__)
    finally:
        if main is not None:
            sys.modules["__main__"] = main


@contextmanager
def _watched(tape: _Tape) -> Iterator[None]:
    """The run's hooks, removed afterwards: outermost model calls (a global forward hook; the
    profile of the user's functions starts at the first), the batches ``DataLoader`` gives, and
    the first differentiation, which raises :class:`_Stopped` with the loss and the frame's
    tensors."""
    import torch
    from torch.nn.modules.module import register_module_forward_hook, register_module_forward_pre_hook
    from torch.utils.data.dataloader import _BaseDataLoaderIter

    project = tape.project

    def pre(module: Any, inputs: Any) -> None:
        tape.depth += 1
        if not tape.profiling:
            tape.profiling = True
            sys.setprofile(tape.profile)

    def post(module: Any, inputs: Any, output: Any) -> None:
        tape.depth -= 1
        if tape.depth == 0 and next(module.parameters(), None) is not None and len(tape.calls) < _KEEP:
            tape.calls.append(_Call(type(module).__name__, inputs, output, _user_line(project)))

    def stop(how: str) -> Any:
        def differentiate(first: Any, *args: Any, **kwargs: Any) -> Any:
            loss = first[0] if isinstance(first, (tuple, list)) and first else first
            frame = _user_frame(project)
            if frame is None:
                raise _Stopped(loss, how, {})
            step = {n: v for n, v in frame.f_locals.items() if isinstance(v, torch.Tensor)}
            file = frame.f_code.co_filename
            code = linecache.getline(file, frame.f_lineno).strip() or how
            raise _Stopped(loss, f"`{code}` at {project.where(file, frame.f_lineno)}", step)

        return differentiate

    next_batch = _BaseDataLoaderIter.__next__

    def batches(self: Any) -> Any:
        tape.batch = next_batch(self)
        return tape.batch

    handles = [register_module_forward_pre_hook(pre), register_module_forward_hook(post)]
    originals = (torch.Tensor.backward, torch.autograd.backward, torch.autograd.grad)
    _BaseDataLoaderIter.__next__ = batches  # type: ignore[method-assign]
    torch.Tensor.backward = stop("loss.backward()")  # type: ignore[method-assign]
    torch.autograd.backward = stop("torch.autograd.backward")
    torch.autograd.grad = stop("torch.autograd.grad")
    try:
        yield
    finally:
        sys.setprofile(None)
        torch.Tensor.backward, torch.autograd.backward, torch.autograd.grad = originals  # type: ignore[method-assign]
        _BaseDataLoaderIter.__next__ = next_batch  # type: ignore[method-assign]
        for h in handles:
            h.remove()


def _execute(
    path: Path,
    package: str,
    source: str,
    timeout: float,
    argv: tuple[str, ...],
    tape: _Tape,
    said: Replacements,
) -> _Stopped | str:
    """Run the file under the substitutes and the hooks: where it stopped, or why it did not."""
    from vaeloss.usercode import sandbox
    from vaeloss.usercode.loader import BudgetExpired, argparse_defaults, time_budget

    saved_argv = sys.argv
    sys.argv = [str(path), *argv]
    try:
        with (
            sandbox.enforced(),
            argparse_defaults(argv),
            torchvision_datasets(said),
            loader_in_process(said),
            pretend_writes(said),
            cpu_only(said),
            notebook_shims(said),
            logger_stand_ins(said),
            _watched(tape),
            time_budget(timeout),
        ):
            _run_file(path, package, source)
        return "it ran to its end without differentiating a loss (no backward() or autograd.grad)"
    except _Stopped as exc:
        return exc
    except SystemExit as exc:
        return f"it called sys.exit({exc.code!r}) before differentiating a loss"
    except BudgetExpired:
        return f"it ran for more than {timeout:g} s without differentiating a loss"
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - the user's code, any error
        return _failure(exc, tape.project)
    finally:
        sys.argv = saved_argv


def _read(
    tape: _Tape, stopped: _Stopped, ran: str, said: Replacements, seconds: float
) -> tuple[Observation, Live | None]:
    """What the step showed: the loss function (the innermost one whose return holds the
    differentiated tensor, given the model's outputs), its numbers, the sizes, the data range."""
    outputs = {id(t) for c in tape.calls for t in _tensors(c.output)}
    function, function_file, loss_args, live, numbers = None, None, [], None, {}
    for r in tape.returns:
        if _holds(r.value, stopped.loss):
            args = _tensors(list(r.arguments.values()))
            if any(id(t) in outputs for t in args):
                function, loss_args, live = r.name, args, _live(r)
                function_file = None if r.file == tape.project.main else r.file
                numbers = {n: v for n, v in r.arguments.items() if isinstance(v, (int, float, bool))}
            break
    batch = _batch(tape)
    observation = Observation(
        ran,
        tuple(said.said),
        stopped_at=stopped.how,
        function=function,
        function_file=function_file,
        sizes=_sizes(tape, loss_args, stopped.step),
        seconds=seconds,
        data_range=None if batch is None else (float(batch[0].min()), float(batch[0].max())),
        arguments=numbers,
    )
    return observation, live


def run_torch_step(
    path: Path,
    package: str,
    source: str,
    timeout: float,
    where: Callable[[int], str] | None = None,
    notebook: bool = False,
    argv: tuple[str, ...] = (),
) -> tuple[Observation, Live | None]:
    """Run the file (its Python ``source``: a notebook's cells in order) up to its first
    differentiation; what it showed. Never raises for the user's code's errors: they are the
    observation's ``failure``. ``where`` says where a line is for people ("cell 3, line 4").
    With it, the loss function as the run left it (:class:`Live`), when one returned the loss."""
    tape = _Tape(_Project(str(path), where or (lambda line: f"line {line}")))
    said = Replacements()
    started = time.perf_counter()
    outcome = _execute(path, package, source, timeout, argv, tape, said)
    seconds = time.perf_counter() - started
    ran = (
        f"{path.name}'s cells in order"
        if notebook
        else f"{path.name} as a script (its main guard too), with "
        + (f"the arguments {' '.join(argv)}" if argv else "its argparse defaults")
    )
    if isinstance(outcome, str):
        return Observation(ran, tuple(said.said), failure=outcome, seconds=seconds), None
    return _read(tape, outcome, ran, said, seconds)
