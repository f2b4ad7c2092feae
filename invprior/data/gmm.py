"""Gaussian mixtures: a prior with closed-form denoiser, score, samples and exact posterior.

In the sigma view of DESIGN (``x_sigma = x0 + sigma · eps``) the diffused density is again a
mixture, ``p_sigma = sum_k w_k N(mu_k, Sigma_k + sigma² I)``, so

    D(x, sigma) = E[x0 | x_sigma = x] = sum_k gamma_k(x) (mu_k + Sigma_k (Sigma_k + sigma² I)^{-1} (x - mu_k))
    score(x, sigma) = (D(x, sigma) - x) / sigma²                       (Tweedie)

with responsibilities ``gamma_k(x) ∝ w_k N(x; mu_k, Sigma_k + sigma² I)``. For ``y = A x + n``,
``n ~ N(0, sigma_y² I)`` and linear ``A`` the posterior is the mixture with

    Sigma'_k = Sigma_k - G_k A Sigma_k,   mu'_k = mu_k + G_k (y - A mu_k),
    G_k = Sigma_k A^T S_k^{-1},  S_k = A Sigma_k A^T + sigma_y² I,  w'_k ∝ w_k N(y; A mu_k, S_k).

This is the oracle every sampler is tested against (Cardoso et al. 2024, arXiv:2308.07983).
"""

from __future__ import annotations

import math

import torch

from .._checks import InvpriorError, make_generator

__all__ = ["GaussianMixture"]

_DENSE_LIMIT = 8192


def _as_sigma2(sigma: float | torch.Tensor, b: int) -> torch.Tensor:
    s = torch.as_tensor(sigma, dtype=torch.float64)
    if s.dim() == 0:
        s = s.expand(b)
    if s.shape != (b,):
        raise InvpriorError(f"sigma must be a float or a (batch,) tensor, got shape {tuple(s.shape)}")
    if bool((s < 0).any()):
        raise InvpriorError("sigma must be >= 0")
    return (s * s).reshape(b, 1, 1)


