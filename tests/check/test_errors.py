"""Files that cannot be checked: exit 2 with a message that says why, never a hang."""

import textwrap

import pytest

from vaeloss.cli import main

GOOD = """
import torch
import torch.nn.functional as F

def {name}(recon_x, x, mu, logvar):
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return F.binary_cross_entropy(recon_x, x, reduction="sum") + kld
"""

CASES = {
    "syntax": ("def loss(:\n", r"syntax error at line 1"),
    "no-function": ("x = 1\n", r"found none among its top-level functions"),
    "several": (
        GOOD.format(name="loss_a") + GOOD.format(name="loss_b"),
        r"several candidates: loss_a \(line \d+\), loss_b",
    ),
    "raises": (
        "def loss(recon_x, x, mu, logvar):\n    raise RuntimeError('boom')\n",
        r"raised on every input layout tried.*RuntimeError: boom",
    ),
    "returns-string": (
        "def loss(recon_x, x, mu, logvar):\n    return 'hello'\n",
        r"returned str, not a tensor",
    ),
    "returns-nan": (
        "import torch\ndef loss(recon_x, x, mu, logvar):\n    return torch.tensor(float('nan'))\n",
        r"returned nan at ordinary inputs",
    ),
    "never-returns": (
        "def loss(recon_x, x, mu, logvar):\n    while True:\n        pass\n",
        r"within timeout=4 s but it did not",
    ),
    "exit-at-import": (
        "import sys\nsys.exit(0)\ndef loss(recon_x, x, mu, logvar):\n    return 0\n",
        r"called sys.exit\(0\)",
    ),
    "exit-in-call": (
        "import sys\ndef loss(recon_x, x, mu, logvar):\n    sys.exit(0)\n",
        r"called sys.exit\(0\)",
    ),
    "os-exit": (
        "import os\ndef loss(recon_x, x, mu, logvar):\n    os._exit(0)\n",
        r"exited with status 0 before reporting",
    ),
    "import-error": (
        "import not_a_module_xyz\ndef loss(recon_x, x, mu, logvar):\n    return 0\n",
        r"ModuleNotFoundError",
    ),
    "method-uses-self": (
        "import torch\nclass VAE:\n    def loss(self, recon_x, x, mu, logvar):\n"
        "        return self.beta * mu.sum()\n",
        r"VAE.loss is a method that uses self",
    ),
    "kwargs-key": (
        "import torch\ndef loss(*args, **kwargs):\n    return args[0].sum() * kwargs['M_N']\n",
        r"keyword argument 'M_N' it was not given. Try --arg M_N=VALUE",
    ),
    "required-extra": (
        "def loss(recon_x, x, mu, logvar, epoch):\n    return 0\n",
        r"required argument\(s\) epoch .* Try --arg epoch=VALUE",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_uncheckable_files_exit_2(tmp_path, capsys, case):
    source, pattern = CASES[case]
    path = tmp_path / "user_loss.py"
    path.write_text(textwrap.dedent(source))
    timeout = "4" if case == "never-returns" else "60"
    code = main(["check", str(path), "--timeout", timeout])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ")
    import re

    assert re.search(pattern, err, re.S), err


def test_missing_file(capsys):
    assert main(["check", "does/not/exist.py"]) == 2
    assert "path='does/not/exist.py', which does not exist" in capsys.readouterr().err


def test_named_function_missing(tmp_path, capsys):
    path = tmp_path / "l.py"
    path.write_text(GOOD.format(name="my_loss"))
    assert main(["check", f"{path}:other"]) == 2
    assert "Expected a function named 'other'" in capsys.readouterr().err


def test_hard_coded_784_at_other_D(capsys):
    from pathlib import Path

    ex = Path(__file__).parents[2] / "vaeloss" / "examples" / "mean_bce_sum_kld.py"
    assert main(["check", str(ex), "--data-dim", "100"]) == 2
    assert "The file hard-codes 784 (line 6): try --data-dim 784" in capsys.readouterr().err


def test_bad_options(capsys):
    assert main(["check", "x.py", "--input-shape", "1,a"]) == 2
    assert main(["check", "x.py", "--arg", "nonsense"]) == 2
    assert "error:" in capsys.readouterr().err
