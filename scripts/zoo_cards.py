"""Write the JSON cards of the shipped generative models from their weights' metadata, their
training logs and the zoo benchmark (docs/results/zoo.json).

python scripts/zoo_cards.py                      # every invprior/zoo/KIND-*.safetensors of the KINDS below
python scripts/zoo_cards.py diffusion-kernels    # only the named ones
"""

from __future__ import annotations

import hashlib
import json
import shlex
from pathlib import Path

from invprior.models.checkpoint import load_weights

ROOT = Path(__file__).resolve().parents[1]
ZOO = ROOT / "invprior/zoo"
KINDS = ("diffusion", "vae", "gan", "flow", "classifier", "e2e", "cfm", "fm", "ae", "ldm")


def command(name: str, meta: dict) -> str:
    tr = meta["train"]
    cmd = (f"invprior train {tr['kind']} --data {tr['data']} --out training/{name} "
           f"--export invprior/zoo/{name}.safetensors --steps {tr['steps']} --threads 1")  # fmt: skip
    if tr.get("batch", 64) != 64:
        cmd += f" --batch {tr['batch']}"
    for k, v in (tr.get("options") or {}).items():
        cmd += " -o " + shlex.quote(f"{k}={json.dumps(v)}")
    return cmd


def headline(kind: str, q: dict, val: dict) -> str:
    parts = []
    if "FD" in q:
        parts.append(f"FD {q['FD']} (floor {q['FD floor (train vs test)']})")
    for k in ("test bpd", "test bpd (ELBO bound)"):
        if k in q:
            parts.append(f"{q[k]} bits/dim{' (bound)' if 'ELBO' in k else ''}")
    if "denoise PSNR@0.2" in q:
        parts.append(f"D(x, 0.2) {q['denoise PSNR@0.2']} dB vs Wiener {q['Wiener PSNR@0.2']}")
    if not parts and kind == "diffusion" and val:  # no zoo benchmark (natural crops): the validation PSNRs
        parts.append("val denoising " + ", ".join(f"{k} {v:.2f} dB" for k, v in val.items()))
    if kind in ("e2e", "cfm") and val:
        what = "one draw, 10 Euler steps" if kind == "cfm" else "the estimate"
        parts.append(f"val PSNR of {what} per task (family draws): " + ", ".join(
            f"{k.removeprefix('psnr_')} {v:.2f} dB" for k, v in val.items()))  # fmt: skip
    if kind == "fm" and not parts and val:
        parts.append("val denoising through the change of variables " + ", ".join(
            f"{k} {v:.2f} dB" for k, v in val.items()))  # fmt: skip
    if "floor (train kernels)" in q:
        parts.append(f"samples' median nearest-test kernel error {q['median nearest-test kernel error of samples']}"
                     f" (train kernels: {q['floor (train kernels)']})")  # fmt: skip
    if kind == "ae" and "test recon PSNR" in q:
        parts.append(f"test reconstruction {q['test recon PSNR']} dB (latent {q['latent shape']})")
    if kind == "ldm" and not parts and val:
        parts.append("val: decoded denoised latents " + ", ".join(f"{k} {v:.2f} dB" for k, v in val.items()))
    if kind == "classifier" and "accuracy" in val:
        parts.append(f"val accuracy {val['accuracy']:.3f}")
    return "; ".join(parts)


def autoencoder_quality(w: Path, data: str) -> dict:
    import torch

    from invprior.data import dataset
    from invprior.eval import psnr
    from invprior.models.tasks import load_autoencoder

    ae, _ = load_autoencoder(str(w))
    x = dataset(data, "test")
    with torch.no_grad():
        rec = torch.cat([ae.decode(ae.encode(x[i : i + 500])[0]) for i in range(0, len(x), 500)]).clamp(0, 1)
    return {"test recon PSNR": round(psnr(rec, x), 2), "test images": len(x), "latent shape": list(ae.latent_shape),
            "latent_std": round(float(ae.latent_std), 4)}  # fmt: skip


def kernel_quality(name: str) -> dict:
    """The learned kernel prior's own test: 500 prior samples (Heun, 18 steps) as kernels, each one's
    nearest test kernel (``kernel_error``, up to 2-px shifts); the same for 500 train kernels gives
    the floor. Writes the sample grid to docs/results/zoo/NAME-samples.png."""
    import torch

    from invprior import zoo
    from invprior._io import save_png
    from invprior.data.datasets import dataset
    from invprior.eval.bench_zoo import _grid
    from invprior.operators.kernels import image_to_kernel, kernel_error

    prior = zoo.load(name)
    z = prior.sample(500, seed=0)
    save_png(_grid(z.clamp(0, 1)), ROOT / "docs/results/zoo" / f"{name}-samples.png")
    test = image_to_kernel(dataset("kernels", "test")[:, 0].double())
    train = image_to_kernel(dataset("kernels", "train")[:500, 0].double())

    def nearest(ks: torch.Tensor) -> float:
        return float(torch.stack([kernel_error(k.expand_as(test), test).min() for k in ks]).median())

    return {"median nearest-test kernel error of samples": round(nearest(image_to_kernel(z[:, 0].double())), 3),
            "floor (train kernels)": round(nearest(train), 3)}  # fmt: skip


def main(only: list[str]) -> None:
    bench_path = ROOT / "docs/results/zoo.json"
    bench = {r["model"]: r for r in json.loads(bench_path.read_text())["rows"]} if bench_path.exists() else {}
    for w in sorted(ZOO.glob("*.safetensors")):
        name = w.stem
        if not name.startswith(KINDS) or (only and name not in only):
            continue
        _, meta = load_weights(w)
        q = {k: v for k, v in bench.get(name, {}).items() if k not in ("model", "kind", "data")}
        if meta["kind"] == "ae":  # the autoencoder's own test: reconstruction of the whole test split
            q = autoencoder_quality(w, meta["data"])
        if meta["data"] == "kernels":
            q = kernel_quality(name)
        card = {
            "name": name,
            "kind": meta["kind"],
            "data": meta["data"],
            "dataset": f"{meta['data']} train split (invprior.data.dataset('{meta['data']}', 'train')), "
            f"fingerprint {meta.get('data_fingerprint')}",
            "architecture": meta["architecture"],
            "config": meta["config"],
            "parameters": meta["params"],
            "command": command(name, meta),
            "steps": meta["steps"],
            "batch": meta["train"]["batch"],
            "train seconds": meta["train_seconds"],
            "training log": f"training/{name}/log.csv",
            "validation (val split, fixed seed)": meta["val"],
            "quality (invprior bench zoo, test split)": q,
            "headline": headline(meta["kind"], q, meta["val"]),
            "sha256": hashlib.sha256(w.read_bytes()).hexdigest(),
            "size bytes": w.stat().st_size,
        }
        old = ZOO / f"{name}.json"
        if old.exists():  # what other scripts wrote (tuned sampler defaults, quality sections): kept
            for k, v in json.loads(old.read_text()).items():
                card.setdefault(k, v)
        (ZOO / f"{name}.json").write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n")
        print(name, card["headline"])


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
