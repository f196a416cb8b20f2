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
    "constant": (
        "def loss(recon_x, x, mu, logvar):\n    return 0\n",
        r"does not change with the reconstruction or the latents \(it returned 0 for every input\)",
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
        r"Expected a call of loss to return within timeout=4 s but the first call did not return "
        r"\(the call phase\)",
    ),
    "exit-at-import-with-exec-module": (
        "import sys\nsys.exit(0)\ndef loss(recon_x, x, mu, logvar):\n    return 0\n",
        r"importing user_loss.py called sys.exit\(0\)",
    ),
    "exit-in-call": (
        "import sys\ndef loss(recon_x, x, mu, logvar):\n    sys.exit(0)\n",
        r"called sys.exit\(0\)",
    ),
    "os-exit": (
        "import os\ndef loss(recon_x, x, mu, logvar):\n    os._exit(0)\n",
        r"exited with status 0 before reporting",
    ),
    "missing-module": (
        "import not_a_module_xyz\ndef loss(recon_x, x, mu, logvar):\n    return not_a_module_xyz.f(mu)\n",
        r"NameError: name 'not_a_module_xyz' is not defined\n'not_a_module_xyz' would have been made by "
        r"line 1 \(`import not_a_module_xyz`\), which was not run: it raised ModuleNotFoundError: No module "
        r"named 'not_a_module_xyz'\. The module 'not_a_module_xyz' is not installed where vaeloss runs: "
        r"install vaeloss into your project's environment",
    ),
    "method-uses-self": (
        "import torch\nclass VAE:\n    def loss(self, recon_x, x, mu, logvar):\n"
        "        return self.beta * mu.sum()\n",
        r"AttributeError: 'VAE' object has no attribute 'beta'",
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
    exec_module = ["--exec-module"] if "exec-module" in case else []
    code = main(["check", str(path), "--timeout", timeout, *exec_module])
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
    assert (
        "Expected a function, class or object named 'other' in l.py but found none; it defines: my_loss. "
        "Try 'vaeloss check l.py:NAME' with one of those." in capsys.readouterr().err
    )


def test_hard_coded_784_at_other_D(capsys):
    from pathlib import Path

    ex = Path(__file__).parents[2] / "vaeloss" / "examples" / "mean_bce_sum_kld.py"
    assert main(["check", str(ex), "--data-dim", "100"]) == 2
    assert "The file hard-codes 784 (line 6): try --data-dim 784" in capsys.readouterr().err


def test_bad_options(capsys):
    assert main(["check", "x.py", "--input-shape", "1,a"]) == 2
    assert main(["check", "x.py", "--arg", "nonsense"]) == 2
    assert "error:" in capsys.readouterr().err
