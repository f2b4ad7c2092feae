"""Small generative models for 28×28 single-channel images in [0, 1], and the classifier of the
Fréchet distance.

- ``ConvVAE``: convolutional encoder ``q(z|x) = N(mu(x), diag(exp(2 logstd(x))))`` and decoder
  ``p(x|z) = N(G(z), diag(s²))`` with a learned per-pixel ``s`` (Kingma & Welling 2014,
  arXiv:1312.6114). The decoder mean ``G(z)`` in [0, 1] is the generator of latent MAP.
- ``DCGAN``: generator ``G(z)`` (transposed convolutions, Radford et al. 2016, arXiv:1511.06434)
  and a spectrally normalised discriminator (Miyato et al. 2018, arXiv:1802.05957), hinge loss.
- ``RealNVP``: multi-scale affine-coupling flow with exact log-density (Dinh et al. 2017,
  arXiv:1605.08803), on logit-transformed dequantised pixels.
- ``Classifier``: a small CNN; its penultimate 128 features define the Fréchet distance.
- ``KLAutoencoder``: the first stage of a latent diffusion model (Rombach et al. 2022,
  arXiv:2112.10752), small: a convolutional encoder to a spatial Gaussian latent ``(C, 7, 7)`` with
  a weak KL penalty towards ``N(0, I)``, and a linear-output decoder.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["Classifier", "ConvVAE", "DCGANDiscriminator", "DCGANGenerator", "KLAutoencoder", "RealNVP"]


# ---------------------------------------------------------------------------------------------- VAE
class ConvVAE(nn.Module):
    def __init__(self, latent: int = 16, width: int = 32):
        super().__init__()
        self.config = {"latent": latent, "width": width}
        self.latent = latent
        w = width
        self.enc = nn.Sequential(
            nn.Conv2d(1, w, 4, 2, 1), nn.SiLU(),  # 14
            nn.Conv2d(w, 2 * w, 4, 2, 1), nn.SiLU(),  # 7
            nn.Conv2d(2 * w, 2 * w, 3, 1, 1), nn.SiLU(),
            nn.Flatten(), nn.Linear(2 * w * 49, 2 * latent),
        )  # fmt: skip
        self.dec_fc = nn.Sequential(nn.Linear(latent, 2 * w * 49), nn.SiLU())
        self.dec = nn.Sequential(
            nn.Conv2d(2 * w, 2 * w, 3, 1, 1), nn.SiLU(),
            nn.ConvTranspose2d(2 * w, 2 * w, 4, 2, 1), nn.SiLU(),  # 14
            nn.ConvTranspose2d(2 * w, w, 4, 2, 1), nn.SiLU(),  # 28
            nn.Conv2d(w, w, 3, 1, 1), nn.SiLU(),
            nn.Conv2d(w, 1, 3, 1, 1),
        )  # fmt: skip
        self.log_s = nn.Parameter(torch.full((1, 1, 28, 28), math.log(0.1)))
        self.width = w

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logstd = self.enc(2 * x - 1).chunk(2, dim=1)
        return mu, logstd.clamp(-8, 4)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        h = self.dec_fc(z).reshape(-1, 2 * self.width, 7, 7)
        return torch.sigmoid(self.dec(h))

    def decoder_log_std(self) -> torch.Tensor:
        return self.log_s.clamp(min=math.log(1e-3))

    def elbo_terms(self, x: torch.Tensor, g: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-image ``(-log p(x|z), KL(q || N(0, I)))`` in nats for one reparameterised draw."""
        mu, logstd = self.encode(x)
        eps = torch.randn(mu.shape, generator=g, dtype=mu.dtype)
        z = mu + logstd.exp() * eps
        mean = self.decode(z)
        ls = self.decoder_log_std()
        nll = (0.5 * ((x - mean) / ls.exp()) ** 2 + ls + 0.5 * math.log(2 * math.pi)).flatten(1).sum(1)
        kl = 0.5 * (mu**2 + (2 * logstd).exp() - 2 * logstd - 1).sum(1)
        return nll, kl

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.decode(z)


