"""Write an audit report: Markdown, a self-contained HTML page, the JSON and CSV tables, and
the figures, into the folder :mod:`vaeloss.audit.output` prepared; and the terminal summary."""

from __future__ import annotations

import base64
import json
import math
import re
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING

import markdown
import pandas as pd

from vaeloss.audit.output import MARKER, ReportFolder
from vaeloss.audit.recommend import batch_formula
from vaeloss.audit.result import AuditResult, SweepRow
from vaeloss.audit.seeds import BetaSpread, spreads
from vaeloss.audit.stop import StopRequest
from vaeloss.audit.text import format_seconds
from vaeloss.audit.verdict import COLLAPSE_DIVERSITY, TOO_EARLY_RELATIVE, UNREGULARISED_NATS_PER_DIM
from vaeloss.metrics import ACTIVE_THRESHOLD
from vaeloss.threads import single_threaded

if TYPE_CHECKING:
    from vaeloss.audit.pipeline import AuditRun

__all__ = [
    "SWEEP_COLUMNS",
    "default_report_dir",
    "format_summary",
    "render_html",
    "render_markdown",
    "write_report",
]

SWEEP_COLUMNS = [
    "beta_own",
    "beta_elbo",
    "seed",
    "verdict",
    "active_units",
    "kl",
    "recon",
    "ratio_kl_recon",
    "mutual_information",
    "marginal_kl",
    "aggregate_kl",
    "iwae_nll",
    "iwae_se",
    "output_diversity",
    "latent_usage",
    "converged",
    "epochs",
]


def default_report_dir(data: str, loss: str) -> Path:
    """``reports/<data>-<loss>-<time>``, a name that does not exist yet."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in f"{data}-{loss}")
    out = Path("reports") / f"{safe}-{stamp}"
    n = 2
    while out.exists():
        out = Path("reports") / f"{safe}-{n}-{stamp}"
        n += 1
    return out


def _g(v: object) -> str:
    """A number for people: 4 significant digits, ``-`` when not measured, and words for
    values that are not finite.

    >>> _g(0.000123456), _g(None), _g(float("nan")), _g(float("inf"))
    ('0.0001235', '-', 'not a number (NaN)', 'infinite')
    """
    if v is None:
        return "-"
    if isinstance(v, float):
        if math.isnan(v):
            return "not a number (NaN)"
        if math.isinf(v):
            return "infinite" if v > 0 else "minus infinite"
        return f"{v:.4g}"
    return str(v)


def _pm(value: float | None, se: float | None) -> str:
    """``27.01 ± 9.3e-05``; the ± part only when the standard error is a finite number."""
    if se is None or not math.isfinite(se) or value is None or not math.isfinite(value):
        return _g(value)
    return f"{_g(value)} ± {se:.2g}"


def _epochs(res: AuditResult) -> str:
    return f"{res.epochs_run} epoch{'s' if res.epochs_run != 1 else ''} run"


def _training_line(res: AuditResult) -> str:
    """How training went: the convergence rule's outcome for the sweep."""
    s = res.setup
    budget = f"within {s.epochs} epochs and {format_seconds(s.sweep_time_budget)}"
    parts = [f"the setup took {format_seconds(res.timings.setup)}"]
    if s.likelihood == "gaussian":
        parts.append("the calibration of the decoder variance has the rest")
    budget += f" (of the {s.time_budget:g} s budget: {', '.join(parts)})"
    trained = _trained(res)
    n = len(trained)
    bad = res.unconverged
    diverged = sum(r.diverged is not None for r in trained)
    which = "trained in this shard" if res.shard is not None else "that came back"
    elsewhere = "" if n == len(res.sweep) else f" {which} (of the sweep's {len(res.sweep)})"
    line = (
        f"Training: each model until its validation loss stopped improving (plateau rule), {budget}, "
        f"Adam lr {s.lr:g}; {n - len(bad) - diverged} of {n}{elsewhere} converged"
    )
    if diverged:
        line += f", {diverged} diverged"
    if bad:
        line += f". **Not converged, numbers provisional**: {_unconverged(bad)}"
    return line + f" ({format_seconds(res.seconds_training)})."


def _trained(res: AuditResult) -> list[SweepRow]:
    """The models trained and measured (not another shard's, not lost)."""
    return [r for r in res.sweep if r.verdict.name not in ("not measured", "lost")]


