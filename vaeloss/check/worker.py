"""Worker process of ``vaeloss check``: imports the user's file and probes one function.

Run as ``python -m vaeloss.check.worker REQUEST.json RESULT.json``. The user's code runs
here, never in the CLI process; the CLI enforces the time limit and reads RESULT.json.
"""

from __future__ import annotations

import functools
import importlib.util
import inspect
import json
import sys
import traceback
from pathlib import Path
from typing import Any


def _fail(message: str) -> dict[str, Any]:
    return {"ok": False, "error": message}


def run(request: dict[str, Any]) -> dict[str, Any]:
    """Import the file, probe the function, and return ``{"ok": ..., "result"|"error": ...}``."""
    from vaeloss.check.probe import ProbeFailure, probe_function

    path = Path(request["path"]).resolve()
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location("vaeloss_user_loss", path)
    if spec is None or spec.loader is None:
        return _fail(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except SystemExit as exc:
        return _fail(
            f"importing {path.name} called sys.exit({exc.code!r}); "
            "guard script code with `if __name__ == '__main__':`"
        )
    except BaseException as exc:  # noqa: BLE001 - report any import failure
        tb = traceback.format_exc(limit=-2)
        return _fail(f"importing {path.name} raised {type(exc).__name__}: {exc}\n{tb}")
    fn: Any = module
    for part in request["function"].split("."):
        fn = getattr(fn, part)
    if "." in request["function"] and not isinstance(
        inspect.getattr_static(
            getattr(module, request["function"].split(".")[0]), request["function"].split(".")[1]
        ),
        (staticmethod, classmethod),
    ):
        fn = functools.partial(fn, None)  # a method that does not use self: called with self=None
    try:
        result = probe_function(
            fn,
            request["roles"],
            request["extra"],
            request["weights"],
            B=request["B"],
            D=request["D"],
            k=request["k"],
            input_shape=tuple(request["input_shape"]) if request["input_shape"] else None,
        )
    except ProbeFailure as exc:
        return _fail(str(exc))
    except SystemExit as exc:
        return _fail(f"calling {request['function']} called sys.exit({exc.code!r})")
    except BaseException as exc:  # noqa: BLE001
        return _fail(f"calling {request['function']} raised {type(exc).__name__}: {exc}")
    return {"ok": True, "result": result}


if __name__ == "__main__":
    answer = run(json.loads(Path(sys.argv[1]).read_text()))
    Path(sys.argv[2]).write_text(json.dumps(answer))
