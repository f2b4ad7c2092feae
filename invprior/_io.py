"""Small file helpers: PNG writing (Pillow, no torchvision) and atomic folder replacement."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

__all__ = ["atomic_folder", "save_png", "to_uint8"]


def to_uint8(img: torch.Tensor | np.ndarray, vmin: float = 0.0, vmax: float = 1.0) -> np.ndarray:
    """``(C, H, W)`` or ``(H, W)`` -> ``(H, W)`` or ``(H, W, 3)`` uint8, clipped to ``[vmin, vmax]``."""
    a = img.detach().cpu().double().numpy() if isinstance(img, torch.Tensor) else np.asarray(img, dtype=np.float64)
    if a.ndim == 3:
        a = a[0] if a.shape[0] == 1 else a.transpose(1, 2, 0)
    scale = max(vmax - vmin, 1e-12)
    return (np.clip((a - vmin) / scale, 0, 1) * 255 + 0.5).astype(np.uint8)


def save_png(img: torch.Tensor | np.ndarray, path: str | Path, vmin: float = 0.0, vmax: float = 1.0) -> None:
    from PIL import Image

    Image.fromarray(to_uint8(img, vmin, vmax)).save(path)


def atomic_folder(folder: str | Path, write: Callable[[Path], None]) -> Path:
    """Write a folder's contents into a temporary sibling, then swap it into place.

    Readers never see a half-written folder; an existing folder is replaced only once the new one
    is complete, and a failure leaves the old one untouched.
    """
    folder = Path(folder).resolve()
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-", dir=folder.parent))
    try:
        write(tmp)
        if folder.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.old-", dir=folder.parent))
            os.rmdir(old)
            os.replace(folder, old)
            os.replace(tmp, folder)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder
