"""`vaeloss audit` interrupted by SIGINT or SIGTERM in each phase: a valid partial report of
what was measured, marked with the phase and the epochs run, and exit 130 / 143."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

import vaeloss.engine.evaluate as evaluate
import vaeloss.engine.history as engine_history
from vaeloss.audit import figures
from vaeloss.cli import main

ARGS = ["--sweep", "0.1,1", "--epochs", "15", "--iwae-samples", "50", "--json"]


def _strict_json(text):
    """json.loads that refuses NaN and Infinity, as most JSON parsers do."""

    def refuse(name):
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


def _send_on_call(monkeypatch, module, name, sig, *, call=1, times=1):
    """Make ``module.name`` send ``sig`` to this process on its ``call``-th call."""
    real = getattr(module, name)
    calls = {"n": 0}

    def wrapper(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == call:
            for _ in range(times):
                os.kill(os.getpid(), sig)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapper)
    return calls


def _run(tmp_path, capsys, *extra):
    out = tmp_path / "report"
    code = main(["audit", "--out", str(out), *ARGS, *extra])
    captured = capsys.readouterr()
    return code, captured, out


def test_sigint_in_training_keeps_a_partial_report(tmp_path, capsys, monkeypatch):
    _send_on_call(monkeypatch, engine_history, "epoch_rows", signal.SIGINT, call=2)
    code, captured, out = _run(tmp_path, capsys)
    assert code == 130
    assert f"interrupted by SIGINT: partial report in {out}" in captured.err
    res = _strict_json(captured.out)
    assert res["partial"] is True
    assert res["interrupted"] == {"phase": "training", "signal": "SIGINT"}
    assert res["epochs_run"] == 2 and res["epochs"] == 15
    assert res["iwae_nll"] is None  # the IWAE bound is left out after an interrupted training
    assert res["kl"] is not None and res["active_units"] is not None
    saved = _strict_json((out / "metrics.json").read_text())
    assert saved["partial"] is True and saved["epochs_run"] == 2
    report = (out / "report.md").read_text()
    assert "PARTIAL REPORT: the audit was interrupted by SIGINT during training after 2 epochs run" in report
    history = (out / "history.csv").read_text().splitlines()
    assert len(history) == 1 + 2 * 2  # header + 2 epochs x 2 models
    assert (out / "latent.png").exists()


def test_sigint_in_evaluation_keeps_what_was_measured(tmp_path, capsys, monkeypatch):
    _send_on_call(monkeypatch, evaluate, "_iwae_chunked", signal.SIGINT)
    code, captured, out = _run(tmp_path, capsys)
    assert code == 130
    res = _strict_json(captured.out)
    assert res["interrupted"] == {"phase": "evaluation", "signal": "SIGINT"}
    assert res["epochs_run"] == 15
    assert res["iwae_nll"] is None and all(r["iwae_nll"] is None for r in res["sweep"])
    assert res["recon"] is not None and res["output_diversity"] is not None
    assert res["recommended_beta"] is None  # nothing to compare the betas by
    assert "metrics not measured by then are shown as '-'" in (out / "report.md").read_text()


def test_sigterm_in_figures_leaves_out_the_rest(tmp_path, capsys, monkeypatch):
    _send_on_call(monkeypatch, figures, "curves", signal.SIGTERM)
    code, captured, out = _run(tmp_path, capsys)
    assert code == 143
    res = _strict_json((out / "metrics.json").read_text())
    assert res["interrupted"] == {"phase": "figures", "signal": "SIGTERM"}
    assert res["iwae_nll"] is not None  # everything but the figures was measured
    files = {p.name for p in out.iterdir()}
    assert "curves.png" in files and "latent.png" not in files
    assert {"report.md", "report.html", "history.csv", "sweep.csv"} <= files


def test_second_signal_stops_at_once_without_a_report(tmp_path, capsys, monkeypatch):
    _send_on_call(monkeypatch, engine_history, "epoch_rows", signal.SIGINT, call=2, times=2)
    code, captured, out = _run(tmp_path, capsys)
    assert code == 130
    assert "interrupted twice: stopped at once, no report written" in captured.err
    assert list(tmp_path.iterdir()) == []  # no report and no temporary folder


def test_sigterm_from_outside_during_training(tmp_path):
    """A real SIGTERM to a running `vaeloss audit` process."""
    out = tmp_path / "report"
    proc = subprocess.Popen(
        [sys.executable, "-m", "vaeloss", "audit", "--out", str(out), "--epochs", "400", "--sweep", "none"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".report.tmp-*")):  # created just before training starts
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.1)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 143, stderr
    assert "Traceback" not in stderr
    assert stdout.startswith("PARTIAL (interrupted) ")
    res = _strict_json((out / "metrics.json").read_text())
    assert res["interrupted"] == {"phase": "training", "signal": "SIGTERM"}
    assert res["epochs_run"] < 400
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_handlers_are_restored_afterwards(tmp_path, capsys, sig):
    before = signal.getsignal(sig)
    main(["audit", "--out", str(tmp_path / "r"), "--epochs", "1", "--sweep", "none", "--iwae-samples", "10"])
    assert signal.getsignal(sig) is before
