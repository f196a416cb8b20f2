"""Keras 2 names a file uses are read from its source and supplied from Keras 3, never
re-implemented."""

import ast
import json
import os
import subprocess
import sys

import pytest

from vaeloss.usercode.keras2 import OBJECTIVES, keras2_names


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param(
            "from keras import backend as K\nfrom keras import objectives\n"
            "y = K.mean(K.exp(z)) + K.int_shape(z)[0]",
            ("exp", "int_shape", "mean", OBJECTIVES),
            id="blog",
        ),
        pytest.param("import keras.backend as KB\nKB.sum(x)", ("sum",), id="import-as"),
        pytest.param("import keras\nkeras.backend.square(x)", ("square",), id="dotted"),
        pytest.param("from keras.objectives import binary_crossentropy", (OBJECTIVES,), id="from-objectives"),
        pytest.param("from tensorflow.keras import backend as K\nK.mean(x)", (), id="tf-keras-has-them"),
        pytest.param("import keras\nkeras.ops.mean(x)", (), id="keras-3"),
    ],
)
def test_names_read_from_the_source(source, expected):
    assert keras2_names(ast.parse(source)) == expected


def test_supplied_names_are_keras_3s_own_functions():
    """In a fresh process (Keras's backend is chosen at its import): each supplied name is the
    very function of keras.ops / keras.random / keras.losses, and computes as Keras 2's did."""
    code = """
import json, keras, torch
from vaeloss.usercode.keras2 import supply_keras2
supplied = supply_keras2(("mean", "square", "random_normal", "int_shape", "batch_flatten", "objectives",
                           "epsilon", "no_such_function"))
from keras import backend as K
from keras import objectives
x = torch.arange(6, dtype=torch.float64).reshape(2, 3)
print(json.dumps({
    "supplied": supplied,
    "same": [K.mean is keras.ops.mean, K.square is keras.ops.square, K.random_normal is keras.random.normal,
             objectives is keras.losses],
    "mean": float(K.mean(x)), "int_shape": list(K.int_shape(x)),
    "batch_flatten": list(K.batch_flatten(x.reshape(2, 3, 1)).shape),
    "missing": hasattr(K, "no_such_function"),
}))
"""
    env = {**os.environ, "KERAS_BACKEND": "torch"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    data = json.loads(out.stdout.strip().splitlines()[-1])
    assert data["same"] == [True, True, True, True]
    assert data["mean"] == 2.5 and data["int_shape"] == [2, 3] and data["batch_flatten"] == [2, 3]
    assert data["missing"] is False  # a name Keras 3 has no function for is left alone
    assert data["supplied"] == [
        "keras.backend.mean -> keras.ops.mean",
        "keras.backend.square -> keras.ops.square",
        "keras.backend.random_normal -> keras.random.normal",
        "keras.backend.int_shape -> the tensor's .shape",
        "keras.backend.batch_flatten -> keras.ops.reshape(x, (batch, -1))",
        "keras.objectives -> keras.losses",
    ]  # epsilon: keras.backend still has it
