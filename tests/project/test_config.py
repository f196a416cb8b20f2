"""``[tool.vaeloss]`` in a project's pyproject.toml (tests of project/config.py)."""

import pytest

from vaeloss.errors import InvalidArgumentError
from vaeloss.project.config import ProjectConfig, TargetConfig, read_config


def _config(tmp_path, text):
    (tmp_path / "pyproject.toml").write_text(text)
    return read_config(tmp_path)


def test_every_setting_is_read(tmp_path):
    actual = _config(
        tmp_path,
        """
[tool.vaeloss]
B = 64
data-dim = 784
input-shape = [1, 28, 28]
timeout = 30
exclude = ["old/*"]
ignore = ["kl-factor-two"]

[tool.vaeloss.targets."models/vae.py"]
name = "VAE.loss_function"
args = { kld_weight = 0.00025 }
init = { beta = 4.0 }
expect-beta = 1.0
""",
    )
    expected = ProjectConfig(
        sizes={"B": 64, "D": 784},
        input_shape=(1, 28, 28),
        timeout=30.0,
        exclude=("old/*",),
        ignore=("kl-factor-two",),
        targets={
            "models/vae.py": TargetConfig("VAE.loss_function", {"kld_weight": 0.00025}, {"beta": 4.0}, 1.0)
        },
        source=tmp_path / "pyproject.toml",
    )
    assert actual == expected
    assert actual.target("other.py") == TargetConfig()


def test_no_pyproject_or_no_table_is_the_defaults(tmp_path):
    assert read_config(tmp_path) == ProjectConfig()
    assert _config(tmp_path, "[project]\nname = 'x'\n").sizes == {}


BAD = {
    "unknown-key": ("batchsize = 64", r"in \[tool\.vaeloss\] of .* but got 'batchsize'\. Try one of: B, D,"),
    "unknown-target-key": (
        '[tool.vaeloss.targets."a.py"]\nexpect_beta = 1',
        r"but got 'expect_beta'\. Try one of: args, expect-beta, init, name",
    ),
    "both-spellings": ("B = 64\nbatch-size = 32", r"Expected one of batch-size and B .* but got B=64"),
    "bad-size": (
        "latent-dim = 0",
        r"Expected an integer >= 1 .* but got latent-dim=0\. Try latent-dim = 128",
    ),
    "bad-code": (
        'ignore = ["kl-facter-two"]',
        r"Expected a finding code .* but got ignore='kl-facter-two'\. Try",
    ),
    "bad-timeout": ("timeout = -1", r"Expected a number of seconds > 0 .* but got timeout=-1"),
    "bad-shape": ("input-shape = '1,28,28'", r"Expected a list of sizes .* Try input-shape = \[1, 28, 28\]"),
}


@pytest.mark.parametrize(("text", "pattern"), list(BAD.values()), ids=list(BAD))
def test_a_key_or_value_vaeloss_does_not_take_is_named(tmp_path, text, pattern):
    with pytest.raises(InvalidArgumentError, match=pattern):
        _config(tmp_path, text + "\n" if text.startswith("[") else "[tool.vaeloss]\n" + text + "\n")


def test_invalid_toml_is_said(tmp_path):
    with pytest.raises(
        InvalidArgumentError, match=r"Expected a readable pyproject\.toml but got .*pyproject\.toml: "
    ):
        _config(tmp_path, "[tool.vaeloss\n")
