"""Package-shipped images, the 28x28 datasets and image files."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import invprior as ip


@pytest.mark.parametrize("name", ip.data.image_names())
def test_every_image_loads_in_unit_range(name):
    x = ip.data.image(name, size=32)
    assert x.shape == (1, 1, 32, 32) and x.dtype == torch.float32
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0 and float(x.std()) > 0.01


def test_image_options():
    assert ip.data.image("astronaut", size=(24, 40), channels=3).shape == (1, 3, 24, 40)
    assert ip.data.image("camera", size=None).shape == (1, 1, 512, 512)
    with pytest.raises(ip.InvpriorError, match="unknown image 'lena'"):
        ip.data.image("lena")


def test_image_splits_are_disjoint_and_test_images_are_test():
    tr, va, te = (set(ip.data.image_names(s)) for s in ("train", "val", "test"))
    assert not (tr & va) and not (tr & te) and not (va & te)
    assert {"camera", "astronaut"} <= te


@pytest.mark.parametrize("name", ["shapes", "digits"])
def test_dataset_splits(name):
    sizes = {}
    flat = {}
    for split in ("train", "val", "test"):
        x, y = ip.data.dataset(name, split, with_labels=True)
        assert x.shape[1:] == (1, 28, 28) and x.dtype == torch.float32
        assert float(x.min()) >= 0 and float(x.max()) <= 1
        assert set(y.unique().tolist()) == set(range(10))
        sizes[split] = len(x)
        flat[split] = {bytes(r) for r in (x * 255).round().to(torch.uint8).reshape(len(x), -1).numpy()}
    assert sizes["train"] > 5 * sizes["test"] and sizes["val"] > 0
    assert not (flat["train"] & flat["test"]) and not (flat["train"] & flat["val"]) and not (flat["val"] & flat["test"])


def test_dataset_is_deterministic():
    a = ip.data.dataset("digits", "test")
    b = ip.data.dataset("digits", "test")
    assert torch.equal(a, b)


def test_unknown_dataset():
    with pytest.raises(ip.InvpriorError, match="unknown dataset"):
        ip.data.dataset("mnist")


def test_load_png_and_npy(tmp_path):
    a = (np.random.default_rng(0).random((20, 30)) * 255).astype(np.uint8)
    Image.fromarray(a).save(tmp_path / "a.png")
    x = ip.data.load_image_file(str(tmp_path / "a.png"))
    np.testing.assert_allclose(x[0, 0].numpy(), a / 255.0, atol=1e-6)
    np.save(tmp_path / "b.npy", a / 255.0)
    torch.testing.assert_close(ip.data.load_image_file(str(tmp_path / "b.npy")), x, atol=1e-6, rtol=0)


def test_bad_files_get_one_clear_error(tmp_path):
    (tmp_path / "junk.png").write_bytes(b"not an image")
    with pytest.raises(ip.InvpriorError, match="not a readable image"):
        ip.data.load_image_file(str(tmp_path / "junk.png"))
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ip.InvpriorError, match="pickled objects are refused"):
        ip.data.load_image_file(str(tmp_path / "obj.npy"))
    np.save(tmp_path / "big.npy", np.full((4, 4), 3.0))
    with pytest.raises(ip.InvpriorError, match=r"outside \[0, 1\]"):
        ip.data.load_image_file(str(tmp_path / "big.npy"))
    with pytest.raises(ip.InvpriorError, match="no such file"):
        ip.data.load_image_file(str(tmp_path / "missing.png"))
