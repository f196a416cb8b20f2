"""The report and the terminal summary say what a number is, in words when it is not finite."""

import dataclasses
import math

from vaeloss.audit.pipeline import AuditOptions, run_audit
from vaeloss.audit.report import format_summary, render_markdown


def test_numbers_that_are_not_finite_are_said_in_words():
    run = run_audit(AuditOptions(sweep="none", epochs=2, iwae_samples=20, eval_budget=None, progress=False))
    res = run.result
    row = res.current_row
    assert row.metrics is not None
    bad = dataclasses.replace(row.metrics, iwae_nll=math.nan, iwae_se=math.nan, recon=math.inf)
    res.sweep[res.current] = dataclasses.replace(row, metrics=bad)
    text = format_summary(res)
    assert "nan" not in text.replace("not a number (NaN)", "")
    assert "IWAE NLL (nats/sample)               not a number (NaN)" in text
    assert "reconstruction (nats/sample)         infinite" in text
    assert "±" not in [line for line in text.splitlines() if "IWAE" in line][0]
    assert "| IWAE NLL (nats/sample) | not a number (NaN) |" in render_markdown(res, {})
