"""Diffusion priors in the one view every sampler uses: ``x_sigma = x0 + sigma · eps``.

A ``Diffusion`` wraps a denoiser ``D(x, sigma) ≈ E[x0 | x_sigma = x]`` with its noise range; the
score is ``(D(x, sigma) - x) / sigma²`` (Tweedie). Variance-preserving (DDPM) networks
``eps(x_t, t)`` with ``x_t = a_t x0 + sqrt(1 - a_t²) eps`` are wrapped once, here, through

    x = x_t / a_t,   sigma = sqrt(1 - a_t²) / a_t,   D(x, sigma) = x - sigma · eps(a_t x, t)

(Karras et al. 2022, arXiv:2206.00364, Table 1). Samplers iterate over ``schedule(steps)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import torch

from .._checks import InvpriorError

__all__ = ["Diffusion", "alphas_cumprod_from_config"]


class Diffusion:
    """A diffusion prior: ``denoise(x, sigma)``, ``score(x, sigma)``, ``schedule(steps)``.

    ``denoiser`` takes ``(x, sigma)`` with ``sigma`` a ``(batch,)`` tensor. ``shape`` is the shape of
    one sample (``(d,)`` or ``(C, H, W)``). ``rho`` sets the Karras spacing of the schedule.
    """

    def __init__(
        self,
        denoiser: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        sigma_min: float,
        sigma_max: float,
        shape: tuple[int, ...],
        rho: float = 7.0,
        name: str = "diffusion",
    ):
        if not 0 < sigma_min < sigma_max:
            raise InvpriorError(f"need 0 < sigma_min < sigma_max, got {sigma_min}, {sigma_max}")
        self._D = denoiser
        self.sigma_min, self.sigma_max, self.rho = float(sigma_min), float(sigma_max), float(rho)
        self.shape = tuple(int(s) for s in shape)
        self.name = name
        self.nfe = 0  # denoiser evaluations so far (samplers report the difference)
        self.info: dict = {}
        self.any_size = False  # a fully convolutional denoiser: ``at_shape`` may change H, W and channels

    def at_shape(self, shape: tuple[int, ...], per_channel: bool = False) -> Diffusion:
        """This prior for images of ``shape`` ``(C, H, W)``. Only for a fully convolutional model
        (``any_size``, e.g. the zoo's ``diffusion-natural``): it runs at any H×W. On colour images a grey
        model whose card names a colour sibling (``diffusion-natural`` → ``diffusion-natural-colour``,
        measured better on every row of docs/results/natural-colour.md) hands over to that RGB model,
        loaded once on the same device and dtype; otherwise, or with ``per_channel=True``, the grey model
        runs on each of C channels on its own (the channels are independent draws of the grey prior: no
        colour correlations). The copy shares the network and counts its own evaluations."""
        shape = tuple(int(s) for s in shape)
        if shape == self.shape:
            return self
        load_sibling = getattr(self, "colour_sibling", None)  # set by zoo.load from the card's "colour model"
        if self.any_size and load_sibling and not per_channel and len(shape) == 3 and shape[0] == 3 != self.shape[0]:
            if getattr(self, "_colour", None) is None:
                self._colour = load_sibling()
                if getattr(self, "_patch_args", None):  # a patch-assembled prior stays one
                    self._colour = self._colour.patches(*self._patch_args)
            return self._colour.at_shape(shape)
        if not self.any_size:
            raise InvpriorError(
                f"{self.name} makes {self.shape} samples and is not fully convolutional: it cannot run at {shape}"
            )
        if len(shape) != 3 or min(shape) < 1:
            raise InvpriorError(f"shape must be (C, H, W), got {shape}")
        c0, c = self.shape[0], shape[0]
        if c != c0 and c0 != 1:
            raise InvpriorError(f"{self.name} is a {c0}-channel model; it cannot run on {c}-channel images")
        D0 = self._D
        if c == c0:
            D = D0
        else:

            def D(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:  # channel by channel
                b = x.shape[0]
                out = D0(x.reshape(b * c, 1, *x.shape[2:]), sigma.repeat_interleave(c))
                return out.reshape(x.shape)

        out = Diffusion(D, self.sigma_min, self.sigma_max, shape, self.rho, self.name)
        out.info, out.any_size = self.info, True
        if hasattr(self, "module"):
            out.module = self.module
        return out

    def patches(self, size: int = 64, seed: int = 0, pad: str = "reflect") -> Diffusion:
        """PaDIS-style patch assembly (Hu et al. 2024): every call of ``D(x, sigma)`` pads the image,
        cuts it into non-overlapping ``size``×``size`` tiles on a grid shifted at random (a new shift each
        call, from ``seed``), denoises the tiles as a batch and puts the centre back together; each pixel
        is denoised in exactly one tile. ``pad``: ``"reflect"`` (default; zeros when the pad exceeds the
        image) or ``"zeros"`` (PaDIS, whose patch model is trained on zero-padded patches). Only for a fully
        convolutional prior (``any_size``); the copy runs at any shape and counts its own evaluations.
        Our models have no coordinate channels (PaDIS's optional position input) and were trained on whole
        64² crops: measured on camera 128² at sigma 0.1, one denoising call gave 30.48 dB whole, 29.7-30.3
        with 32²/64² reflect-padded tiles and 27.1-29.3 zero-padded (the zero borders are out of the
        training distribution). Tiles bound the memory of one call on large images."""
        if not self.any_size:
            raise InvpriorError(f"{self.name} is not fully convolutional: it has no patch scheme")
        if int(size) < 8:
            raise InvpriorError(f"patch size must be >= 8 pixels, got {size}")
        if pad not in ("zeros", "reflect"):
            raise InvpriorError(f"pad must be 'zeros' or 'reflect', got {pad!r}")
        p, D0 = int(size), self._D
        g = torch.Generator().manual_seed(seed)

        def D(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
            b, c, h, w = x.shape
            sy, sx = (int(v) for v in torch.randint(0, p, (2,), generator=g))
            H, W = -(-(h + sy) // p) * p, -(-(w + sx) // p) * p
            padding = (sx, W - w - sx, sy, H - h - sy)
            if pad == "reflect" and max(padding) < min(h, w):
                xp = torch.nn.functional.pad(x, padding, mode="reflect")
            else:
                xp = torch.nn.functional.pad(x, padding)
            ny, nx = H // p, W // p
            tiles = xp.reshape(b, c, ny, p, nx, p).permute(0, 2, 4, 1, 3, 5).reshape(b * ny * nx, c, p, p)
            out = D0(tiles, sigma.repeat_interleave(ny * nx))
            out = out.reshape(b, ny, nx, c, p, p).permute(0, 3, 1, 4, 2, 5).reshape(b, c, H, W)
            return out[..., sy : sy + h, sx : sx + w]

        out = Diffusion(D, self.sigma_min, self.sigma_max, self.shape, self.rho, f"{self.name}-patches{p}")
        out.info, out.any_size, out._patch_args = self.info, True, (p, seed, pad)
        out.colour_sibling = getattr(self, "colour_sibling", None)
        if hasattr(self, "module"):
            out.module = self.module
        return out

    def __repr__(self) -> str:
        return f"Diffusion({self.name!r}, sigma in [{self.sigma_min:g}, {self.sigma_max:g}], shape={self.shape})"

    @classmethod
    def from_denoiser(cls, denoiser, sigma_min: float, sigma_max: float, shape=None, name: str | None = None):
        """Wrap any object with ``denoise(x, sigma)`` (e.g. a ``GaussianMixture``: exact denoiser)."""
        shape = shape if shape is not None else getattr(denoiser, "shape", None)
        if shape is None:
            raise InvpriorError("give the sample shape of this denoiser")
        return cls(denoiser.denoise, sigma_min, sigma_max, shape, name=name or type(denoiser).__name__)

    @classmethod
    def from_module(cls, module, sigma_min: float, sigma_max: float, shape, name: str = "diffusion", info=None):
        """Wrap a network ``module(x, sigma) -> D``. It runs where its weights are (device and dtype;
        float32 for a plain callable): inputs are moved and cast for the call and the output comes back
        on the input's device and in its dtype (gradients flow through the casts)."""
        from .._device import run_on

        def D(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
            return module(run_on(module, x), run_on(module, sigma)).to(x.device, x.dtype)

        out = cls(D, sigma_min, sigma_max, shape, name=name)
        out.info = info or {}
        out.module = module
        return out

    @classmethod
    def from_vp(
        cls,
        model: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        alphas_cumprod: torch.Tensor,
        shape: tuple[int, ...],
        name: str = "vp",
        prediction: str = "epsilon",
        data_range: tuple[float, float] = (0.0, 1.0),
    ) -> Diffusion:
        """Wrap a variance-preserving (DDPM) network ``model(x_t, t)`` (``t`` integer timesteps) and its
        ``alphas_cumprod`` (``a_t² = alphas_cumprod[t]``) into the sigma view. ``prediction`` is what the
        network outputs: ``"epsilon"`` (``D = x - sigma eps``), ``"v_prediction"`` (``v = a eps - s x0``,
        so ``D = a x_t - s v`` with ``s = sqrt(1 - a²)``) or ``"sample"`` (``D = x0``). Between the
        discrete timesteps the noise level is mapped to the nearest ``t`` in log-sigma.

        ``data_range`` is the range the network was trained on; with ``(-1, 1)`` (diffusers' models)
        the prior still takes and returns [0, 1] images: ``D01(x, s) = (D(2x - 1, 2s) + 1) / 2``."""
        if prediction not in ("epsilon", "v_prediction", "sample"):
            raise InvpriorError(f"prediction must be epsilon, v_prediction or sample, got {prediction!r}")
        lo, hi = data_range
        scale = hi - lo
        ac = torch.as_tensor(alphas_cumprod, dtype=torch.float64)
        sig = ((1 - ac) / ac).sqrt()  # increasing in t
        log_sig = sig.log()

        def D_net(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
            s = sigma.to(torch.float64).reshape(-1)
            t = (log_sig[None, :] - s.log()[:, None]).abs().argmin(dim=1)
            shp = (-1, *([1] * (x.dim() - 1)))
            a = ac[t].sqrt().to(x.dtype).reshape(shp)
            sg = sig[t].to(x.dtype).reshape(shp)
            xt = a * x
            out = model(xt, t.to(x.device))
            if prediction == "epsilon":
                return x - sg * out
            if prediction == "v_prediction":
                return a * xt - (1 - a**2).sqrt() * out
            return out

        def D(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
            if scale == 1.0 and lo == 0.0:
                return D_net(x, sigma)
            return (D_net(lo + scale * x, scale * sigma) - lo) / scale

        return cls(D, float(sig[0]) / scale, float(sig[-1]) / scale, shape, name=name)

    @classmethod
    def from_diffusers(
        cls, folder: str | Path, name: str | None = None, device: str | torch.device | None = None,
        torch_dtype: torch.dtype | None = None, dtype: torch.dtype | None = None,
    ) -> Diffusion:  # fmt: skip
        """Load a local diffusers ``UNet2DModel`` with its DDPM/DDIM scheduler into the sigma view.

        ``folder`` is a pipeline folder (``unet/`` + ``scheduler/scheduler_config.json``) or a model
        folder with the scheduler config beside it. The scheduler's betas (``linear``,
        ``scaled_linear`` or ``squaredcos_cap_v2``) give ``alphas_cumprod``; its ``prediction_type``
        (``epsilon``, ``v_prediction``, ``sample``) picks the conversion. diffusers models work on
        [-1, 1] images; the prior takes [0, 1]. A non-square ``sample_size`` ``[H, W]`` is kept.
        ``device``/``dtype`` (or diffusers' name ``torch_dtype``) place the network (inputs are moved
        and cast to it, outputs come back on the input's device and in its dtype). diffusers' own
        load-time warnings are silenced. Needs the optional extra ``invprior[diffusers]``.
        """
        import json

        from .._device import check_device, check_dtype

        if dtype is not None and torch_dtype is not None and dtype != torch_dtype:
            raise InvpriorError(f"give dtype= or torch_dtype=, not both ({dtype} and {torch_dtype})")
        device, torch_dtype = check_device(device), check_dtype(dtype if dtype is not None else torch_dtype)

        try:
            from diffusers import UNet2DModel
        except ImportError:
            raise InvpriorError(
                "from_diffusers needs the diffusers package: pip install 'invprior[diffusers]'"
            ) from None
        folder = Path(folder)
        unet_dir = folder / "unet" if (folder / "unet").is_dir() else folder
        sched = None
        for cand in (folder / "scheduler" / "scheduler_config.json", folder / "scheduler_config.json",
                     unet_dir / "scheduler_config.json"):  # fmt: skip
            if cand.is_file():
                sched = json.loads(cand.read_text())
                break
        if sched is None:
            raise InvpriorError(f"no scheduler_config.json under {folder} (looked in scheduler/ and beside the model)")
        if not (unet_dir / "config.json").is_file():
            raise InvpriorError(f"no UNet2DModel config.json in {unet_dir}")
        from diffusers.utils import logging as dlog

        level = dlog.get_verbosity()
        dlog.set_verbosity_error()
        try:
            kw = {} if torch_dtype is None else {"torch_dtype": torch_dtype}  # diffusers casts it quietly
            net = UNet2DModel.from_pretrained(str(unet_dir), use_safetensors=True, **kw).eval()
        finally:
            dlog.set_verbosity(level)
        if device is not None:
            from .._device import place

            try:
                net = place(net, device)
            except (RuntimeError, TypeError, ValueError) as e:
                raise InvpriorError(f"cannot place the model on device={device!r}, dtype={torch_dtype!r}: {e}") from e
        for p in net.parameters():
            p.requires_grad_(False)
        ac = alphas_cumprod_from_config(sched)
        size = net.config.sample_size
        h, w = (int(size[0]), int(size[1])) if isinstance(size, (list, tuple)) else (int(size), int(size))
        shape = (int(net.config.in_channels), h, w)
        p0 = next(net.parameters())

        def model(xt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            return net(xt.to(p0.device, p0.dtype), t.to(p0.device)).sample.to(xt.device, xt.dtype)

        out = cls.from_vp(model, ac, shape, name=name or folder.name,
                          prediction=sched.get("prediction_type", "epsilon"), data_range=(-1.0, 1.0))  # fmt: skip
        out.module = net
        return out

    def _sig(self, x: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
        s = torch.as_tensor(sigma, dtype=x.dtype, device=x.device).flatten()
        return s.expand(x.shape[0]) if s.numel() == 1 else s

    def denoise(self, x: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
        self.nfe += 1  # one batched network call
        return self._D(x, self._sig(x, sigma))

    __call__ = denoise

    def score(self, x: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
        s = self._sig(x, sigma).reshape(-1, *([1] * (x.dim() - 1)))
        return (self.denoise(x, sigma) - x) / s**2

    def schedule(self, steps: int, sigma_max: float | None = None, sigma_min: float | None = None) -> torch.Tensor:
        """``steps + 1`` decreasing noise levels: Karras spacing from ``sigma_max`` to ``sigma_min``, then 0."""
        if steps < 1:
            raise InvpriorError(f"steps must be >= 1, got {steps}")
        hi = self.sigma_max if sigma_max is None else sigma_max
        lo = self.sigma_min if sigma_min is None else sigma_min
        r = 1.0 / self.rho
        i = torch.arange(steps, dtype=torch.float64) / max(steps - 1, 1)
        s = (hi**r + i * (lo**r - hi**r)) ** self.rho
        return torch.cat([s, torch.zeros(1, dtype=torch.float64)])

    def sample(
        self,
        n: int,
        steps: int = 18,
        seed: int | torch.Generator | None = 0,
        batch: int = 500,
        progress: bool = False,
        solver: str = "heun",
    ) -> torch.Tensor:
        """``n`` unconditional samples by the deterministic Heun sampler of Karras et al. 2022
        (Algorithm 1; ``2 steps - 1`` denoiser calls per sample), from ``sigma_max`` noise;
        ``solver="euler"``: the Euler (DDIM) step alone, ``steps`` calls."""
        from tqdm import tqdm

        from .._checks import make_generator

        if solver not in ("heun", "euler"):
            raise InvpriorError(f"solver must be 'heun' or 'euler', got {solver!r}")
        g = make_generator(seed)
        sig = self.schedule(steps)
        out = []
        for i in tqdm(range(0, n, batch), desc=f"sample {self.name}", disable=not progress):
            x = self.sample_prior_noise(min(batch, n - i), g, torch.float32)
            with torch.no_grad():
                for k in range(steps):
                    s, s_next = float(sig[k]), float(sig[k + 1])
                    d = (x - self.denoise(x, s)) / s
                    x_next = x + (s_next - s) * d
                    if s_next > 0 and solver == "heun":
                        d2 = (x_next - self.denoise(x_next, s_next)) / s_next
                        x_next = x + (s_next - s) * 0.5 * (d + d2)
                    x = x_next
            out.append(x)
        return torch.cat(out)

    def sample_prior_noise(self, n: int, g: torch.Generator, dtype=torch.float64) -> torch.Tensor:
        return self.sigma_max * torch.randn((n, *self.shape), generator=g, dtype=dtype)


def alphas_cumprod_from_config(cfg: dict) -> torch.Tensor:
    """``alphas_cumprod`` of a diffusers DDPM/DDIM scheduler config (float64)."""
    n = int(cfg.get("num_train_timesteps", 1000))
    kind = cfg.get("beta_schedule", "linear")
    b0, b1 = float(cfg.get("beta_start", 1e-4)), float(cfg.get("beta_end", 0.02))
    if cfg.get("trained_betas") is not None:
        betas = torch.tensor(cfg["trained_betas"], dtype=torch.float64)
    elif kind == "linear":
        betas = torch.linspace(b0, b1, n, dtype=torch.float64)
    elif kind == "scaled_linear":
        betas = torch.linspace(b0**0.5, b1**0.5, n, dtype=torch.float64) ** 2
    elif kind == "squaredcos_cap_v2":
        f = lambda t: math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
        betas = torch.tensor([min(1 - f((i + 1) / n) / f(i / n), 0.999) for i in range(n)], dtype=torch.float64)
    else:
        raise InvpriorError(f"unsupported beta_schedule {kind!r} (linear, scaled_linear, squaredcos_cap_v2)")
    return torch.cumprod(1 - betas, dim=0)
