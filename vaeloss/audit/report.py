"""Write an audit report atomically: everything goes into a temporary folder beside the
target, which is renamed into place at the end. An interrupted audit writes one marked
partial."""

from __future__ import annotations

import base64
import html
import json
import math
import time
from pathlib import Path
from typing import Any

import pandas as pd

from vaeloss.audit.output import MARKER, ReportFolder
from vaeloss.audit.verdict import COLLAPSE_DIVERSITY, UNREGULARISED_NATS_PER_DIM

__all__ = ["default_report_dir", "format_summary", "write_report"]

SWEEP_COLUMNS = [
    "beta_own",
    "beta_elbo",
    "verdict",
    "active_units",
    "kl",
    "recon",
    "ratio_kl_recon",
    "mutual_information",
    "marginal_kl",
    "aggregate_kl",
    "iwae_nll",
    "output_diversity",
    "latent_usage",
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


def _g(v: Any) -> str:
    if isinstance(v, float):
        if math.isinf(v) or math.isnan(v):
            return str(v)
        return f"{v:.4g}"
    return str(v)


def _rows(res: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        ("reconstruction (nats/sample)", _g(res["recon"])),
        ("KL (nats/sample)", _g(res["kl"])),
        ("KL / reconstruction", _g(res["ratio_kl_recon"])),
        ("active units", f"{res['active_units']} of {res['latent_dim']}"),
        ("mutual information I(x;z) (nats)", _g(res["mutual_information"])),
        ("marginal KL = KL - MI (nats)", _g(res["marginal_kl"])),
        ("aggregate posterior to prior (nats)", _g(res["aggregate_kl"])),
        ("IWAE NLL (nats/sample)", _g(res["iwae_nll"])),
        ("output diversity", _g(res["output_diversity"])),
    ]


def _recommendation(res: dict[str, Any]) -> list[str]:
    rec = res["recommended_beta"]
    cp = res["collapse_points"]
    lines = [
        f"Recommended KL weight: **{_g(rec['own_units'])}** on your own KL term "
        f"(= beta {_g(rec['elbo'])} relative to the per-sample ELBO), rule `{rec['rule']}`: "
        f"{rec['reason']}.",
    ]
    if cp["own_units"]:
        keep = ", ".join(
            f"{m + 1} dim{'s' if m else ''}: below {_g(b)}" for m, b in enumerate(cp["own_units"])
        )
        chk = cp["check"]
        lines.append(
            f"Per-dim collapse points predicted from beta {_g(cp['reference_beta'])} "
            f"(beta_j = beta_0 * exp(2 KL_j)), in your units: to keep {keep}. On the sweep the "
            f"prediction matched the measured active units at {chk['exact']} of "
            f"{len(chk['rows'])} betas (mean error {chk['mean_abs_error']:.2f} dims)."
        )
    return lines


RULES = f"""## How the verdict and the recommendation are made

* **posterior collapse**: no active latent dim (Var_x E[z_j] > 0.01, Burda et al. 2016), or
  output diversity < {COLLAPSE_DIVERSITY} (reconstructions of different inputs nearly identical).
* **unregularised latent space**: the aggregate posterior's moment-matched Gaussian is more
  than {UNREGULARISED_NATS_PER_DIM:g} nat per latent dim (KL) from the prior N(0, I), so samples
  from the prior land off the data. The marginal KL = KL - MI (Hoffman & Johnson 2016) is shown
  too; its MI estimate (He et al. 2019) cannot exceed log N, so it overstates large marginal KLs.
* otherwise **healthy**.
* Recommendation, Bernoulli-type losses: the sweep's beta with the best held-out IWAE NLL.
  Squared-error losses: beta equals the decoder variance, so it is calibrated to the
  maximum-likelihood decoder variance of the trained model (sigma-VAE, Rybkin et al. 2021).
* Every beta is given twice: the multiplier on *your* KL term, and the beta relative to the
  per-sample negative ELBO.
"""


def _markdown(res: dict[str, Any], figures: dict[str, str]) -> str:
    partial = (
        "\n**PARTIAL REPORT: the audit was interrupted; numbers are from the models as they were.**\n"
        if res["partial"]
        else ""
    )
    md = [
        f"# vaeloss audit: {res['verdict']}",
        partial,
        f"**{res['headline']}**",
        "",
        f"Loss: {res['described']} ({res['likelihood']}); data `{res['data']}` "
        f"(D={res['data_dim']}), model `{res['model']}`, k={res['latent_dim']}, "
        f"B={res['batch_size']}, {res['epochs']} epochs, seed {res['seed']}, {res['device']}.",
        f"Your KL weight {_g(res['beta_own'])} = ELBO beta {_g(res['effective_beta'])} "
        f"(effective beta of this loss: `{res['effective_beta_formula']}`).",
        "",
        "| metric | value |",
        "|---|---|",
    ]
    md += [f"| {a} | {b} |" for a, b in _rows(res)]
    md += ["", "## Recommendation", ""] + _recommendation(res)
    md += ["", "## Sweep", "", "| " + " | ".join(SWEEP_COLUMNS) + " |", "|" + "---|" * len(SWEEP_COLUMNS)]
    for r in res["sweep"]:
        md.append("| " + " | ".join(_g(r[c]) for c in SWEEP_COLUMNS) + " |")
    md += ["", "## Figures", ""]
    md += [f"![{name}]({file})" for name, file in figures.items()]
    md += ["", RULES]
    return "\n".join(md) + "\n"


def _html(markdown_text: str, out: Path, figures: dict[str, str]) -> str:
    """A self-contained HTML page of the markdown report (figures inlined as base64)."""
    body: list[str] = []
    in_table = False
    for line in markdown_text.splitlines():
        is_row = line.startswith("|")
        if in_table and not is_row:
            body.append("</table>")
            in_table = False
        if is_row:
            if "---" in line:
                continue
            if not in_table:
                body.append("<table>")
                in_table = True
            cells = "".join(f"<td>{html.escape(c.strip())}</td>" for c in line.strip("|").split("|"))
            body.append(f"<tr>{cells}</tr>")
        elif line.startswith("!["):
            file = line[line.index("(") + 1 : -1]
            data = base64.b64encode((out / file).read_bytes()).decode()
            body.append(f'<p><img alt="{html.escape(file)}" src="data:image/png;base64,{data}"></p>')
        elif line.startswith("# "):
            body.append(f"<h1>{html.escape(line[2:])}</h1>")
        elif line.startswith("## "):
            body.append(f"<h2>{html.escape(line[3:])}</h2>")
        elif line.startswith("* "):
            body.append(f"<li>{html.escape(line[2:])}</li>")
        elif line.strip():
            body.append(f"<p>{html.escape(line).replace('**', '')}</p>")
    if in_table:
        body.append("</table>")
    style = (
        "body{font-family:sans-serif;max-width:1000px;margin:auto}"
        "td{border:1px solid #ccc;padding:2px 6px}table{border-collapse:collapse}"
        "img{max-width:100%}"
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>vaeloss audit</title>"
        f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def write_report(run: Any, folder: ReportFolder) -> Path:
    """Write report.md, report.html, metrics.json, history.csv, sweep.csv and figures into
    ``folder``'s temporary folder, then rename it into place (see :mod:`vaeloss.audit.output`)."""
    from vaeloss.audit.figures import draw_all

    tmp = folder.tmp
    res = run.result
    res["report_dir"] = str(folder.target)
    figures = draw_all(run, tmp)
    (tmp / "metrics.json").write_text(json.dumps(res, indent=2, default=str))
    run.history.to_csv(tmp / "history.csv", index=False)
    pd.DataFrame([{c: r[c] for c in SWEEP_COLUMNS} for r in res["sweep"]]).to_csv(
        tmp / "sweep.csv", index=False
    )
    text = _markdown(res, figures)
    (tmp / "report.md").write_text(text)
    (tmp / "report.html").write_text(_html(text, tmp, figures))
    files = sorted(p.name for p in tmp.iterdir() if p.name != MARKER)
    return folder.commit(files)


def format_summary(res: dict[str, Any]) -> str:
    """The terminal output: the verdict in one line, then a short table and the recommendation."""
    lines = [("PARTIAL (interrupted) " if res["partial"] else "") + res["headline"], ""]
    lines.append(
        f"  loss: {res['described']}; your KL weight {_g(res['beta_own'])} = "
        f"ELBO beta {_g(res['effective_beta'])} ({res['effective_beta_formula']})"
    )
    width = max(len(a) for a, _ in _rows(res))
    lines += [f"  {a:<{width}}  {b}" for a, b in _rows(res)]
    rec = res["recommended_beta"]
    lines += [
        "",
        f"recommended KL weight: {_g(rec['own_units'])} in your units "
        f"(ELBO beta {_g(rec['elbo'])}); {rec['reason']}",
    ]
    if res["report_dir"]:
        lines.append(f"report: {res['report_dir']}/report.md")
    return "\n".join(lines)
