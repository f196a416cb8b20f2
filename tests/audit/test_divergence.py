"""Models whose training loss goes non-finite: their own verdict, left out of the
recommendation, null in the JSON; all of them diverged is exit 2."""

import json

import torch

import vaeloss.engine.loss as engine_loss
from vaeloss.cli import main

ARGS = ["--sweep", "0.1,1,10", "--epochs", "40", "--iwae-samples", "50", "--json"]


def _strict_json(text):
    def refuse(name):
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


def _diverge(monkeypatch, model, *, at_step):
    """Model ``model``'s loss becomes infinite from step ``at_step`` on (the real trainer then
    has to notice, freeze it and report where)."""
    real = engine_loss.step_loss
    steps = {"n": 0}

    def loss(recon, kl_dims, betas, w, cfg):
        out = real(recon, kl_dims, betas, w, cfg)
        if steps["n"] >= at_step:
            out = out.clone()
            out[model] = torch.inf
        steps["n"] += 1
        return out

    monkeypatch.setattr(engine_loss, "step_loss", loss)


def test_some_models_diverge(tmp_path, capsys, monkeypatch):
    _diverge(monkeypatch, 2, at_step=30)  # beta 10; digits, batch 64: 22 steps per epoch
    out = tmp_path / "r"
    code = main(["audit", "--out", str(out), *ARGS])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    res = _strict_json(captured.out)
    row = res["sweep"][2]
    assert row["beta_elbo"] == 10 and row["verdict"] == "diverged" and row["collapsed"] is False
    assert row["stopped"] == {"step": 30, "epoch": 2, "term": "reconstruction"}
    for key in ("kl", "recon", "active_units", "iwae_nll", "kl_per_dim", "output_diversity"):
        assert row[key] is None
    assert [r["verdict"] for r in res["sweep"][:2]] != ["diverged", "diverged"]
    assert res["recommended_beta"]["elbo"] != 10
    assert res["verdict"] != "diverged"  # the user's beta (1) trained fine
    _strict_json((out / "metrics.json").read_text())
    assert "| 10 | 10 | 0 | diverged | - |" in (out / "report.md").read_text()  # beta, ELBO beta, seed


def test_the_audited_beta_diverges(tmp_path, capsys, monkeypatch):
    _diverge(monkeypatch, 1, at_step=3)  # beta 1, the user's
    code = main(["audit", "--out", str(tmp_path / "r"), *ARGS])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    res = _strict_json(captured.out)
    assert res["verdict"] == "diverged" and not res["collapsed"]
    assert res["headline"] == (
        "diverged: the training loss went non-finite in the reconstruction term at step 3 "
        "(epoch 1); its metrics are not used"
    )
    assert res["kl"] is None and res["active_units"] is None
    assert res["recommended_beta"]["elbo"] in (0.1, 10)


def test_every_model_diverges_is_exit_2(tmp_path, capsys, monkeypatch):
    import vaeloss.audit.execute as execute

    evaluated = []
    real = execute.evaluate_group
    monkeypatch.setattr(execute, "evaluate_group", lambda *a, **k: evaluated.append(1) or real(*a, **k))
    out = tmp_path / "r"
    code = main(["audit", "--out", str(out), "--lr", "1e6", "--sweep", "0.1,1", "--epochs", "3"])
    err = capsys.readouterr().err
    assert code == 2
    # no evaluation of models that all diverged (its IWAE progress line came before the error)
    assert evaluated == []
    assert err.startswith("error: Expected training to stay finite but the loss of every model")
    assert "Try a lower learning rate such as --lr 100000." in err
    assert list(tmp_path.iterdir()) == []


def test_non_finite_before_any_update_does_not_blame_the_learning_rate(tmp_path, capsys, monkeypatch):
    _diverge(monkeypatch, slice(None), at_step=0)  # every model, at its first loss
    code = main(["audit", "--out", str(tmp_path / "r"), "--sweep", "0.1,1", "--epochs", "3"])
    err = capsys.readouterr().err
    assert code == 2
    assert "at step 0, epoch 1" in err
    assert "It was non-finite before any update, so the learning rate is not the cause" in err
    assert "lower learning rate" not in err