def _unconverged(rows: list[SweepRow]) -> str:
    """The unconverged models, grouped by how their training ended: ``all 8 stopped by the
    time limit after 29 epochs (last relative improvement 0.00% to 1.33%)``."""
    groups: dict[tuple[str, int], list[SweepRow]] = {}
    for r in rows:
        if r.status is not None:
            groups.setdefault((r.status.reason, r.status.epochs), []).append(r)
    parts = []
    for (reason, epochs), members in groups.items():
        who = (
            f"all {len(members)}"
            if len(members) == len(rows) and len(rows) > 1
            else "ELBO beta " + ", ".join(_g(r.elbo_beta) for r in members)
        )
        rel = sorted(
            r.status.last_relative for r in members if r.status and r.status.last_relative is not None
        )
        span = "" if not rel else f"{rel[0]:.2%}" if rel[0] == rel[-1] else f"{rel[0]:.2%} to {rel[-1]:.2%}"
        last = f" (last relative improvement {span})" if span else ""
        how = {"interrupted": "interrupted", "fixed epochs": "trained a fixed number of epochs"}.get(
            reason, f"stopped by the {reason}"
        )
        parts.append(f"{who} {how} after {epochs} epochs{last}")
    return "; ".join(parts)


def _setup_lines(res: AuditResult) -> list[str]:
    """Model, decoder output, training and evaluation, one bullet each; then the notes."""
    s = res.setup
    lines = []
    if s.model_described:
        lines.append(f"* Model: called as {s.model_described}.")
    if s.stacking:
        lines.append(f"* Sweep copies run {s.stacking}.")
    if s.decoder_how:
        lines.append(f"* Decoder output: {s.decoder_how}.")
    cost = _cost_line(res)
    if cost:
        lines.append(f"* {cost}")
    lines.append(f"* {_training_line(res)}")
    ev = _evaluation_line(res)
    if ev:
        lines.append(f"* {ev}")
    lines.append(f"* Time: {res.timings.describe()}.")
    lines += [f"* **Note**: {n}" for n in s.notes]
    return lines


def _cost_line(res: AuditResult) -> str:
    """What the sweep was measured to cost before training, and what the budgets held."""
    c = res.cost
    if c is None:
        return ""
    # the cost is measured per group: the first group trained here (all the sweep, locally)
    own = [g for g in res.groups if not g.elsewhere and g.lost is None]
    models = len(own[0].positions) if own else len(res.sweep)
    plural = f"{models} model{'' if models == 1 else 's'}"
    whose = f"the first group's {plural}" if len(own) > 1 else f"the {plural}"
    line = (
        f"Cost, measured before training: one step of {whose} "
        f"{c.step_seconds * 1000:.3g} ms, an epoch about {format_seconds(c.epoch_seconds)}; the "
        f"{c.training_budget:.0f} s for the sweep hold about {c.epochs_in_budget:,.0f} epochs"
    )
    notices = c.notices(models=models)
    return line + ("" if not notices else ". **" + "; ".join(notices) + "**") + "."


def _evaluation_line(res: AuditResult) -> str:
    ev = res.evaluation
    if ev is None:
        return ""
    used = next((r.metrics.iwae_samples for r in res.sweep if r.metrics and r.metrics.iwae_samples), None)
    if ev.iwae_samples == 0:
        line = f"Evaluation: no IWAE bound (the budget held none) on {ev.rows} held-out rows"
    elif used is not None and used < ev.iwae_samples:
        line = (
            f"Evaluation: IWAE bound with K={used} samples (of {ev.iwae_samples} planned: the "
            f"budget ran out) on {ev.rows} held-out rows"
        )
    else:
        line = f"Evaluation: IWAE bound with K={ev.iwae_samples} samples on {ev.rows} held-out rows"
    line += f", reconstruction term from {ev.recon_samples} sample{'s' if ev.recon_samples != 1 else ''}"
    if ev.budget_seconds is not None:
        line += (
            f", chosen to fit a {ev.budget_seconds:g} s budget (one pass of the decoder and "
            f"likelihood over the rows for all models: {ev.decode_seconds * 1000:.3g} ms)"
        )
    return line + f"; ± is its Monte-Carlo standard error. It took {res.seconds_evaluation:.1f} s."


def _partial_note(res: AuditResult) -> str:
    """What an interrupted audit measured: where it was cut short, and the epochs run."""
    by = f" by {res.signal}" if res.signal else ""
    note = f"the audit was interrupted{by} during {res.interrupted_in} after {_epochs(res)}"
    if res.interrupted_in == "training":
        note += "; the models were measured as they were, without the IWAE bound"
    elif res.interrupted_in == "evaluation":
        note += "; metrics not measured by then are shown as '-'"
    elif res.interrupted_in == "figures":
        note += "; some figures are missing"
    return note


def _metric_rows(res: AuditResult) -> list[tuple[str, str]]:
    row = res.current_row
    m = row.metrics
    if m is None:
        why = {"not measured": "another shard trains this model", "lost": "this model was lost"}
        return [("metrics", f"none: {why.get(row.verdict.name, 'this model diverged')}")]
    return [
        ("reconstruction (nats/sample)", _g(m.recon)),
        ("KL (nats/sample)", _g(m.kl)),
        ("KL / reconstruction", _g(row.ratio_kl_recon)),
        ("active units", f"{m.active_units} of {res.setup.latent_dim}"),
        ("mutual information I(x;z) (nats)", _g(m.mutual_information)),
        ("marginal KL = KL - MI (nats)", _g(m.marginal_kl)),
        ("aggregate posterior to prior (nats)", _g(m.aggregate_kl)),
        ("IWAE NLL (nats/sample)", _pm(m.iwae_nll, m.iwae_se)),
        ("output diversity", _g(m.output_diversity)),
    ]


def _no_recommendation(res: AuditResult) -> str:
    if res.shard is not None:
        return (
            f"no recommendation in a shard ({res.shard.describe()} has part of the sweep): "
            f"vaeloss merge recommends from all {res.shard.count} shards"
        )
    if res.partial:
        return "no recommendation: the audit was interrupted before the betas could be compared"
    judged = [r for r in res.sweep if r.verdict.name not in ("too early to tell", "diverged")]
    early = any(r.verdict.name == "too early to tell" for r in res.sweep)
    if not judged or early or res.setup.likelihood == "gaussian":
        return (
            "no recommendation: the models stopped too early to tell; try a larger --time-budget "
            "(or --sweep none, fewer betas)"
        )
    return "no recommendation: no model of the sweep has a held-out likelihood to compare"


def _units_note(res: AuditResult) -> str:
    """`` at your sizes B=128, D=784, k=20 (...)`` when the user's units hold at sizes read from
    their file (which differ from the audit's)."""
    obj = res.objective
    if not obj.user_sizes:
        return ""
    audit = res.setup.sizes
    yours = obj.units_sizes(audit)
    shown = ", ".join(f"{n}={yours[n]}" for n in ("B", "D", "k"))
    differ = [n for n in ("B", "D", "k") if yours[n] != audit[n]]
    at = ", ".join(f"{n}={audit[n]}" for n in ("B", "D", "k"))
    trained = (
        f"; the audit trained at {at} and converts its ELBO beta to your units at yours" if differ else ""
    )
    return f" at your sizes {shown} (read from your file by vaeloss check){trained}"


def _batch_note(res: AuditResult) -> str:
    """``; it holds at B = 64 only ...`` when the recommended weight depends on the batch size."""
    rec = res.recommendation
    if rec is None:
        return ""
    sizes = res.objective.units_sizes(res.setup.sizes)
    formula = batch_formula(res.objective, rec.elbo_beta, sizes)
    if formula is None:
        return ""
    if any(s.name == "B" for s in res.objective.user_sizes):
        return (
            f"; your loss's KL weight depends on the batch size: this one holds at B = {sizes['B']} "
            f"only (your batch size); at another batch size B use {formula}"
        )
    return (
        f"; your loss's KL weight depends on the batch size: this one holds at B = "
        f"{sizes['B']} only (the audit's batch size); at your batch size B use {formula}, "
        f"or audit with -B <your batch size>"
    )


def _recommendation_line(res: AuditResult) -> str:
    rec = res.recommendation
    if rec is None:
        return _no_recommendation(res)
    return (
        f"recommended KL weight: {_g(rec.kl_weight)} in your units "
        f"(ELBO beta {_g(rec.elbo_beta)}){_units_note(res)}; {rec.reason}{_batch_note(res)}"
    )


