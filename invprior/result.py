"""``Result``: what every solver returns -- samples, mean, std and diagnostics -- and its files."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ._checks import InvpriorError
from ._io import result_folder_read, result_folder_write, save_png

__all__ = ["Diagnostics", "Result"]

_MAX_SAMPLE_PNGS = 8


@dataclass
class Diagnostics:
    """What a run cost and how well it fits.

    ``chi2``: data fit of the mean per batch element, ``||y - A x̂||² / (m Var)`` (≈ 1 at the
    noise level). ``nfe``: network/denoiser evaluations. ``operator_evals``: calls of the forward
    operator, its adjoint, Jacobian products, pinv and prox_data. ``loss_trace``: the objective (or
    residual) per iteration.
    """

    wall_time: float = 0.0
    nfe: int = 0
    operator_evals: int = 0
    iterations: int = 0
    converged: bool | None = None
    chi2: list[float] = field(default_factory=list)
    loss_trace: list[float] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["chi2"] = [float(c) for c in self.chi2]
        d["loss_trace"] = [float(v) for v in self.loss_trace]
        return d


@dataclass
class Result:
    """``samples`` ``(n, *x_shape)``, ``mean`` ``x_shape``, ``std`` (``None`` for point estimates).

    Point estimates (MAP) have ``n = 1`` and ``std = None``: no uncertainty is claimed.
    """

    samples: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor | None
    diagnostics: Diagnostics = field(default_factory=Diagnostics)
    method: str = ""
    trust: Any = field(default=None, repr=False, compare=False)  # ip.eval.Trust, filled by ip.solve

    @classmethod
    def from_samples(cls, samples: torch.Tensor, diagnostics: Diagnostics | None = None, method: str = "") -> Result:
        samples = samples.detach()
        n = samples.shape[0]
        std = samples.std(0, correction=1) if n > 1 else None
        return cls(samples, samples.mean(0), std, diagnostics or Diagnostics(), method)

    @classmethod
    def from_point(cls, x: torch.Tensor, diagnostics: Diagnostics | None = None, method: str = "") -> Result:
        x = x.detach()
        return cls(x[None], x, None, diagnostics or Diagnostics(), method)

    @property
    def n_samples(self) -> int:
        return self.samples.shape[0]

    def __repr__(self) -> str:
        d = self.diagnostics
        chi = ", ".join(f"{c:.3g}" for c in d.chi2) or "n/a"
        return (
            f"Result(method={self.method!r}, samples={tuple(self.samples.shape)}, "
            f"std={'yes' if self.std is not None else 'none'}, chi2=[{chi}], wall_time={d.wall_time:.3g}s)"
        )

    # ----- files ---------------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        out = {
            "method": self.method,
            "n_samples": self.n_samples,
            "shape": list(self.mean.shape),
            "diagnostics": self.diagnostics.to_dict(),
        }
        if self.trust is not None:
            out["trust"] = self.trust.summary()
        return out

    def save(
        self,
        folder: str | Path,
        extra: dict[str, Any] | None = None,
        *,
        overwrite: bool = False,
        extra_files: Callable[[Path], None] | None = None,
    ) -> Path:
        """Write ``mean.npy``, ``samples.npy``, ``std.npy``, PNGs (images only) and ``summary.json``.

        Safe and atomic (``invprior._io``): a folder that exists and is not an invprior result is
        refused unless ``overwrite=True``, and even then only the result's own files are replaced;
        an existing file at ``folder`` is an error. Readers (``Result.load``) see the old result or
        the new one, never a mix, also with concurrent writers or a save killed half-way.
        ``extra_files(tmp)`` may add more files (a report, figures) to the same atomic write.
        """
        summary = self.summary()
        if extra:
            summary["extra"] = extra

        def write(tmp: Path) -> None:
            np.save(tmp / "mean.npy", self.mean.cpu().numpy())
            np.save(tmp / "samples.npy", self.samples.cpu().numpy())
            if self.std is not None:
                np.save(tmp / "std.npy", self.std.cpu().numpy())
            if self.mean.dim() == 4 and self.mean.shape[1] in (1, 3):
                B = self.mean.shape[0]
                for b in range(B):
                    suffix = "" if B == 1 else f"_{b}"
                    save_png(self.mean[b], tmp / f"mean{suffix}.png")
                    if self.std is not None:
                        smax = float(self.std[b].max()) or 1.0
                        save_png(self.std[b], tmp / f"std{suffix}.png", 0.0, smax)
                        summary.setdefault("std_png_max", []).append(smax)
                    if self.n_samples > 1:
                        for i in range(min(self.n_samples, _MAX_SAMPLE_PNGS)):
                            save_png(self.samples[i, b], tmp / f"sample{suffix}_{i}.png")
            if extra_files is not None:
                extra_files(tmp)
            (tmp / "summary.json").write_text(json.dumps(_jsonable(summary), indent=2))

        return result_folder_write(folder, write, overwrite=overwrite)

    @classmethod
    def load(cls, folder: str | Path) -> Result:
        """Read a folder written by ``save`` (arrays with ``allow_pickle=False``), under a shared lock
        so that a concurrent save is seen whole or not at all."""

        def read(folder: Path, marker: dict[str, Any] | None) -> Result:
            files = set(marker["files"]) if marker is not None else {p.name for p in folder.iterdir()}
            try:
                summary = json.loads((folder / "summary.json").read_text())
                samples = torch.from_numpy(np.load(folder / "samples.npy", allow_pickle=False))
                mean = torch.from_numpy(np.load(folder / "mean.npy", allow_pickle=False))
                std = torch.from_numpy(np.load(folder / "std.npy", allow_pickle=False)) if "std.npy" in files else None
            except (OSError, ValueError, json.JSONDecodeError) as e:
                raise InvpriorError(f"{folder} is not a readable result folder: {e}") from e
            d = summary.get("diagnostics", {})
            diag = Diagnostics(**{k: v for k, v in d.items() if k in Diagnostics.__dataclass_fields__})
            return cls(samples, mean, std, diag, summary.get("method", ""))

        return result_folder_read(folder, read)


def _jsonable(o: Any) -> Any:
    if isinstance(o, dict):
        return {str(k): _jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_jsonable(v) for v in o]
    if isinstance(o, torch.Tensor):
        return _jsonable(o.detach().cpu().tolist())
    if isinstance(o, (np.generic,)):
        return o.item()
    if isinstance(o, float) and not math.isfinite(o):
        return None
    return o
