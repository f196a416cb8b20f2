"""`vaeloss audit --executor ray` on a real local Ray (127.0.0.1, 2 CPUs, started by the tests
and stopped after): the same numbers as the local run, a user's model and its folder carried
to the cluster's workers, a worker killed during training retried, every group lost said so,
Ctrl-C leaving a partial report, a cluster that cannot be reached refused before training."""

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytest.importorskip("ray")
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ray")]  # one Ray at a time on 2 CPUs

QUICK = ["--epochs", "3", "--eval-budget", "1000", "--iwae-samples", "40", "--json"]
RAY = Path(sys.executable).parent / "ray"
# Ray's nodes on 127.0.0.1 only (its single-machine mode), with token authentication (the default
# of `ray start` since Ray 2.59: a driver joining the cluster says so, as the Ray docs tell users)
CLUSTER_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "token"}

MODEL = """
import os, sys, time
import torch
from torch import nn
from blocks import hidden  # a sibling module: the folder must travel with the file

KILL_MARKER = {marker!r}  # the first Ray worker to train dies (once, or always)
ALWAYS = {always!r}
STARTED = {started!r}  # made when a Ray worker first trains (a test waits for it, not for a clock)


class TinyVAE(nn.Module):
    def __init__(self, latent_dim=4, pause=0.0):
        super().__init__()
        self.pause = pause
        self.enc, self.mu, self.lv = hidden(64, 32), nn.Linear(32, latent_dim), nn.Linear(32, latent_dim)
        self.dec = nn.Sequential(hidden(latent_dim, 32), nn.Linear(32, 64))

    def encode(self, x):
        h = self.enc(x)
        return self.mu(h), self.lv(h)

    def decode(self, z):
        in_worker = "default_worker" in sys.argv[0]
        if self.training and in_worker and STARTED and not os.path.exists(STARTED):
            open(STARTED, "w").close()
        if self.training and in_worker and KILL_MARKER and (ALWAYS or not os.path.exists(KILL_MARKER)):
            open(KILL_MARKER, "w").close()
            os._exit(1)
        if self.pause:
            time.sleep(self.pause)
        return self.dec(z)
"""


