"""The Keras collapse callback in a real ``model.fit`` (Keras 3 on its torch backend, in a
fresh process: the test process does not import Keras): ``history.history`` holds the collapse
keys, equal to :mod:`vaeloss.metrics` computed here from the trained encoder's outputs, and
Keras's own ``TensorBoard`` callback, given after it, writes them (read back with
TensorBoard's event reader)."""

import json
import subprocess
import sys

import pytest
import torch

from vaeloss.metrics import active_units, kl_per_dim

pytest.importorskip("keras")
pytest.importorskip("tensorboard")
pytestmark = pytest.mark.xdist_group("keras-fit")  # the two tests share one process's fits

PROGRAM = """
import json, os, sys
os.environ["KERAS_BACKEND"] = "torch"
import keras
import numpy as np
from keras import layers, ops

from vaeloss.engine.data import load_dataset
from vaeloss.integrations.keras import CollapseCallback

keras.utils.set_random_seed(0)
digits = load_dataset("digits")
x_train, x_val = (np.asarray(x, dtype="float32") for x in (digits.x_train, digits.x_val))


class Sampling(layers.Layer):
    def call(self, inputs):
        z_mean, z_log_var = inputs
        return z_mean + ops.exp(0.5 * z_log_var) * keras.random.normal(ops.shape(z_mean))


def run(beta, epochs, log_dir):
    keras.utils.set_random_seed(0)
    inputs = keras.Input(shape=(64,))
    h = layers.Dense(64, activation="relu")(inputs)
    z_mean, z_log_var = layers.Dense(4)(h), layers.Dense(4)(h)
    encoder = keras.Model(inputs, [z_mean, z_log_var, Sampling()([z_mean, z_log_var])])
    latent = keras.Input(shape=(4,))
    hidden = layers.Dense(64, activation="relu")(latent)
    decoder = keras.Model(latent, layers.Dense(64, activation="sigmoid")(hidden))

    class VAE(keras.Model):
        def __init__(self):
            super().__init__()
            self.encoder, self.decoder = encoder, decoder

        def call(self, x):
            m, lv, z = self.encoder(x)
            kl = -0.5 * ops.mean(ops.sum(1 + lv - ops.square(m) - ops.exp(lv), axis=1))
            self.add_loss(beta * kl)
            return self.decoder(z)

    vae = VAE()
    vae.compile(optimizer=keras.optimizers.Adam(3e-3), loss=nll)
    callback = CollapseCallback(x_val, encoder, stop_on_collapse=True, patience=2)
    board = keras.callbacks.TensorBoard(log_dir=log_dir)
    history = vae.fit(x_train, x_train, epochs=epochs, batch_size=128, verbose=0, callbacks=[callback, board])
    mu, logvar, _ = encoder.predict(x_val, verbose=0)
    return {"history": history.history, "mu": mu.tolist(), "logvar": logvar.tolist()}


def nll(x, r):  # the Bernoulli NLL summed over pixels (Keras's BCE averages the last axis)
    return ops.sum(keras.losses.binary_crossentropy(x[..., None], r[..., None]), axis=-1)


out = {name: run(beta, epochs, os.path.join(sys.argv[1], name)) for name, beta, epochs in
       (("healthy", 1.0, 3), ("collapsed", 500.0, 40))}  # fmt: skip
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def fits(tmp_path_factory):
    """Both fits in one fresh process (Keras starts once): a healthy model (KL weight 1, 3
    epochs) and one at KL weight 500 (at most 40 epochs)."""
    folder = tmp_path_factory.mktemp("keras")
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM, str(folder)], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.splitlines()[-1]), done.stderr, folder


@pytest.mark.slow
def test_fit_history_holds_the_collapse_metrics(fits):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out, _, folder = fits
    history = out["healthy"]["history"]
    mu = torch.tensor(out["healthy"]["mu"], dtype=torch.float64)
    logvar = torch.tensor(out["healthy"]["logvar"], dtype=torch.float64)
    kl = kl_per_dim(mu, logvar)
    assert len(history["collapse/kl"]) == 3
    assert history["collapse/kl"][-1] == pytest.approx(float(kl.sum()), rel=1e-4)  # float32 outputs
    assert history["collapse/active_units"][-1] == active_units(mu).number
    for j in range(4):
        assert history[f"collapse/kl_dim/z{j:02d}"][-1] == pytest.approx(float(kl[j]), rel=1e-4, abs=1e-6)
    assert history["collapse/collapsed"][-1] == 0.0

    events = EventAccumulator(str(folder / "healthy" / "train"))
    events.Reload()
    tags = events.Tags()["tensors"] + events.Tags()["scalars"]
    assert "epoch_collapse/kl" in tags


@pytest.mark.slow
def test_a_collapsed_model_stops_fit(fits):
    out, err, _ = fits
    history = out["collapsed"]["history"]
    assert history["collapse/collapsed"][-1] == 1.0
    assert len(history["collapse/kl"]) < 40  # stopped by the callback
    assert "CollapseWarning: posterior collapse: 0 of 4 latent dims active for 2 epoch(s)" in err
