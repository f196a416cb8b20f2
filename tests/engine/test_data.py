import struct

import numpy as np
import pytest
import torch

from vaeloss import DataError, InvalidArgumentError
from vaeloss.engine.data import linear_gaussian, load_dataset


def test_digits_builtin():
    ds = load_dataset("digits", seed=3)
    assert ds.shape == (1, 8, 8) and ds.dim == 64
    assert ds.x_train.shape[0] + ds.x_val.shape[0] == 1797
    assert 0 <= float(ds.x_train.min()) and float(ds.x_train.max()) <= 1
    assert ds.y_train is not None and set(ds.y_train.tolist()) == set(range(10))


def test_split_is_seeded():
    a, b, c = (
        load_dataset("digits", seed=1),
        load_dataset("digits", seed=1),
        load_dataset("digits", seed=2),
    )
    assert torch.equal(a.x_val, b.x_val)
    assert not torch.equal(a.x_val, c.x_val)


def _write_idx(raw, prefix, n, gz=False):
    raw.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n, dtype=np.uint8)
    img = struct.pack(">IIII", 2051, n, 28, 28) + images.tobytes()
    lab = struct.pack(">II", 2049, n) + labels.tobytes()
    for split in (prefix, "t10k"):
        (raw / f"{split}-images-idx3-ubyte").write_bytes(img)
        (raw / f"{split}-labels-idx1-ubyte").write_bytes(lab)
    return images, labels


@pytest.mark.parametrize(("spec", "folder"), [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST")])
def test_mnist_from_idx_files(tmp_path, spec, folder):
    images, labels = _write_idx(tmp_path / folder / "raw", "train", 50)
    ds = load_dataset(spec, data_dir=str(tmp_path), val_fraction=0.2)
    assert ds.shape == (1, 28, 28)
    got = torch.cat([ds.x_train, ds.x_val])
    assert got.shape == (50, 784)
    expected = torch.tensor(images.reshape(50, -1) / 255.0, dtype=torch.float32)
    # same rows, in the seeded split's order
    assert torch.allclose(got.sum(0), expected.sum(0), atol=1e-3)
    assert sorted(torch.cat([ds.y_train, ds.y_val]).tolist()) == sorted(labels.tolist())


def test_mnist_missing_files_say_where(tmp_path):
    with pytest.raises(
        DataError, match=r"IDX files .* in .*MNIST/raw but they are not all there .* --download"
    ):
        load_dataset("mnist", data_dir=str(tmp_path))


def test_npz_and_npy(tmp_path):
    x = np.random.default_rng(0).random((30, 4, 4)).astype(np.float32)
    np.savez(tmp_path / "d.npz", x=x, y=np.arange(30))
    np.save(tmp_path / "d.npy", x)
    a = load_dataset(f"npz:{tmp_path / 'd.npz'}")
    b = load_dataset(f"npy:{tmp_path / 'd.npy'}")
    assert a.shape == (4, 4) and a.dim == 16 and a.y_train is not None
    assert b.y_train is None


def test_value_checks(tmp_path):
    bad = np.full((10, 3), 2.0)
    np.save(tmp_path / "big.npy", bad)
    with pytest.raises(
        DataError,
        match=r"data in \[0, 1\] for a bernoulli likelihood .* spans \[2, 2\]. Try --rescale",
    ):
        load_dataset(f"npy:{tmp_path / 'big.npy'}")
    ok = np.linspace(-1, 3, 30).reshape(10, 3)
    np.save(tmp_path / "r.npy", ok)
    ds = load_dataset(f"npy:{tmp_path / 'r.npy'}", rescale=True)
    assert float(torch.cat([ds.x_train, ds.x_val]).min()) == 0.0
    nan = np.ones((10, 3)) * 0.5
    nan[0, 0] = np.nan
    np.save(tmp_path / "n.npy", nan)
    with pytest.raises(DataError, match=r"finite values .* 1 NaN or infinite"):
        load_dataset(f"npy:{tmp_path / 'n.npy'}")
    np.savez(tmp_path / "nox.npz", z=nan)
    with pytest.raises(DataError, match=r"array named 'x'"):
        load_dataset(f"npz:{tmp_path / 'nox.npz'}")


def test_unknown_spec_and_binarization():
    with pytest.raises(DataError, match=r"data spec but got data='cifar'. Try one of: digits"):
        load_dataset("cifar")
    with pytest.raises(InvalidArgumentError, match=r"but got binarization='sometimes'"):
        load_dataset("digits", binarization="sometimes")
    ds = load_dataset("digits", binarization="static")
    assert set(ds.x_train.unique().tolist()) <= {0.0, 1.0}


def test_linear_gaussian_has_the_stated_spectrum():
    x, truth = linear_gaussian(200_000, eigenvalues=(3.0, 1.0), noise_var=0.1, dim=4, seed=0)
    eig = np.sort(np.linalg.eigvalsh(np.cov(x.T)))[::-1]
    np.testing.assert_allclose(eig, [3.1, 1.1, 0.1, 0.1], rtol=0.02)
    assert truth["noise_var"] == 0.1


def test_a_file_with_no_rows_names_the_file(tmp_path):
    np.savez(tmp_path / "empty.npz", x=np.zeros((0, 64), dtype=np.float32))
    with pytest.raises(DataError, match=r"x of shape \(0, 64\) in .*empty.npz: it holds no samples"):
        load_dataset(f"npz:{tmp_path / 'empty.npz'}", likelihood=None)
