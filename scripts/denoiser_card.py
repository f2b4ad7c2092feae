"""Write the zoo card of the shipped learned denoiser from its weights' metadata and the benchmark.

python scripts/denoiser_card.py     # reads invprior/zoo/denoiser-natural.safetensors and
                                    # docs/results/classical.json; writes invprior/zoo/denoiser-natural.json
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from invprior.models.checkpoint import load_weights

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "invprior/zoo/denoiser-natural.safetensors"


def main() -> None:
    _, meta = load_weights(WEIGHTS)
    bench = json.loads((ROOT / "docs/results/classical.json").read_text())
    test = {f"{r['denoiser']}@{r['sigma']}": round(r["mean PSNR"], 2) for r in bench["denoisers"]}
    card = {
        "name": "denoiser-natural",
        "kind": "denoiser",
        "data": "natural images (train split)",
        "architecture": meta["architecture"],
        "config": meta["config"],
        "parameters": meta["params"],
        "dataset": "train-split natural images shipped by scikit-image (see invprior.data.image_names('train')), "
        "native size and x0.5, random 48x48 patches with flips/rotations",
        "noise levels": f"uniform in [0, {meta['train']['sigma_max']}]",
        "command": "invprior train denoiser --out training/denoiser-natural "
        "--export invprior/zoo/denoiser-natural.safetensors --steps 6000 --threads 1",
        "history": "the shipped run started as --steps 10000 with 2 threads and was resumed at step 1000 with the "
        "command above (1 thread, to leave a core free); the cosine learning-rate schedule of its first 1000 steps "
        "therefore followed a 10000-step horizon (lr 1e-3 to 9.8e-4 instead of 1e-3 to 9.3e-4). The resumable "
        "checkpoint was not kept (12 MB).",
        "steps": meta["steps"],
        "train seconds": meta["train_seconds"],
        "training log": "training/denoiser-natural/log.csv",
        "validation PSNR (val images 128x128, EMA weights)": meta["val"],
        "test mean PSNR (test images 256x256; invprior bench classical)": test,
        "headline": f"test PSNR {test['learned@0.05']} / {test['learned@0.1']} dB at sigma 0.05 / 0.1 "
        f"(BM3D {test['BM3D@0.05']} / {test['BM3D@0.1']})",
        "sha256": hashlib.sha256(WEIGHTS.read_bytes()).hexdigest(),
        "size bytes": WEIGHTS.stat().st_size,
    }
    (ROOT / "invprior/zoo/denoiser-natural.json").write_text(json.dumps(card, indent=2) + "\n")
    print(json.dumps(card, indent=2))


if __name__ == "__main__":
    main()