class GaussianMixture:
    """``p(x) = sum_k w_k N(x; mu_k, Sigma_k)`` over vectors ``(d,)`` or images of shape ``shape``.

    ``covs``: ``None`` (identity), a float or ``(K,)`` (isotropic ``v_k I``), ``(d, d)`` (shared
    full covariance) or ``(K, d, d)``. Inputs are ``(batch, *shape)``; all arithmetic is float64 and
    results come back in the input's dtype. Implements the denoiser contract ``D(x, sigma)``.
    """

    def __init__(
        self,
        weights: torch.Tensor,
        means: torch.Tensor,
        covs: torch.Tensor | float | None = None,
        shape: tuple[int, ...] | None = None,
    ):
        w = torch.as_tensor(weights, dtype=torch.float64).flatten()
        mu = torch.as_tensor(means, dtype=torch.float64)
        if mu.dim() == 1:
            mu = mu[None]
        K, d = mu.shape
        if w.numel() != K or bool((w < 0).any()) or float(w.sum()) <= 0:
            raise InvpriorError(f"weights must be {K} nonnegative numbers with a positive sum")
        self.weights = w / w.sum()
        self.means = mu
        self.shape = (d,) if shape is None else tuple(int(s) for s in shape)
        if math.prod(self.shape) != d:
            raise InvpriorError(f"shape {self.shape} has {math.prod(self.shape)} entries but the means have {d}")
        self.Q: torch.Tensor | None = None  # eigenvectors: None (identity), (1, d, d) shared or (K, d, d)
        if covs is None:
            self.lam = torch.ones(K, 1, dtype=torch.float64)
        else:
            c = torch.as_tensor(covs, dtype=torch.float64)
            if c.dim() == 0 or (c.dim() == 1 and c.numel() in (1, K)):
                self.lam = c.reshape(-1, 1).expand(K, 1).clone()
            elif c.dim() in (2, 3) and c.shape[-2:] == (d, d):
                c = c[None] if c.dim() == 2 else c
                if c.shape[0] not in (1, K):
                    raise InvpriorError(f"covs must have 1 or {K} matrices, got {c.shape[0]}")
                c = 0.5 * (c + c.transpose(-1, -2))
                lam, Q = torch.linalg.eigh(c)
                self.lam = lam.clamp_min(0.0)
                self.Q = Q
                if c.shape[0] == 1:
                    self.lam = self.lam.expand(K, d).clone()
            else:
                raise InvpriorError(f"covs must be None, a float, (K,), (d, d) or (K, d, d); got {tuple(c.shape)}")
        if bool((self.lam < 0).any()):
            raise InvpriorError("covariances must be positive semi-definite")

    # ----- basics ------------------------------------------------------------------------------
    @property
    def K(self) -> int:
        return self.means.shape[0]

    @property
    def d(self) -> int:
        return self.means.shape[1]

    @property
    def isotropic(self) -> bool:
        return self.Q is None and self.lam.shape[1] == 1

    def __repr__(self) -> str:
        kind = "isotropic" if self.isotropic else "full"
        return f"GaussianMixture(K={self.K}, d={self.d}, shape={self.shape}, {kind} covariances)"

    def covariances(self) -> torch.Tensor:
        """``(K, d, d)`` covariance matrices (dense)."""
        lam = self.lam.expand(self.K, self.d)
        if self.Q is None:
            return torch.diag_embed(lam)
        Q = self.Q.expand(self.K, self.d, self.d)
        return Q @ torch.diag_embed(lam) @ Q.transpose(-1, -2)

    def mean(self) -> torch.Tensor:
        return (self.weights @ self.means).reshape(self.shape)

    def covariance(self) -> torch.Tensor:
        """The mixture's total covariance ``(d, d)``."""
        m = self.weights @ self.means
        dev = self.means - m
        return (self.weights[:, None, None] * (self.covariances() + dev[:, :, None] * dev[:, None, :])).sum(0)

    def _flat(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[1:]) != self.shape:
            raise InvpriorError(
                f"input has shape {tuple(x.shape)}, expected (batch, {', '.join(map(str, self.shape))})"
            )
        return x.reshape(x.shape[0], -1).to(torch.float64)

    def _proj(self, v: torch.Tensor) -> torch.Tensor:
        """``Q_k^T (x - mu_k)`` for every component: ``(b, d) -> (b, K, d)``."""
        if self.Q is None:
            return v[:, None, :] - self.means[None]
        if self.Q.shape[0] == 1:
            return (v @ self.Q[0])[:, None, :] - (self.means @ self.Q[0])[None]
        return torch.einsum("bkd,kde->bke", v[:, None, :] - self.means[None], self.Q)

    def _unproj(self, z: torch.Tensor) -> torch.Tensor:
        """``Q_k z_k``: ``(b, K, d) -> (b, K, d)``."""
        if self.Q is None:
            return z
        if self.Q.shape[0] == 1:
            return z @ self.Q[0].T
        return torch.einsum("bke,kde->bkd", z, self.Q)

    def _log_joint(self, v: torch.Tensor, s2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``log w_k + log N(x; mu_k, Sigma_k + s2 I)``: ``(b, K)``, plus the projections (non-iso)."""
        var = self.lam[None] + s2  # (b, K, d or 1)
        if bool((var <= 0).any()):
            raise InvpriorError("a component with zero covariance has no density at sigma = 0; use sigma > 0")
        d = self.d
        if self.isotropic:
            # ||x - mu_k||² by matmul, without a (b, K, d) tensor
            dist = (v * v).sum(1, keepdim=True) - 2 * v @ self.means.T + (self.means**2).sum(1)[None]
            v_ = var[..., 0]
            logn = -0.5 * dist.clamp_min(0) / v_ - 0.5 * d * torch.log(2 * math.pi * v_)
            return torch.log(self.weights)[None] + logn, None
        z = self._proj(v)
        logn = -0.5 * (z * z / var).sum(-1) - 0.5 * torch.log(2 * math.pi * var).expand(-1, -1, d).sum(-1)
        return torch.log(self.weights)[None] + logn, z

    # ----- density, denoiser, score --------------------------------------------------------------
    def log_prob(self, x: torch.Tensor, sigma: float | torch.Tensor = 0.0) -> torch.Tensor:
        """``log p_sigma(x)`` per batch element (``sigma = 0``: the prior itself). Differentiable."""
        v = self._flat(x)
        lj, _ = self._log_joint(v, _as_sigma2(sigma, v.shape[0]).to(v.device))
        return torch.logsumexp(lj, dim=1).to(x.dtype)

    def responsibilities(self, x: torch.Tensor, sigma: float | torch.Tensor = 0.0) -> torch.Tensor:
        v = self._flat(x)
        lj, _ = self._log_joint(v, _as_sigma2(sigma, v.shape[0]))
        return torch.softmax(lj, dim=1)

    def denoise(self, x: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
        """``D(x, sigma) = E[x0 | x0 + sigma · eps = x]`` in closed form (the MMSE denoiser)."""
        v = self._flat(x)
        s2 = _as_sigma2(sigma, v.shape[0])
        lj, z = self._log_joint(v, s2)
        gam = torch.softmax(lj, dim=1)  # (b, K)
        if self.isotropic:
            c = self.lam[None, :, 0] / (self.lam[None, :, 0] + s2[..., 0])  # (b, K) shrinkage
            out = (gam * c).sum(1, keepdim=True) * v + (gam * (1 - c)) @ self.means
        else:
            c = self.lam[None] / (self.lam[None] + s2)  # (b, K, d)
            out = gam @ self.means + (gam[..., None] * self._unproj(c * z)).sum(1)
        return out.reshape(x.shape).to(x.dtype)

    __call__ = denoise

    def score(self, x: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
        """``∇_x log p_sigma(x)``; for ``sigma > 0`` equal to ``(D(x, sigma) - x) / sigma²``."""
        v = self._flat(x)
        s2 = _as_sigma2(sigma, v.shape[0])
        lj, z = self._log_joint(v, s2)
        gam = torch.softmax(lj, dim=1)
        var = self.lam[None] + s2
        if z is None:
            z = self._proj(v)
        g = -(gam[..., None] * self._unproj(z / var)).sum(1)
        return g.reshape(x.shape).to(x.dtype)

    # ----- sampling -------------------------------------------------------------------------------
    def sample(
        self, n: int, seed: int | torch.Generator | None = 0, dtype: torch.dtype = torch.float32
    ) -> torch.Tensor:
        """``n`` independent draws, ``(n, *shape)``."""
        g = make_generator(seed)
        k = torch.multinomial(self.weights, n, replacement=True, generator=g)
        eps = torch.randn(n, self.d, generator=g, dtype=torch.float64)
        z = eps * self.lam[k].sqrt()
        if self.Q is not None:
            Q = self.Q[0] if self.Q.shape[0] == 1 else None
            z = z @ Q.T if Q is not None else torch.einsum("nde,ne->nd", self.Q[k], z)
        return (self.means[k] + z).reshape(n, *self.shape).to(dtype)

    # ----- exact posterior --------------------------------------------------------------------------
    def posterior(self, A, y: torch.Tensor, sigma_y: float) -> GaussianMixture:
        """The exact posterior ``p(x | y)`` for ``y = A x + N(0, sigma_y² I)``, itself a mixture.

        ``A``: a linear invprior operator with ``in_shape == self.shape`` or a dense ``(m, d)``
        matrix; ``y``: one measurement, ``(1, *out_shape)``. Complex measurements (MRI) are split
        into real and imaginary parts (each with variance ``sigma_y²``).
        """
        M = self._dense(A)
        yv = torch.as_tensor(y)
        if yv.dim() >= 2 and yv.shape[0] != 1:
            raise InvpriorError("posterior takes one measurement (batch 1); loop over the batch")
        yv = yv.reshape(-1)
        yv = torch.cat([yv.real, yv.imag]) if yv.is_complex() else yv
        yv = yv.to(torch.float64)
        if yv.numel() != M.shape[0]:
            raise InvpriorError(f"y has {yv.numel()} real entries but A has {M.shape[0]} rows")
        if not sigma_y > 0:
            raise InvpriorError("the exact posterior needs sigma_y > 0")
        s2y = float(sigma_y) ** 2
        covs = self.covariances()  # (K, d, d)
        shared = (self.Q is None and bool((self.lam == self.lam[0]).all())) or (
            self.Q is not None and self.Q.shape[0] == 1 and bool((self.lam == self.lam[0]).all())
        )
        Ks = 1 if shared else self.K
        C = covs[:Ks]
        S = M @ C @ M.T + s2y * torch.eye(M.shape[0], dtype=torch.float64)  # (Ks, m, m)
        L = torch.linalg.cholesky(S)
        G = torch.cholesky_solve(M @ C, L).transpose(-1, -2)  # Sigma A^T S^{-1}: (Ks, d, m)
        post_cov = C - G @ M @ C
        post_cov = 0.5 * (post_cov + post_cov.transpose(-1, -2))
        r = yv[None] - self.means @ M.T  # (K, m)
        Gk = G.expand(self.K, -1, -1)
        post_mean = self.means + torch.einsum("kdm,km->kd", Gk, r)
        Lk = L.expand(self.K, -1, -1)
        sol = torch.linalg.solve_triangular(Lk, r[..., None], upper=False)[..., 0]
        logdet = 2 * torch.log(torch.diagonal(Lk, dim1=-2, dim2=-1)).sum(-1)
        m = M.shape[0]
        log_ev = -0.5 * (sol * sol).sum(-1) - 0.5 * logdet - 0.5 * m * math.log(2 * math.pi)
        logw = torch.log(self.weights) + log_ev
        self._last_log_evidence = float(torch.logsumexp(logw, dim=0))
        w = torch.softmax(logw, dim=0)
        return GaussianMixture(w, post_mean, post_cov[0] if shared else post_cov, shape=self.shape)

    def log_evidence(self, A, y: torch.Tensor, sigma_y: float) -> float:
        """The exact ``log p(y)`` for ``y = A x + N(0, sigma_y² I)``: ``log sum_k w_k N(y; A mu_k,
        A Sigma_k A^T + sigma_y² I)`` (a mixture of Gaussians in y; complex y counts real and imaginary
        parts). The reference of the SMC samplers' evidence estimates."""
        self.posterior(A, y, sigma_y)
        return self._last_log_evidence

    def _dense(self, A) -> torch.Tensor:
        if isinstance(A, torch.Tensor):
            M = A.to(torch.float64)
            if M.dim() != 2 or M.shape[1] != self.d:
                raise InvpriorError(f"a dense A must be (m, {self.d}), got {tuple(M.shape)}")
            return M
        from ..operators.base import LinearOperator

        if not isinstance(A, LinearOperator):
            raise InvpriorError("the exact posterior needs a linear operator (or a dense matrix)")
        if A.in_shape != self.shape:
            raise InvpriorError(f"{A.name} takes {A.in_shape} but the prior lives on {self.shape}")
        if self.d > _DENSE_LIMIT:
            raise InvpriorError(
                f"the exact posterior materialises A densely; d = {self.d} > {_DENSE_LIMIT} is too large"
            )
        if hasattr(A, "dense"):
            M = A.dense().to(torch.float64)
        else:
            eye = torch.eye(self.d, dtype=torch.float64).reshape(self.d, *self.shape)
            M = A(eye).reshape(self.d, -1).T
        if M.is_complex():
            M = torch.cat([M.real, M.imag], dim=0)
        return M

    # ----- the benchmark prior -------------------------------------------------------------------------
    @classmethod
    def mcgdiff(cls, d: int, seed: int = 0) -> GaussianMixture:
        """The 25-component prior of Cardoso et al. (ICLR 2024, arXiv:2308.07983), dimension ``d`` (even).

        Means ``(-8i, -8j, -8i, -8j, ...)`` for ``i, j ∈ {-2..2}``, identity covariances,
        weights ``∝ eps²`` with ``eps ~ N(0, 1)`` drawn with ``seed``.
        """
        if d < 2 or d % 2:
            raise InvpriorError(f"d must be an even number >= 2, got {d}")
        g = torch.Generator().manual_seed(seed)
        ij = torch.tensor([(i, j) for i in range(-2, 3) for j in range(-2, 3)], dtype=torch.float64)
        means = (-8.0 * ij).repeat(1, d // 2)
        w = torch.randn(25, generator=g, dtype=torch.float64) ** 2
        return cls(w, means, None)

    @staticmethod
    def mcgdiff_measurement(d: int, d_y: int, seed: int = 0) -> tuple[torch.Tensor, float]:
        """The benchmark's random operator: ``A = U diag(s) V[:d_y]`` with sorted ``s ~ U(0, 1)``,
        and ``sigma_y = u · max(s)``, ``u ~ U(0, 1)``. Returns ``(A (d_y, d) float64, sigma_y)``."""
        g = torch.Generator().manual_seed(seed)
        A0 = torch.randn(d_y, d, generator=g, dtype=torch.float64)
        U, _, Vh = torch.linalg.svd(A0, full_matrices=False)
        s = torch.sort(torch.rand(d_y, generator=g, dtype=torch.float64), descending=True).values
        A = U @ torch.diag(s) @ Vh[:d_y]
        sigma_y = float(torch.rand((), generator=g, dtype=torch.float64)) * float(s.max())
        return A, sigma_y
