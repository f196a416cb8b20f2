"""The sweep in shards, for schedulers without Ray (a SLURM job array): ``vaeloss audit
--shard I/N`` trains the I-th of N deterministic parts of the sweep (its betas x seeds, in
order) and writes its report; ``vaeloss merge DIR... --out DIR`` joins the shards' reports
into the report of the whole sweep, as if it had run in one process (same seeds, same
numbers: :mod:`vaeloss.audit.groups`).

A shard's ``metrics.json`` holds what the merge needs: the shard (``index``, ``count``), the
audit's options (so that the merge plans the same audit again, without training), and its
*identity*: a digest of the options, the vaeloss version, and the contents of the loss file,
the model file and the data. Shards of different audits (another loss, data, model or
version) are refused.

>>> options_from_json(options_to_json(AuditOptions(sweep="0.1,1", init=(("k", "4"),)))).init
(('k', '4'),)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from vaeloss._version import __version__
from vaeloss.audit.groups import SweepOutcome
from vaeloss.audit.plan import AuditOptions, AuditPlan, Shard
from vaeloss.audit.result import GroupRecord
from vaeloss.engine.evaluate import ModelMetrics
from vaeloss.engine.states import Divergence, ModelStatus
from vaeloss.errors import ReportFolderError
from vaeloss.jsontypes import JsonObject

__all__ = [
    "SHARD_EXCLUDED_OPTIONS",
    "Shard",
    "ShardReport",
    "audit_identity",
    "options_from_json",
    "options_to_json",
    "read_shards",
    "sweep_from_shards",
]

# options that do not make another audit: progress bars, and which shard of it runs
SHARD_EXCLUDED_OPTIONS = ("progress", "shard")


def options_to_json(opts: AuditOptions) -> JsonObject:
    """The options as JSON (tuples as lists)."""
    return {k: v for k, v in dataclasses.asdict(opts).items() if k not in SHARD_EXCLUDED_OPTIONS}


def options_from_json(data: JsonObject) -> AuditOptions:
    """The options written by :func:`options_to_json` (lists back to tuples)."""
    fields = {f.name for f in dataclasses.fields(AuditOptions)}
    unknown = sorted(set(data) - fields)
    if unknown:
        raise ReportFolderError(
            f"Expected the audit options of this vaeloss version but got unknown options {unknown}. "
            f"Try vaeloss merge with the vaeloss version that wrote the shards."
        )

    def value(v: Any) -> Any:
        if isinstance(v, list):
            return tuple(value(x) for x in v)
        return v

    return AuditOptions(**{k: value(v) for k, v in data.items()})


def _file_digest(spec: str | None) -> str | None:
    if spec is None:
        return None
    from vaeloss.usercode.target import resolve_target

    try:
        path = Path(resolve_target(spec).path)
    except Exception:  # noqa: BLE001 - a module name, not a file: its name is the identity
        return None
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def audit_identity(opts: AuditOptions, plan: AuditPlan) -> str:
    """A digest of what makes two shards parts of one audit: the options, the vaeloss version,
    the loss and model files' contents, and the data (its rows)."""
    data = hashlib.sha256()
    for x in (plan.data.x_train, plan.data.x_val):
        data.update(x.contiguous().numpy().tobytes())
    user_model = opts.model if ":" in opts.model else None
    described = {
        "version": __version__,
        "options": options_to_json(opts),
        "loss_file": _file_digest(opts.loss),
        "model_file": _file_digest(user_model),
        "data": data.hexdigest(),
    }
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class ShardReport:
    """One shard's report folder as the merge reads it."""

    folder: Path
    shard: Shard
    identity: str
    options: AuditOptions
    result: dict[str, Any]  # its metrics.json
    history: pd.DataFrame

    def measured(self) -> list[int]:
        """The positions of the models this shard trained."""
        return [
            int(p) for g in self.result["groups"] if g.get("shard") == self.shard.index for p in g["models"]
        ]


def _strict(text: str) -> Any:
    def refuse(name: str) -> None:
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


def read_shard(folder: Path) -> ShardReport:
    """The shard report in ``folder``; raises :class:`~vaeloss.errors.ReportFolderError` for a
    folder that is not one."""
    path = folder / "metrics.json"
    try:
        data = _strict(path.read_text())
    except OSError:
        raise ReportFolderError(
            f"Expected a shard's report folder (with metrics.json) but got {folder}: no {path.name} there. "
            f"Try the folders that vaeloss audit --shard I/N --out DIR wrote."
        ) from None
    except ValueError as exc:
        raise ReportFolderError(f"Expected strict JSON in {path} but it is not ({exc}).") from None
    if not isinstance(data, dict) or not isinstance(data.get("shard"), dict) or "identity" not in data:
        raise ReportFolderError(
            f"Expected a shard's report (metrics.json with a shard) but {path} is the report of a whole "
            f"audit. Try vaeloss merge on the folders of vaeloss audit --shard I/N."
        )
    history_path = folder / "history.csv"
    history = (
        pd.read_csv(history_path) if history_path.exists() and history_path.stat().st_size else pd.DataFrame()
    )
    shard = Shard(int(data["shard"]["index"]), int(data["shard"]["count"]))
    return ShardReport(
        folder, shard, str(data["identity"]), options_from_json(data["options"]), data, history
    )


