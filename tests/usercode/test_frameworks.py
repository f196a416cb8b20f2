"""A file's framework is told by its imports; a framework that is not installed is exit 2
naming the import line and the extra to install."""

import json
from pathlib import Path

import pytest

from vaeloss.cli import main
from vaeloss.errors import UserCodeError
from vaeloss.usercode.frameworks import detect_framework, require_framework
from vaeloss.usercode.sourcefile import SourceFile


def _use(text):
    return detect_framework(SourceFile(Path("vae.py"), text))


@pytest.mark.parametrize(
    ("text", "name", "arrays"),
    [
        pytest.param("import torch\nimport numpy as np\n", "torch", "torch", id="torch"),
        pytest.param("import torch\nfrom keras import ops\n", "torch", "torch", id="torch-with-keras-ops"),
        pytest.param(
            "import tensorflow as tf\nfrom tensorflow import keras\n", "tensorflow", "tensorflow", id="tf"
        ),
        pytest.param("import keras\nimport tensorflow as tf\n", "tensorflow", "tensorflow", id="keras-on-tf"),
        pytest.param("import jax.numpy as jnp\nimport optax\n", "jax", "jax", id="jax"),
        pytest.param("from flax import linen as nn\n", "jax", "jax", id="flax"),
        pytest.param("from keras import backend as K\n", "keras", "torch", id="keras-alone-on-torch"),
        pytest.param("import numpy as np\nfrom scipy import special\n", "numpy", "numpy", id="numpy"),
        pytest.param(
            "import jax.numpy as jnp\nimport tensorflow as tf\ntf.config.set_visible_devices([], 'GPU')\n"
            "def loss(r, x, m, v):\n    return jnp.sum(jnp.square(r - x)) + jnp.sum(m)\n",
            "jax",
            "jax",
            id="flax-script-reading-data-with-tf",
        ),
        pytest.param(
            "def f():\n    import tensorflow as tf\n", "tensorflow", "tensorflow", id="import-in-function"
        ),
    ],
)
def test_framework_from_imports(text, name, arrays, monkeypatch):
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    use = _use(text)
    assert (use.name, use.arrays) == (name, arrays)


def test_keras_alone_runs_on_the_users_keras_backend(monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    use = _use("import keras\n")
    assert (use.name, use.arrays, use.keras_backend) == ("keras", "jax", "jax")
    assert use.describe() == "keras (Keras 3 on its jax backend)"


@pytest.mark.parametrize(
    ("line", "extra"),
    [
        pytest.param("import tf_keras as keras", "'vaeloss[tensorflow]' 'tf_keras'", id="tf-keras"),
        pytest.param(
            "import tensorflow_probability as tfp",
            "'vaeloss[tensorflow]' 'tensorflow-probability'",
            id="tensorflow-probability",
        ),
    ],
)
def test_missing_framework_names_the_line_and_the_extra(line, extra, tmp_path, capsys):
    path = tmp_path / "vae.py"
    path.write_text(f'"""A VAE."""\n{line}\n\n\ndef loss(recon_x, x, mu, logvar):\n    return 0\n')
    with pytest.raises(UserCodeError) as info:
        require_framework(
            detect_framework(SourceFile(path, path.read_text())), SourceFile(path, path.read_text())
        )
    module = line.split()[1]
    assert str(info.value) == (
        f"Expected {module} to be installed to check vae.py, which imports it at line 2 ({line}), "
        f"but it is not. Try pip install {extra}."
    )
    assert main(["check", str(path), "--json"]) == 2
    captured = capsys.readouterr()
    error = json.loads(captured.out)["error"] if captured.out else captured.err
    assert f"imports it at line 2 ({line})" in error and "Traceback" not in captured.err
