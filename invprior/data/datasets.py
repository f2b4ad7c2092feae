"""28x28 datasets with fixed, disjoint train/val/test splits, built offline and cached as ``.npz``.

- ``"shapes"``: the 10,000 animal silhouettes of the ``animal-shape-mnist`` package (MIT), read
  once from its gzipped pickle with a restricted unpickler that only rebuilds numpy arrays (its
  loader imports TensorFlow and is never used), de-duplicated, then split 80/10/10.
- ``"digits"``: digits rendered from the fonts matplotlib ships, with random affine and elastic
  distortions and stroke-width changes (MNIST-like); each split has its own seed.
- ``"natural"``: 64x64 grey crops of the natural test-image collection (``ip.data.images``): the
  train split's images give the train crops, the val split's the val crops and the test split's the
  test crops, so no crop of a test photograph is ever trained on. Crops are drawn at scales 1, 3/4
  and 1/2, with random 90° rotations, flips and a mild contrast/brightness jitter (fixed seeds).
- ``"kernels"``: 15x15 synthetic blur kernels (``ip.operators.kernels.random_kernels``: anisotropic
  Gaussian, linear motion and camera shake in equal shares), each stored as an image divided by its
  maximum (``kernel_to_image``); ``image_to_kernel`` turns one back into a kernel. Seeded per split.
- ``"natural-colour"``: 64x64 RGB crops drawn the same way from the same splits (grey photographs
  enter as R = G = B), for a colour prior. Only the train split's photographs give train crops.

The cache lives in ``$INVPRIOR_CACHE`` (default ``~/.cache/invprior``); files are written atomically.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import math
import os
import pickle
import tempfile
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from .._checks import InvpriorError

__all__ = ["DATASETS", "cache_dir", "dataset", "restricted_unpickle"]

Split = Literal["train", "val", "test"]
DATASETS = ("shapes", "digits", "natural", "kernels", "natural-colour")
_DIGIT_COUNTS = {"train": 12000, "val": 1000, "test": 1000}
_DIGIT_SEEDS = {"train": 11, "val": 12, "test": 13}
_VERSION = 1
_NATURAL_COUNTS = {"train": 24000, "val": 1000, "test": 1000}
_NATURAL_SEEDS = {"train": 21, "val": 22, "test": 23}
NATURAL_CROP = 64
_KERNEL_COUNTS = {"train": 30000, "val": 1000, "test": 1000}
_KERNEL_SEEDS = {"train": 31, "val": 32, "test": 33}
KERNEL_SIZE = 15
SIDES = {"shapes": 28, "digits": 28, "natural": NATURAL_CROP, "kernels": KERNEL_SIZE, "natural-colour": NATURAL_CROP}
CHANNELS = {"natural-colour": 3}  # every other dataset is grey


def cache_dir() -> Path:
    d = Path(os.environ.get("INVPRIOR_CACHE", Path.home() / ".cache" / "invprior"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def _atomic_save_npz(path: Path, **arrays: np.ndarray) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp.npz")
    os.close(fd)
    try:
        np.savez_compressed(tmp, **arrays)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


# ----- restricted unpickling ------------------------------------------------------------------
class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Rebuilds plain numpy arrays and nothing else: any other global is refused."""

    _ALLOWED = frozenset(
        {
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
        }
    )

    def find_class(self, module: str, name: str):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only numpy arrays are allowed")
        if name == "_reconstruct":
            from numpy._core.multiarray import _reconstruct

            return _reconstruct
        return getattr(np, name)


def restricted_unpickle(data: bytes) -> np.ndarray:
    """Unpickle bytes that must contain a single numpy array; anything else raises."""
    obj = _NumpyOnlyUnpickler(io.BytesIO(data)).load()
    if not isinstance(obj, np.ndarray) or obj.dtype == object:
        raise pickle.UnpicklingError(f"expected a numeric numpy array, got {type(obj).__name__}")
    return obj


def _shapes_source() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("animal_shape_mnist")
    if spec is None or not spec.submodule_search_locations:
        raise InvpriorError("the 'shapes' dataset needs the animal-shape-mnist package: pip install animal-shape-mnist")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "Animal Shape"


