"""The one error hierarchy of vaeloss.

Every error the library raises on purpose derives from :class:`VaelossError`.
Errors about a bad argument also derive from :class:`ValueError`, so callers that
already catch ``ValueError`` keep working. The CLI turns any ``VaelossError`` into
``error: ...`` on stderr and exit status 2.
"""

from __future__ import annotations

__all__ = [
    "VaelossError",
    "InvalidArgumentError",
    "ShapeMismatchError",
    "UnknownConventionError",
    "DataError",
    "LossCheckError",
    "NoLossError",
    "UserCodeError",
    "DeviceError",
    "ReportFolderError",
    "TrainingError",
    "ExecutorError",
    "MissingExtraError",
    "first_line",
    "missing_extra",
]


class VaelossError(Exception):
    """Base class of every error raised by vaeloss on purpose."""


class InvalidArgumentError(VaelossError, ValueError):
    """An argument has a value outside its domain (negative beta, bad reduction...)."""


class ShapeMismatchError(InvalidArgumentError):
    """Tensors that must agree in shape do not."""


class UnknownConventionError(InvalidArgumentError):
    """A convention name that is not among the presets."""


class DataError(VaelossError, ValueError):
    """A data set that cannot be loaded or does not fit the likelihood."""


class UserCodeError(VaelossError):
    """A user's file cannot be read or loaded (missing, not Python, a class that is not there)."""


class LossCheckError(VaelossError):
    """A user's loss cannot be checked (crashes, never returns, returns no loss...)."""


class NoLossError(LossCheckError):
    """The file holds no VAE loss to check (no candidate; only a classifier's or a GAN's):
    in a project-wide check, a file to list, not one that failed."""


class DeviceError(VaelossError, ValueError):
    """A device that was asked for is not available."""


class ReportFolderError(VaelossError, ValueError):
    """A report folder that may not be written (exists, not writable, disk full)."""


class TrainingError(VaelossError):
    """Training cannot produce anything to measure (every model's loss went non-finite)."""


class ExecutorError(VaelossError):
    """Where the audit was asked to run cannot run it (a Ray cluster that cannot be reached)."""


class MissingExtraError(VaelossError, ImportError):
    """An optional framework a feature needs is not installed; the message names the extra."""


def first_line(exc: BaseException, default: str = "") -> str:
    """The first line of ``exc``'s message (``default`` when it has none), for one-line errors.

    >>> first_line(ValueError("bad shape\\nmore detail")), first_line(KeyError(), "KeyError")
    ('bad shape', 'KeyError')
    """
    text = str(exc).strip()
    return text.splitlines()[0] if text else default


def missing_extra(extra: str, module: str, cause: BaseException | None = None) -> MissingExtraError:
    """The error for a feature whose framework ``module`` is missing, naming ``vaeloss[extra]``
    (its message is one line, however long).

    >>> print(missing_extra("ray", "ray"))  # doctest: +NORMALIZE_WHITESPACE
    Expected ray to be installed for this vaeloss feature but it is not.
    Try pip install 'vaeloss[ray]'.
    """
    detail = f" ({cause})" if cause is not None else ""
    return MissingExtraError(
        f"Expected {module} to be installed for this vaeloss feature but it is not{detail}. "
        f"Try pip install 'vaeloss[{extra}]'."
    )