def read_shards(folders: list[Path]) -> list[ShardReport]:
    """Every shard of one audit, in order; refuses shards of different audits, a shard given
    twice and a missing shard."""
    shards = sorted((read_shard(f) for f in folders), key=lambda s: s.shard.index)
    first = shards[0]
    for s in shards[1:]:
        if s.identity != first.identity or s.shard.count != first.shard.count:
            raise ReportFolderError(
                f"Expected shards of one audit but {s.folder} ({s.shard.describe()}) and {first.folder} "
                f"({first.shard.describe()}) differ in {_difference(first, s)}. Try vaeloss merge on the "
                f"shards of one audit (the same options, loss, model, data and vaeloss version)."
            )
    seen: dict[int, Path] = {}
    for s in shards:
        if s.shard.index in seen:
            raise ReportFolderError(
                f"Expected each shard once but {s.shard.describe()} is both {seen[s.shard.index]} and "
                f"{s.folder}. "
                f"Try one folder per shard."
            )
        seen[s.shard.index] = s.folder
    missing = [i for i in range(1, first.shard.count + 1) if i not in seen]
    if missing:
        raise ReportFolderError(
            f"Expected all {first.shard.count} shards but got {len(shards)}: shard "
            f"{', '.join(f'{i}/{first.shard.count}' for i in missing)} missing. Try vaeloss merge with "
            f"every shard's folder (or run the missing one with --shard {missing[0]}/{first.shard.count})."
        )
    return shards


def _difference(a: ShardReport, b: ShardReport) -> str:
    """What differs between two shards' audits, in words."""
    if a.shard.count != b.shard.count:
        return f"their number of shards ({a.shard.count} and {b.shard.count})"
    oa, ob = options_to_json(a.options), options_to_json(b.options)
    keys = [k for k in oa if oa[k] != ob.get(k)]
    if keys:
        return "their options: " + ", ".join(f"{k}={oa[k]!r} and {ob.get(k)!r}" for k in keys)
    return "the contents of their loss file, model file or data, or their vaeloss version"


def sweep_from_shards(plan: AuditPlan, shards: list[ShardReport]) -> SweepOutcome:
    """The sweep's outcome as the shards measured it, model by model in the sweep's order (no
    models: the merge has their numbers, not their weights)."""
    n = len(plan.members)
    rows: list[dict[str, Any] | None] = [None] * n
    records: list[GroupRecord] = []
    for s in shards:
        for g in s.result["groups"]:
            if g.get("shard") != s.shard.index or g.get("elsewhere"):
                continue
            for p in g["models"]:
                rows[int(p)] = s.result["sweep"][int(p)]
            records.append(
                GroupRecord(
                    [int(p) for p in g["models"]],
                    f"{s.shard.describe()}: {g['where']} ({s.folder})",
                    float(g["seconds_training"]),
                    float(g["seconds_evaluation"]),
                    g.get("lost"),
                    s.shard.index,
                )
            )
    if any(r is None for r in rows):
        raise ReportFolderError(
            f"Expected every model of the sweep in one shard but models "
            f"{[i for i, r in enumerate(rows) if r is None]} are in none. Try vaeloss merge with every shard."
        )
    measured = [r for r in rows if r is not None]
    seconds = [s.result["seconds"] for s in shards]
    return SweepOutcome(
        model=None,
        history=pd.concat([s.history for s in shards], ignore_index=True),
        stopped=[None if r["stopped"] is None else Divergence(**r["stopped"]) for r in measured],
        status=[None if r["training"] is None else ModelStatus(**r["training"]) for r in measured],
        metrics=[_metrics(r) for r in measured],
        lost=[_lost_reason(r, records) for r in measured],
        elsewhere=[None] * n,
        groups=records,
        cost=None,
        interrupted=any(s.result["partial"] for s in shards),
        steps=max(int(s.result["steps"]) for s in shards),
        epochs_run=max(int(s.result["epochs_run"]) for s in shards),
        seconds_setup=max(float(t["setup"]) for t in seconds),
        seconds_training=max(float(t["training"]) for t in seconds),
        seconds_evaluation=max(float(t["evaluation"]) for t in seconds),
    )


def _metrics(row: dict[str, Any]) -> ModelMetrics | None:
    if row["verdict"] in ("diverged", "lost") or row["kl"] is None:
        return None
    return ModelMetrics(**{name: row[name] for name in ModelMetrics.__dataclass_fields__})


def _lost_reason(row: dict[str, Any], records: list[GroupRecord]) -> str | None:
    if row["verdict"] != "lost":
        return None
    return next((g.lost for g in records if g.lost), "lost in its shard")