# -------------------------------------------------------------------------------- KL autoencoder
class _Res(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.body = nn.Sequential(nn.GroupNorm(8, ch), nn.SiLU(), nn.Conv2d(ch, ch, 3, 1, 1),
                                  nn.GroupNorm(8, ch), nn.SiLU(), nn.Conv2d(ch, ch, 3, 1, 1))  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class KLAutoencoder(nn.Module):
    """``x`` (1, 28, 28) in [0, 1] → ``q(z|x) = N(mu, diag(exp(2 logstd)))`` with ``z`` (C, 7, 7) →
    ``decode(z)`` (1, 28, 28). ``latent_std`` (a buffer, set on the validation split while training)
    is the spread of the latent means: latent diffusion models work on ``mu / latent_std``."""

    def __init__(self, latent_channels: int = 4, width: int = 48):
        super().__init__()
        self.config = {"latent_channels": latent_channels, "width": width}
        self.latent_shape = (latent_channels, 7, 7)
        w = width
        self.enc = nn.Sequential(
            nn.Conv2d(1, w, 3, 1, 1), _Res(w),
            nn.Conv2d(w, 2 * w, 3, 2, 1), _Res(2 * w),  # 14
            nn.Conv2d(2 * w, 2 * w, 3, 2, 1), _Res(2 * w),  # 7
            nn.GroupNorm(8, 2 * w), nn.SiLU(), nn.Conv2d(2 * w, 2 * latent_channels, 3, 1, 1),
        )  # fmt: skip
        self.dec = nn.Sequential(
            nn.Conv2d(latent_channels, 2 * w, 3, 1, 1), _Res(2 * w), _Res(2 * w),
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(2 * w, w, 3, 1, 1), _Res(w),  # 14
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(w, w, 3, 1, 1), _Res(w),  # 28
            nn.GroupNorm(8, w), nn.SiLU(), nn.Conv2d(w, 1, 3, 1, 1),
        )  # fmt: skip
        self.register_buffer("latent_std", torch.ones(()))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logstd = self.enc(2 * x - 1).chunk(2, dim=1)
        return mu, logstd.clamp(-10, 2)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return (self.dec(z) + 1) / 2

    def loss_terms(self, x: torch.Tensor, g: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-image ``(squared reconstruction error summed over pixels, KL(q || N(0, I)))`` for one
        reparameterised draw."""
        mu, logstd = self.encode(x)
        z = mu + logstd.exp() * torch.randn(mu.shape, generator=g, dtype=mu.dtype)
        rec = ((self.decode(z) - x) ** 2).flatten(1).sum(1)
        kl = 0.5 * (mu**2 + (2 * logstd).exp() - 2 * logstd - 1).flatten(1).sum(1)
        return rec, kl

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.decode(z)


# ---------------------------------------------------------------------------------------------- GAN
class DCGANGenerator(nn.Module):
    def __init__(self, latent: int = 32, width: int = 64):
        super().__init__()
        self.config = {"latent": latent, "width": width}
        self.latent, self.width = latent, width
        w = width
        self.fc = nn.Sequential(nn.Linear(latent, 2 * w * 49), nn.BatchNorm1d(2 * w * 49), nn.ReLU())
        self.net = nn.Sequential(
            nn.ConvTranspose2d(2 * w, w, 4, 2, 1), nn.BatchNorm2d(w), nn.ReLU(),  # 14
            nn.ConvTranspose2d(w, w // 2, 4, 2, 1), nn.BatchNorm2d(w // 2), nn.ReLU(),  # 28
            nn.Conv2d(w // 2, 1, 3, 1, 1),
        )  # fmt: skip

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(self.fc(z).reshape(-1, 2 * self.width, 7, 7)))


class DCGANDiscriminator(nn.Module):
    def __init__(self, width: int = 64):
        super().__init__()
        sn = nn.utils.parametrizations.spectral_norm
        w = width
        self.config = {"width": width}
        self.net = nn.Sequential(
            sn(nn.Conv2d(1, w // 2, 3, 1, 1)), nn.LeakyReLU(0.2),
            sn(nn.Conv2d(w // 2, w, 4, 2, 1)), nn.LeakyReLU(0.2),  # 14
            sn(nn.Conv2d(w, 2 * w, 4, 2, 1)), nn.LeakyReLU(0.2),  # 7
            nn.Flatten(), sn(nn.Linear(2 * w * 49, 1)),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(2 * x - 1).squeeze(1)


# --------------------------------------------------------------------------------------------- flow
def squeeze(x: torch.Tensor) -> torch.Tensor:
    b, c, h, w = x.shape
    x = x.reshape(b, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4)
    return x.reshape(b, 4 * c, h // 2, w // 2)


def unsqueeze(x: torch.Tensor) -> torch.Tensor:
    b, c, h, w = x.shape
    x = x.reshape(b, c // 4, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3)
    return x.reshape(b, c // 4, 2 * h, 2 * w)


class Coupling(nn.Module):
    """Affine coupling: the second half of the channels is scaled and shifted by a network of the
    first half (``flip`` swaps the halves). ``log s = scale · tanh(raw)`` keeps it well conditioned."""

    def __init__(self, channels: int, hidden: int, flip: bool):
        super().__init__()
        self.flip = flip
        half = channels // 2
        self.net = nn.Sequential(
            nn.Conv2d(half, hidden, 3, 1, 1), nn.ReLU(),
            nn.Conv2d(hidden, hidden, 1), nn.ReLU(),
            nn.Conv2d(hidden, 2 * half, 3, 1, 1),
        )  # fmt: skip
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)
        self.scale = nn.Parameter(torch.ones(1, half, 1, 1))

    def _st(self, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raw, t = self.net(a).chunk(2, dim=1)
        return self.scale * torch.tanh(raw), t

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = x.chunk(2, dim=1)
        if self.flip:
            a, b = b, a
        log_s, t = self._st(a)
        b = b * log_s.exp() + t
        out = torch.cat([b, a] if self.flip else [a, b], dim=1)
        return out, log_s.flatten(1).sum(1)

    def inverse(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, log|det dx/dy|)``."""
        a, b = y.chunk(2, dim=1)
        if self.flip:
            a, b = b, a
        log_s, t = self._st(a)
        b = (b - t) * (-log_s).exp()
        return torch.cat([b, a] if self.flip else [a, b], dim=1), -log_s.flatten(1).sum(1)


class RealNVP(nn.Module):
    """Two-scale RealNVP on ``(B, 1, 28, 28)``: x in [0, 1] → logit space → squeeze (4×14×14),
    couplings, half the channels factored out, squeeze (8×7×7), couplings. ``forward`` returns the
    784-d latent ``z`` (standard normal under the model) and ``log|det dz/dx|``."""

    def __init__(self, couplings: int = 4, hidden: int = 64, alpha: float = 0.05):
        super().__init__()
        self.config = {"couplings": couplings, "hidden": hidden, "alpha": alpha}
        self.alpha = alpha
        self.level1 = nn.ModuleList([Coupling(4, hidden, flip=bool(i % 2)) for i in range(couplings)])
        self.level2 = nn.ModuleList([Coupling(8, hidden, flip=bool(i % 2)) for i in range(couplings)])
        self.dim = 784

    def _logit(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a = self.alpha
        p = a + (1 - 2 * a) * x
        y = p.log() - (1 - p).log()
        ld = (math.log(1 - 2 * a) - p.log() - (1 - p).log()).flatten(1).sum(1)
        return y, ld

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h, ld = self._logit(x)
        h = squeeze(h)
        for c in self.level1:
            h, d = c(h)
            ld = ld + d
        z1, h = h[:, :2], h[:, 2:]
        h = squeeze(h)
        for c in self.level2:
            h, d = c(h)
            ld = ld + d
        return torch.cat([z1.flatten(1), h.flatten(1)], dim=1), ld

    def inverse(self, z: torch.Tensor, logdet: bool = False):
        """``x = f⁻¹(z)``; with ``logdet`` also ``log|det dx/dz|`` (computed on the way, stable where
        the sigmoid saturates: ``log p(x) = log N(z) - log|det dx/dz|``)."""
        b = z.shape[0]
        z1, h = z[:, :392].reshape(b, 2, 14, 14), z[:, 392:].reshape(b, 8, 7, 7)
        ld = z.new_zeros(b)
        for c in reversed(self.level2):
            h, d = c.inverse(h)
            ld = ld + d
        h = torch.cat([z1, unsqueeze(h)], dim=1)
        for c in reversed(self.level1):
            h, d = c.inverse(h)
            ld = ld + d
        h = unsqueeze(h)
        x = (torch.sigmoid(h) - self.alpha) / (1 - 2 * self.alpha)
        if not logdet:
            return x
        # d sigmoid(h)/dh = sigmoid(h) sigmoid(-h) = exp(-softplus(-h) - softplus(h))
        ld = ld - (F.softplus(-h) + F.softplus(h)).flatten(1).sum(1) - self.dim * math.log(1 - 2 * self.alpha)
        return x, ld

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact ``log p(x)`` in nats per image (density on [0, 1]^784)."""
        z, ld = self.forward(x)
        return -0.5 * (z**2).sum(1) - 0.5 * self.dim * math.log(2 * math.pi) + ld


# ------------------------------------------------------------------------------------- classifier
class Classifier(nn.Module):
    def __init__(self, classes: int = 10, width: int = 32, features: int = 128):
        super().__init__()
        self.config = {"classes": classes, "width": width, "features": features}
        w = width
        self.body = nn.Sequential(
            nn.Conv2d(1, w, 3, 1, 1), nn.ReLU(), nn.Conv2d(w, w, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(w, 2 * w, 3, 1, 1), nn.ReLU(), nn.Conv2d(2 * w, 2 * w, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Dropout(0.25), nn.Linear(2 * w * 49, features), nn.ReLU(),
        )  # fmt: skip
        self.head = nn.Sequential(nn.Dropout(0.25), nn.Linear(features, classes))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))