def _model(
    folder: Path, *, marker: str | None = None, always: bool = False, started: str | None = None
) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "blocks.py").write_text(
        "from torch import nn\n\n\ndef hidden(i, o):\n    return nn.Sequential(nn.Linear(i, o), nn.ReLU())\n"
    )
    (folder / "tiny_vae.py").write_text(MODEL.format(marker=marker, always=always, started=started))
    return f"{folder / 'tiny_vae.py'}:TinyVAE"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _audit(cwd: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vaeloss", "audit", *args],
        cwd=cwd,
        env={**os.environ, **CLUSTER_ENV} if "--ray-address" in args else None,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A Ray head on 127.0.0.1 with 2 CPUs, as `ray start` makes it; stopped after."""
    port = _free_port()
    temp = tmp_path_factory.mktemp("ray")
    start = [str(RAY), "start", "--head", "--port", str(port)]
    start += ["--num-cpus", "2", "--include-dashboard", "false", "--disable-usage-stats"]
    env = {**os.environ, **CLUSTER_ENV}
    subprocess.run(start, check=True, capture_output=True, timeout=120, cwd=temp, env=env)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([str(RAY), "stop"], capture_output=True, timeout=120, env=env)


def _sweep(result: dict) -> list[tuple]:
    return [(r["beta_elbo"], r["seed"], r["active_units"], r["kl"], r["iwae_nll"]) for r in result["sweep"]]


def test_a_ray_audit_equals_the_local_one(tmp_path):
    """3 betas x 2 seeds on a local Ray instance the audit starts (2 groups of 3 models, one
    CPU each) against the same audit in this process: every model's active units equal, KL
    and IWAE NLL equal to float tolerance; the report says where each group ran."""
    args = ["--sweep", "0.3,1,3", "--seeds", "2", *QUICK]
    local = _audit(tmp_path, *args, "--out", "local")
    on_ray = _audit(tmp_path, *args, "--out", "ray", "--executor", "ray")
    assert local.returncode == 0, local.stderr
    assert on_ray.returncode == 0, on_ray.stderr
    expected, actual = json.loads(local.stdout), json.loads(on_ray.stdout)
    assert len(actual["sweep"]) == 6
    for (beta, seed, au, kl, nll), (beta2, seed2, au2, kl2, nll2) in zip(_sweep(actual), _sweep(expected)):
        assert (beta, seed, au) == (beta2, seed2, au2)
        assert kl == pytest.approx(kl2, rel=1e-5, abs=1e-6)
        assert nll == pytest.approx(nll2, rel=1e-5)
    assert expected["groups"] == []
    assert [g["models"] for g in actual["groups"]] == [[0, 1, 2], [3, 4, 5]]
    assert all(g["where"].startswith("Ray worker on ") and "1 CPU" in g["where"] for g in actual["groups"])
    assert "training 6 models in 2 groups on a local Ray instance (2 CPUs), 1 CPU each" in on_ray.stderr
    report = (tmp_path / "ray" / "report.md").read_text()
    assert "## Where it ran (2 groups)" in report
    assert "| 1 | 3, 4, 5 | 1, 3 | Ray worker on " in report


def test_a_user_model_travels_to_the_cluster_and_a_killed_worker_is_retried(tmp_path, cluster):
    """The user's model file and its sibling module, in a folder the cluster's workers do not
    see by its path (they get it as the task's working_dir); the first worker to train dies
    (os._exit) and its task is retried; the numbers equal a local run of the same model."""
    marker = tmp_path / "killed"
    spec = _model(tmp_path / "project", marker=str(marker))
    elsewhere = tmp_path / "run"
    elsewhere.mkdir()
    args = ["--model", spec, "--sweep", "0.5,2", *QUICK]
    on_ray = _audit(elsewhere, *args, "--out", "ray", "--executor", "ray", "--ray-address", cluster)
    assert on_ray.returncode == 0, on_ray.stderr
    assert marker.exists()  # a worker did die during training
    local = _audit(elsewhere, *args, "--out", "local")  # the marker is there: nothing dies now
    assert local.returncode == 0, local.stderr
    actual, expected = json.loads(on_ray.stdout), json.loads(local.stdout)
    assert [g["lost"] for g in actual["groups"]] == [None, None]
    assert f"on the Ray cluster at {cluster} (2 CPUs)" in on_ray.stderr
    for (beta, seed, au, kl, nll), (beta2, seed2, au2, kl2, nll2) in zip(_sweep(actual), _sweep(expected)):
        assert (beta, seed, au) == (beta2, seed2, au2)
        assert kl == pytest.approx(kl2, rel=1e-5, abs=1e-6)
        assert nll == pytest.approx(nll2, rel=1e-5)


def test_a_group_whose_worker_always_dies_is_lost_and_said_so(tmp_path, cluster):
    """Every attempt of every task dies: nothing was measured, exit 2 naming the reason (no
    report folder is left)."""
    spec = _model(tmp_path / "project", marker=str(tmp_path / "killed"), always=True)
    args = ["--model", spec, "--sweep", "0.5,2", *QUICK, "--executor", "ray", "--ray-address", cluster]
    run = _audit(tmp_path, *args, "--out", "ray")
    assert run.returncode == 2, run.stderr
    assert "error: Expected the sweep's groups to come back but every one was lost" in run.stderr
    assert "its worker failed on all 2 attempts" in run.stderr
    assert not (tmp_path / "ray").exists()


def test_ctrl_c_during_a_ray_audit_keeps_a_partial_report(tmp_path):
    """SIGINT while the groups train on Ray: the tasks are told, stop, evaluate what they have
    and return; the partial report is written, exit 130."""
    started = tmp_path / "training"
    spec = _model(tmp_path / "project", started=str(started))
    args = ["--model", spec, "--init", "pause=0.003", "--sweep", "0.5,2", "--epochs", "500"]
    args += ["--time-budget", "200", "--iwae-samples", "40", "--json", "--out", "ray", "--executor", "ray"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "vaeloss", "audit", *args],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if "groups on a local Ray instance" in line:
            break
    waited = time.monotonic()  # a worker trains (after torch's import: slow on a busy machine)
    while not started.exists() and time.monotonic() - waited < 180 and proc.poll() is None:
        time.sleep(0.2)
    assert started.exists(), "".join(seen)
    time.sleep(1)
    began = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, "".join(seen) + err
    assert time.monotonic() - began < 60
    result = json.loads(out)
    assert result["partial"] is True and result["interrupted"]["phase"] == "training"
    assert result["epochs_run"] < 500
    assert [g["lost"] for g in result["groups"]] == [None, None]
    saved = json.loads((tmp_path / "ray" / "metrics.json").read_text())
    assert saved["partial"] is True
    assert "interrupted by SIGINT: partial report in" in err


def test_a_cluster_that_cannot_be_reached_is_refused_before_training(tmp_path):
    port = _free_port()
    began = time.monotonic()
    run = _audit(tmp_path, *QUICK, "--out", "r", "--executor", "ray", "--ray-address", f"127.0.0.1:{port}")
    assert run.returncode == 2
    assert (
        f"error: Expected a Ray cluster at --ray-address 127.0.0.1:{port} but nothing answers there"
        in run.stderr
    )
    assert time.monotonic() - began < 30 and not (tmp_path / "r").exists()


def test_ray_options_without_the_ray_executor_are_refused(tmp_path):
    run = _audit(tmp_path, *QUICK, "--ray-address", "auto")
    assert run.returncode == 2
    assert "error: Expected --ray-address only with --executor ray but got executor='local'" in run.stderr


def test_without_ray_the_extra_is_named(tmp_path):
    """A Python without Ray (its import made to fail, as a missing package does)."""
    code = textwrap.dedent(
        """
        import sys
        sys.modules["ray"] = None
        from vaeloss.cli import main
        sys.exit(main(["audit", "--executor", "ray", "--epochs", "1", "--out", "r"]))
        """
    )
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 2
    assert "pip install 'vaeloss[ray]'" in run.stderr
    assert not (tmp_path / "r").exists()
    assert os.listdir(tmp_path) == []