def _recommendation(res: AuditResult) -> list[str]:
    rec, cp = res.recommendation, res.collapse_points
    if rec is None:
        return [_recommendation_line(res).capitalize() + "."]
    lines = [
        f"Recommended KL weight: **{_g(rec.kl_weight)}** on your own KL term "
        f"(= beta {_g(rec.elbo_beta)} relative to the per-sample ELBO){_units_note(res)}, rule `{rec.rule}`: "
        f"{rec.reason}{_batch_note(res)}.",
    ]
    if cp is not None and cp.kl_weights:
        keep = ", ".join(f"{m + 1} dim{'s' if m else ''}: below {_g(b)}" for m, b in enumerate(cp.kl_weights))
        chk = cp.check
        lines.append(
            f"Per-dim collapse points predicted from beta {_g(cp.reference_beta)} "
            f"(beta_j = beta_0 * exp(2 KL_j)), in your units: to keep {keep}. On the sweep the "
            f"prediction matched the measured active units at {chk.exact} of "
            f"{len(chk.rows)} betas (mean error {chk.mean_abs_error:.2f} dims)."
        )
    return lines


RULES = f"""## How the verdict and the recommendation are made

* **posterior collapse**: no active latent dim (Var_x E[z_j] > {ACTIVE_THRESHOLD:g}, Burda et al. 2016), or
  output diversity < {COLLAPSE_DIVERSITY} (reconstructions of different inputs nearly identical).
* **unregularised latent space**: the aggregate posterior's moment-matched Gaussian is more
  than {UNREGULARISED_NATS_PER_DIM:g} nat per latent dim (KL) from the prior N(0, I), so samples
  from the prior land off the data. The marginal KL = KL - MI (Hoffman & Johnson 2016) is shown
  too; its MI estimate (He et al. 2019) cannot exceed log N, so it overstates large marginal KLs.
* **diverged**: the training loss went non-finite; the model's numbers are not used.
* **too early to tell**: the model did not converge, and trained no more than one window of
  the plateau rule or its loss was still falling fast (its last window brought more than
  {TOO_EARLY_RELATIVE:.0%} of all its improvement); its numbers are shown but not judged.
* otherwise **healthy**.
* Recommendation, Bernoulli-type losses: the sweep's beta with the best held-out IWAE NLL
  among the models that did not collapse and were not stopped too early. Squared-error
  losses: beta equals the decoder variance, so it is calibrated to the maximum-likelihood
  decoder variance of the trained model (sigma-VAE, Rybkin et al. 2021).
* Every beta is given twice: the multiplier on *your* KL term (KL weight), and the beta
  relative to the per-sample negative ELBO (ELBO beta).
"""


def _sweep_cell(row: SweepRow, column: str) -> str:
    m = row.metrics
    special = {
        "beta_own": row.kl_weight,
        "beta_elbo": row.elbo_beta,
        "seed": str(row.seed),
        "verdict": row.verdict.name,
        "ratio_kl_recon": row.ratio_kl_recon,
        "converged": None if row.status is None else ("yes" if row.converged else "no"),
        "epochs": None if row.status is None else row.status.epochs,
    }
    if column in special:
        return _g(special[column])
    return _g(None if m is None else getattr(m, column))


def _mean_spread(b: BetaSpread, name: str, error: str = "std") -> str:
    """``25.1 ± 0.3`` (the standard deviation across seeds, or its standard error)."""
    spread = b.metrics.get(name)
    if spread is None:
        return "-"
    return _pm(spread.mean, spread.std if error == "std" else spread.se)


def _seed_table(res: AuditResult) -> list[str]:
    """Per beta, its metrics across the seeds (``--seeds N``): mean ± standard deviation, the
    IWAE NLL ± the standard error of its mean."""
    if res.setup.seeds < 2:
        return []
    columns = ["beta_own", "beta_elbo", "seeds", "active_units", "kl", "recon", "mutual_information"]
    head = "| " + " | ".join([*columns, "iwae_nll (± se)"]) + " |"
    md = ["", f"## Across seeds ({res.setup.seeds} per beta: mean ± standard deviation)", "", head]
    md.append("|" + "---|" * 8)
    for b in spreads(res.sweep):
        cells = [_g(b.kl_weight), _g(b.elbo_beta), str(len(b.rows))]
        cells += [_mean_spread(b, n) for n in ("active_units", "kl", "recon", "mutual_information")]
        cells.append(_mean_spread(b, "iwae_nll", "se"))
        md.append("| " + " | ".join(cells) + " |")
    return md