def _build_shapes() -> dict[str, np.ndarray]:
    src = _shapes_source()
    with gzip.open(src / "animal_data_version_3.gz", "rb") as f:
        x = restricted_unpickle(f.read())
    with gzip.open(src / "animal_label_version_3.gz", "rb") as f:
        labels = restricted_unpickle(f.read())
    if x.shape[1:] != (28, 28) or len(x) != len(labels):
        raise InvpriorError(f"unexpected animal-shape-mnist contents: {x.shape}, {labels.shape}")
    x = x.astype(np.uint8)
    # drop exact duplicates so the splits are truly disjoint
    _, first = np.unique(x.reshape(len(x), -1), axis=0, return_index=True)
    keep = np.sort(first)
    x, labels = x[keep], labels[keep].astype(np.int64)
    perm = np.random.default_rng(20241).permutation(len(x))
    n_test = n_val = len(x) // 10
    idx = {"test": perm[:n_test], "val": perm[n_test : n_test + n_val], "train": perm[n_test + n_val :]}
    out: dict[str, np.ndarray] = {}
    for split, ind in idx.items():
        out[f"{split}_x"] = x[ind]
        out[f"{split}_y"] = labels[ind]
    return out


# ----- procedural digits ----------------------------------------------------------------------
def _font_files() -> list[str]:
    import matplotlib

    base = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    names = [
        "DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSans-BoldOblique.ttf",
        "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSerif-Italic.ttf", "DejaVuSansMono.ttf",
        "DejaVuSansMono-Bold.ttf", "STIXGeneral.ttf", "STIXGeneralBol.ttf", "STIXGeneralItalic.ttf",
        "cmr10.ttf", "cmss10.ttf", "cmtt10.ttf", "cmb10.ttf",
    ]  # fmt: skip
    return [str(base / n) for n in names if (base / n).exists()]