def _group_table(res: AuditResult) -> list[str]:
    """Where each group of the sweep ran (``--executor ray``), its seconds, and a lost one's reason."""
    if not res.groups:
        return []
    md = ["", f"## Where it ran ({len(res.groups)} groups)", ""]
    md += ["| group | models | betas (ELBO) | where | training | evaluation |", "|" + "---|" * 6]
    for i, g in enumerate(res.groups):
        betas = ", ".join(dict.fromkeys(_g(res.sweep[p].elbo_beta) for p in g.positions))
        where = g.where if g.lost is None else f"{g.where}: **lost**, {g.lost}"
        seconds = (
            ("-", "-")
            if g.lost
            else (format_seconds(g.seconds_training), format_seconds(g.seconds_evaluation))
        )
        md.append(
            f"| {i} | {', '.join(map(str, g.positions))} | {betas} | {where} | {seconds[0]} | {seconds[1]} |"
        )
    return md


def _lost_line(res: AuditResult) -> list[str]:
    lost = [g for g in res.groups if g.lost is not None]
    if not lost:
        return []
    models = sum(len(g.positions) for g in lost)
    groups = f"{len(lost)} group{'' if len(lost) == 1 else 's'}"
    return [f"lost: {models} of {len(res.sweep)} models ({groups}): {lost[0].lost}"]


def _shard_contents(res: AuditResult) -> str:
    """What a shard trained, and what to do with it (``--shard I/N``)."""
    own = [p for g in res.groups if not g.elsewhere for p in g.positions]
    betas = ", ".join(dict.fromkeys(_g(res.sweep[p].elbo_beta) for p in own))
    return (
        f"trained models {own[0]}-{own[-1]} of {len(res.sweep)} (ELBO beta {betas}); "
        f"when every shard is done: vaeloss merge SHARD_DIR... --out DIR"
    )


def _where_line(res: AuditResult) -> list[str]:
    """Where the sweep ran, when not in this process alone (``--executor ray``, a shard)."""
    if res.shard is not None:
        return [f"{res.shard.describe()}: {_shard_contents(res)}"]
    if not res.groups:
        return []
    places = sorted({g.where.split(" (")[0] for g in res.groups if g.lost is None})
    return [f"ran in {len(res.groups)} groups: {', '.join(places) or 'none came back'} (see the report)"]


def render_markdown(res: AuditResult, figures: dict[str, str]) -> str:
    """The report as Markdown, opening with the verdict."""
    s, obj = res.setup, res.objective
    partial = f"\n**PARTIAL REPORT: {_partial_note(res)}.**\n" if res.partial else ""
    if res.shard is not None:
        partial += f"\n**{res.shard.describe().upper()} OF AN AUDIT: {_shard_contents(res)}.**\n"
    md = [
        f"# vaeloss audit: {res.verdict.name}{' (partial)' if res.partial else ''}",
        partial,
        f"**{res.headline}**",
        "",
        f"Loss: {obj.described} ({s.likelihood}); data `{s.data}` "
        f"(D={s.data_dim}), model `{s.model}`, k={s.latent_dim}, "
        f"B={s.batch_size}, {_epochs(res)}, seed {s.seed}, {s.device}.",
        f"Your KL weight {_g(obj.kl_weight)} = ELBO beta {_g(res.elbo_beta)} "
        f"(effective beta of this loss: `{res.effective_beta_formula}`).",
        "",
        *_setup_lines(res),
        "",
        "| metric | value |",
        "|---|---|",
    ]
    md += [f"| {a} | {b} |" for a, b in _metric_rows(res)]
    md += ["", "## Recommendation", "", *_recommendation(res)]
    md += ["", "## Sweep", "", "| " + " | ".join(SWEEP_COLUMNS) + " |", "|" + "---|" * len(SWEEP_COLUMNS)]
    md += ["| " + " | ".join(_sweep_cell(r, c) for c in SWEEP_COLUMNS) + " |" for r in res.sweep]
    md += _seed_table(res)
    md += _group_table(res)
    md += ["", "## Figures", ""]
    md += [f"![{name}]({file})" for name, file in figures.items()]
    md += ["", RULES]
    return "\n".join(md) + "\n"


_STYLE = (
    "body{font-family:sans-serif;max-width:1000px;margin:auto}"
    "td,th{border:1px solid #ccc;padding:2px 6px}table{border-collapse:collapse}"
    "img{max-width:100%}"
)