def _render_glyphs(res: int = 96) -> np.ndarray:
    """``(n_fonts, 10, res, res)`` anti-aliased glyphs, each fitted into a centred box."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.path import Path as MPath
    from matplotlib.textpath import TextPath

    fonts = _font_files()
    if not fonts:
        raise InvpriorError("no matplotlib fonts found to render digits")
    ss = 4  # supersampling
    grid = (np.arange(res * ss) + 0.5) / ss
    gx, gy = np.meshgrid(grid, grid)
    pts = np.stack([gx.ravel(), gy.ravel()], axis=1)
    out = np.zeros((len(fonts), 10, res, res), dtype=np.float32)
    for i, fname in enumerate(fonts):
        prop = FontProperties(fname=fname)
        for d in range(10):
            tp = TextPath((0, 0), str(d), size=100, prop=prop)
            verts = tp.vertices.copy()
            lo, hi = verts.min(0), verts.max(0)
            scale = 0.8 * res / max(hi[1] - lo[1], 1e-6)
            verts = (verts - (lo + hi) / 2) * scale
            verts[:, 1] = -verts[:, 1]  # image rows go down
            verts += res / 2
            path = MPath(verts, tp.codes)
            inside = np.zeros(len(pts), dtype=bool)
            for poly in path.to_polygons(closed_only=True):
                inside ^= MPath(poly).contains_points(pts)  # even-odd fill handles the holes of 0, 6, 8, 9
            img = inside.reshape(res * ss, res * ss).astype(np.float32)
            out[i, d] = img.reshape(res, ss, res, ss).mean((1, 3))
    return out


def _smooth_field(n: int, size: int, sigma: float, g: torch.Generator) -> torch.Tensor:
    noise = torch.randn(n, 2, size, size, generator=g)
    r = int(3 * sigma)
    t = torch.arange(-r, r + 1, dtype=torch.float32)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    k = k / k.sum()
    noise = torch.nn.functional.conv2d(noise.reshape(-1, 1, size, size), k.view(1, 1, -1, 1), padding=(r, 0))
    noise = torch.nn.functional.conv2d(noise, k.view(1, 1, 1, -1), padding=(0, r))
    return noise.reshape(n, 2, size, size)


def _distort(glyphs: torch.Tensor, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sample ``n`` distorted digits (affine + elastic + stroke width), MNIST-style centred in 28x28."""
    g = torch.Generator().manual_seed(seed)
    n_fonts, _, _res, _ = glyphs.shape
    font = torch.randint(0, n_fonts, (n,), generator=g)
    label = torch.randint(0, 10, (n,), generator=g)
    src = glyphs[font, label][:, None]  # (n, 1, res, res)
    # stroke width: blur then re-threshold with a random level
    blur = 1.0 + 2.0 * torch.rand(n, generator=g)  # in units of the 4x grid
    out_size = 56  # 2x the final 28
    rot = (torch.rand(n, generator=g) * 2 - 1) * math.radians(15)
    shear = (torch.rand(n, generator=g) * 2 - 1) * 0.3
    sx = 0.85 + 0.3 * torch.rand(n, generator=g)
    sy = sx * (0.9 + 0.2 * torch.rand(n, generator=g))
    cos, sin = torch.cos(rot), torch.sin(rot)
    theta = torch.zeros(n, 2, 3)
    # output -> input coordinates; the digit box occupies ~20/28 of the frame like MNIST
    fit = 28.0 / 20.0
    theta[:, 0, 0] = fit * (cos / sx)
    theta[:, 0, 1] = fit * (-sin / sx + shear)
    theta[:, 1, 0] = fit * (sin / sy)
    theta[:, 1, 1] = fit * (cos / sy)
    grid = torch.nn.functional.affine_grid(theta, (n, 1, out_size, out_size), align_corners=False)
    grid = grid + 0.03 * _smooth_field(n, out_size, 4.0, g).permute(0, 2, 3, 1)
    warped = torch.nn.functional.grid_sample(src, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    # stroke width
    r = 3
    t = torch.arange(-r, r + 1, dtype=torch.float32)
    ker = torch.exp(-(t[None] ** 2) / (2 * (blur[:, None] / 2) ** 2))
    ker = ker / ker.sum(1, keepdim=True)
    w = warped.reshape(1, n, out_size, out_size)
    w = torch.nn.functional.conv2d(w, ker.view(n, 1, -1, 1), padding=(r, 0), groups=n)
    w = torch.nn.functional.conv2d(w, ker.view(n, 1, 1, -1), padding=(0, r), groups=n)
    level = 0.25 + 0.3 * torch.rand(n, generator=g)
    w = torch.sigmoid((w.reshape(n, 1, out_size, out_size) - level[:, None, None, None]) * 12.0)
    small = torch.nn.functional.avg_pool2d(w, 2)  # (n, 1, 28, 28)
    # centre by centre of mass (integer shift), as MNIST does
    coords = torch.arange(28, dtype=torch.float32)
    mass = small.sum((2, 3)).clamp_min(1e-6)
    cy = (small.sum(3)[:, 0] * coords).sum(1) / mass[:, 0]
    cx = (small.sum(2)[:, 0] * coords).sum(1) / mass[:, 0]
    out = torch.zeros_like(small)
    for i in range(n):
        out[i] = torch.roll(small[i], (round(13.5 - float(cy[i])), round(13.5 - float(cx[i]))), dims=(1, 2))
    out = out / out.amax((2, 3), keepdim=True).clamp_min(1e-6)
    img = (out[:, 0].clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    return img, label.numpy().astype(np.int64)


def _build_digits() -> dict[str, np.ndarray]:
    glyphs = torch.from_numpy(_render_glyphs())
    out: dict[str, np.ndarray] = {}
    for split, n in _DIGIT_COUNTS.items():
        chunks = [_distort(glyphs, min(1000, n - i), _DIGIT_SEEDS[split] * 100_003 + i) for i in range(0, n, 1000)]
        out[f"{split}_x"] = np.concatenate([c[0] for c in chunks])
        out[f"{split}_y"] = np.concatenate([c[1] for c in chunks])
    return out


# ----- natural-image crops --------------------------------------------------------------------
def _natural_crops(split: Split, n: int, seed: int, p: int = NATURAL_CROP, channels: int = 1) -> np.ndarray:
    """``n`` augmented ``p x p`` uint8 crops of the images of one split, as ``(n, p, p)`` grey or
    ``(n, 3, p, p)`` colour (see the module docstring)."""
    import torch.nn.functional as F

    from .images import image, image_names

    g = torch.Generator().manual_seed(seed)
    pool = []
    for name in image_names(split):
        x = image(name, size=None, channels=channels)  # (1, C, H, W) in [0, 1]
        for s in (1.0, 0.75, 0.5):
            h, w = int(x.shape[-2] * s), int(x.shape[-1] * s)
            if min(h, w) >= p:
                pool.append(x if s == 1.0 else F.interpolate(x, size=(h, w), mode="area"))
    if not pool:
        raise InvpriorError(f"no {split} image is at least {p} pixels on a side")
    weights = torch.tensor([float(t.shape[-2] * t.shape[-1]) ** 0.5 for t in pool])  # larger images: more crops
    which = torch.multinomial(weights, n, replacement=True, generator=g)
    out = np.empty((n, p, p) if channels == 1 else (n, channels, p, p), dtype=np.uint8)
    for k, i in enumerate(which.tolist()):
        x = pool[i][0, 0] if channels == 1 else pool[i][0]
        h, w = x.shape[-2:]
        r = int(torch.randint(0, h - p + 1, (1,), generator=g))
        c = int(torch.randint(0, w - p + 1, (1,), generator=g))
        crop = torch.rot90(x[..., r : r + p, c : c + p], int(torch.randint(0, 4, (1,), generator=g)), (-2, -1))
        if bool(torch.randint(0, 2, (1,), generator=g)):
            crop = crop.flip(-1)
        a = 0.8 + 0.2 * float(torch.rand((), generator=g))  # contrast in [0.8, 1]
        b = (1 - a) * float(torch.rand((), generator=g))  # brightness: stays inside [0, 1]
        out[k] = ((a * crop + b).clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    return out


def _build_natural() -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for split, n in _NATURAL_COUNTS.items():
        out[f"{split}_x"] = _natural_crops(split, n, _NATURAL_SEEDS[split])  # type: ignore[arg-type]
        out[f"{split}_y"] = np.zeros(n, dtype=np.int64)
    return out


def _build_natural_colour() -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for split, n in _NATURAL_COUNTS.items():
        out[f"{split}_x"] = _natural_crops(split, n, _NATURAL_SEEDS[split], channels=3)  # type: ignore[arg-type]
        out[f"{split}_y"] = np.zeros(n, dtype=np.int64)
    return out


def _build_kernels() -> dict[str, np.ndarray]:
    from ..operators.kernels import kernel_to_image, random_kernels

    out: dict[str, np.ndarray] = {}
    for split, n in _KERNEL_COUNTS.items():
        img = kernel_to_image(random_kernels(n, KERNEL_SIZE, seed=_KERNEL_SEEDS[split]))
        out[f"{split}_x"] = np.round(img.numpy() * 255).astype(np.uint8)
        out[f"{split}_y"] = np.zeros(n, dtype=np.int64)
    return out


_BUILDERS = {
    "shapes": _build_shapes,
    "digits": _build_digits,
    "natural": _build_natural,
    "kernels": _build_kernels,
    "natural-colour": _build_natural_colour,
}


def _load_cached(name: str) -> dict[str, np.ndarray]:
    path = cache_dir() / f"{name}-v{_VERSION}.npz"
    if not path.exists():
        arrays = _BUILDERS[name]()
        _atomic_save_npz(path, **arrays)
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (ValueError, OSError) as e:
        path.unlink(missing_ok=True)
        raise InvpriorError(f"the cached {name} dataset was corrupt and has been removed; run again to rebuild") from e


def dataset(
    name: Literal["shapes", "digits", "natural", "kernels", "natural-colour"],
    split: Split = "train",
    *,
    with_labels: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """A dataset split as ``(N, 1, 28, 28)`` float32 in [0, 1] (``(N, 1, 64, 64)`` for ``"natural"``,
    ``(N, 1, 15, 15)`` for ``"kernels"``, ``(N, 3, 64, 64)`` for ``"natural-colour"``), and ``(N,)``
    int64 labels if asked (all 0 for the natural and kernel sets, which have no classes).

    The first call builds and caches the data (a few seconds); later calls read the cache.
    """
    if name not in DATASETS:
        raise InvpriorError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")
    if split not in ("train", "val", "test"):
        raise InvpriorError(f"split must be 'train', 'val' or 'test', got {split!r}")
    arrays = _load_cached(name)
    x = torch.from_numpy(arrays[f"{split}_x"].astype(np.float32) / 255.0)
    if x.ndim == 3:
        x = x[:, None]
    if with_labels:
        return x, torch.from_numpy(arrays[f"{split}_y"])
    return x


def dataset_fingerprint(name: str) -> str:
    """A short hash of the cached arrays (to record which data a model was trained on)."""
    arrays = _load_cached(name)
    h = hashlib.sha256()
    for k in sorted(arrays):
        h.update(k.encode())
        h.update(np.ascontiguousarray(arrays[k]).tobytes())
    return h.hexdigest()[:16]