def render_html(markdown_text: str, folder: Path) -> str:
    """A self-contained HTML page of the Markdown report, figures inlined as base64."""
    body = markdown.markdown(markdown_text, extensions=["tables"])

    def inline(match: re.Match[str]) -> str:
        data = base64.b64encode((folder / match.group(1)).read_bytes()).decode()
        return f'src="data:image/png;base64,{data}"'

    body = re.sub(r'src="([^"/]+\.png)"', inline, body)
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>vaeloss audit</title>"
        f"<style>{_STYLE}</style></head><body>\n{body}\n</body></html>\n"
    )


def write_report(
    run: AuditRun,
    folder: ReportFolder,
    stop: StopRequest | None = None,
    *,
    borrowed: dict[str, Path] | None = None,
) -> Path:
    """Write report.md, report.html, metrics.json, history.csv, sweep.csv and figures into
    ``folder``'s temporary folder, then rename it into place (see :mod:`vaeloss.audit.output`).
    ``stop`` cuts the figures short (the rest is always written: it is quick). ``borrowed``
    ({name: file}) are figures drawn elsewhere, copied in (a merge's, from the shard that
    trained the audited model)."""
    from vaeloss.audit.figures import draw_all

    tmp = folder.tmp
    res = run.result
    res.report_dir = str(folder.target)
    started = time.perf_counter()
    with single_threaded():
        figures = draw_all(run, tmp, stop)
    for name, path in (borrowed or {}).items():
        if name not in figures:
            shutil.copyfile(path, tmp / path.name)
            figures[name] = path.name
    res.timings.figures = time.perf_counter() - started  # the files below take milliseconds
    (tmp / "metrics.json").write_text(json.dumps(res.to_json(), indent=2, allow_nan=False))
    run.history.to_csv(tmp / "history.csv", index=False)
    rows = [row.to_json() for row in res.sweep]
    pd.DataFrame([{c: r[c] for c in SWEEP_COLUMNS} for r in rows]).to_csv(tmp / "sweep.csv", index=False)
    text = render_markdown(res, figures)
    (tmp / "report.md").write_text(text)
    (tmp / "report.html").write_text(render_html(text, tmp))
    files = sorted(p.name for p in tmp.iterdir() if p.name != MARKER)
    return folder.commit(files)


def _seed_lines(res: AuditResult) -> list[str]:
    """At the current beta, across its seeds (``--seeds N``)."""
    if res.setup.seeds < 2:
        return []
    here = next(b for b in spreads(res.sweep) if res.current in b.rows)
    return [
        f"  across {len(here.rows)} seeds at this beta: active units {_mean_spread(here, 'active_units')}, "
        f"KL {_mean_spread(here, 'kl')}, IWAE NLL {_mean_spread(here, 'iwae_nll', 'se')} (± se)"
    ]


def format_summary(res: AuditResult) -> str:
    """The terminal output: the verdict in one line, then a short table and the recommendation."""
    obj = res.objective
    lines = [("PARTIAL (interrupted) " if res.partial else "") + res.headline, ""]
    if res.partial:
        lines.insert(1, f"  ({_partial_note(res)})")
    lines.append(
        f"  loss: {obj.described}; your KL weight {_g(obj.kl_weight)} = "
        f"ELBO beta {_g(res.elbo_beta)} ({res.effective_beta_formula})"
    )
    rows = _metric_rows(res)
    width = max(len(a) for a, _ in rows)
    lines += [f"  {a:<{width}}  {b}" for a, b in rows]
    lines += _seed_lines(res)
    lines += ["", _recommendation_line(res)]
    lines += [f"note: {n}" for n in res.setup.notes]
    lines += _where_line(res) + _lost_line(res)
    if res.unconverged:
        lines.append(
            f"not converged: {len(res.unconverged)} of {len(_trained(res))} models (see the report); "
            f"try a larger --time-budget or --epochs"
        )
    lines.append(f"time: {res.timings.describe()}")
    if res.report_dir:
        lines.append(f"report: {res.report_dir}/report.md")
    if res.tensorboard_dir:
        root = Path(res.tensorboard_dir).parent
        lines.append(f"tensorboard: a run per model in {res.tensorboard_dir} (tensorboard --logdir {root})")
    return "\n".join(lines)
