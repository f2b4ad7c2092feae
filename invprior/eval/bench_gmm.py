"""The exact-posterior benchmark of the diffusion samplers (``invprior bench gmm``).

Protocol of Cardoso et al. (MCGdiff, ICLR 2024, arXiv:2308.07983), see ``METHODS.md``: a
25-component Gaussian-mixture prior in dimension ``d`` with closed-form denoiser, a random
``d_y × d`` operator with sorted uniform singular values and noise ``sigma_y = u · max(s)``, and
the exact posterior (a mixture) as the oracle. Per replicate ``r``: prior seed ``r``, operator
seed ``1000 + r``, truth seed ``2000 + r``, noise seed ``3000 + r``. Each sampler draws 2,000
samples at its defaults, with two exceptions for options in data units: RED-diff's Adam
learning rate (1.0 here, where the data span ±16, instead of 0.03 for [0, 1] images) and ΠGDM's
``data_var`` (1, the mixture components' variance, instead of 0.01 for [0, 1] images); the
metric is the sliced Wasserstein-1 distance (100 directions) to 2,000 exact posterior draws,
reported as the mean ± 1.96 sd / sqrt(n) over replicates. ``exact`` (two independent exact
draws) is the noise floor of the metric, ``prior`` (samples ignoring the data) the ceiling.
``mode TV`` is the total variation between the fraction of samples in each of the 25 modes and
the exact posterior weights.

Published tables for this protocol exist (Cardoso et al. 2024, Table 1: MCGdiff, DDRM, DPS, RNVP;
DCPS, arXiv:2403.11407, Table 1; DDSMC, arXiv:2502.06379). They could not be retrieved offline
when these tables were made, so no published number is quoted here: compare with the papers.
Note their runs use VP samplers with their own step counts; ours are the sigma-view samplers of
this package at 20 and 100 steps.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import torch
from tqdm import tqdm

from ..data import GaussianMixture
from ..operators import Matrix, simulate
from ..priors import Diffusion
from ..solvers import solve
from .metrics import sliced_wasserstein

__all__ = ["SAMPLERS", "mode_fractions", "run"]

# name -> options other than steps (documented in the module docstring)
SAMPLERS: dict[str, dict] = {
    "ddrm": {}, "ddnm": {}, "pigdm": {"data_var": 1.0}, "mm": {}, "dps": {}, "diffpir": {}, "ald": {},
    "reddiff": {"lr": 1.0}, "daps": {},
}  # fmt: skip
APPROXIMATE = tuple(SAMPLERS)  # the default rows
# SMC samplers at a particle count: "tds@128" (see ``_smc_draws`` for how their 2,000 draws are made)
SMC_SAMPLERS = ("tds", "mcgdiff", "fps_smc")
PARTICLES = (16, 128, 1024)
for _m in SMC_SAMPLERS:
    for _n in PARTICLES:
        SAMPLERS[f"{_m}@{_n}"] = {}
SMC_ROWS = tuple(f"{m}@{n}" for m in SMC_SAMPLERS for n in PARTICLES)


def _smc_draws(problem, D, name: str, n: int, steps: int) -> tuple[torch.Tensor, int, dict]:
    """``n`` draws of an SMC sampler ``"method@N"``: ``R = max(2, ceil(n / N))`` independent runs of N
    particles (``return_particles``), their weighted clouds pooled with equal run weights, and ``n``
    draws from the pool (as the MCGdiff paper keeps its whole cloud): the same particle budget
    (about ``n`` particles per step) at every N, so a row shows what more particles per run buy.
    Also returns the evidence estimates (per-run mean and pooled)."""
    method, N = name.split("@")
    N = int(N)
    R = max(2, math.ceil(n / N))
    out = solve(problem, D, method=method, n_samples=R, n_particles=N, steps=steps, seed=0, return_particles=True)
    w = torch.tensor(out.diagnostics.extra["weights"], dtype=torch.float64)[:, 0]
    g = torch.Generator().manual_seed(11)
    idx = torch.multinomial(w / w.sum(), n, replacement=True, generator=g)
    lz = out.diagnostics.extra["log_evidence_runs"][0]
    ev = {"logz_pooled": out.diagnostics.extra["log_evidence"][0], "logz_run_mean": sum(lz) / len(lz)}
    return out.samples[idx, 0], out.diagnostics.nfe, ev


def mode_fractions(x: torch.Tensor) -> torch.Tensor:
    """Fraction of samples in each of the 25 modes (i, j) ∈ {-2..2}², read from the mean pattern
    ``(-8i, -8j, ...)``: component k = 5 (i + 2) + (j + 2), as in ``GaussianMixture.mcgdiff``."""
    i = (-x[:, 0::2].mean(1) / 8).round().clamp(-2, 2)
    j = (-x[:, 1::2].mean(1) / 8).round().clamp(-2, 2)
    k = (5 * (i + 2) + (j + 2)).long()
    return torch.bincount(k, minlength=25).double() / len(x)


def _replicate(d: int, d_y: int, r: int):
    prior = GaussianMixture.mcgdiff(d, seed=r)
    A, sy = GaussianMixture.mcgdiff_measurement(d, d_y, seed=1000 + r)
    x = prior.sample(1, 2000 + r, torch.float64)
    problem = simulate(Matrix(A), x, sy, seed=3000 + r)
    post = prior.posterior(Matrix(A), problem.y, sy)
    return prior, problem, post


def _load_cache(path: Path | None, protocol: dict) -> dict[str, dict]:
    """Replicates already run under the same protocol: ``{"d-dy-r": {"name|steps": record}}``."""
    done: dict[str, dict] = {}
    if path is None or not path.exists():
        return done
    for line in path.read_text().splitlines():
        if line.strip():
            entry = json.loads(line)
            if entry.get("protocol") == protocol:
                done[entry["key"]] = entry["records"]
    return done


def _append(path: Path, line: str) -> None:
    """Append one line in one write (only the driver writes: with Ray, results come back to it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(line)


def _run_replicate(d: int, dy: int, r: int, names: list[str], steps_list, n: int) -> dict[str, dict]:
    """Every sampler (and the exact / prior rows) on replicate ``r``: ``{"name|steps": record}``."""
    prior, problem, post = _replicate(d, dy, r)
    exact = solve(problem, prior, method="exact", n_samples=n, seed=1).samples[:, 0]
    smax = 4 * float(prior.means.norm(dim=1).max()) + 10
    D = Diffusion.from_denoiser(prior, 0.005, smax)
    mine: dict[str, dict] = {}

    def record(key, x, t, nfe):
        ok = bool(torch.isfinite(x).all())
        mine[key] = {"sw": sliced_wasserstein(x, exact, seed=7) if ok else math.nan,
                     "tv": 0.5 * float((mode_fractions(x) - post.weights).abs().sum()) if ok else math.nan,
                     "time": t, "nfe": nfe}  # fmt: skip

    t0 = time.perf_counter()
    x2 = solve(problem, prior, method="exact", n_samples=n, seed=2).samples[:, 0]
    record("exact|0", x2, time.perf_counter() - t0, 0)
    record("prior|0", prior.sample(n, 5, torch.float64), 0.0, 0)
    log_z = prior.log_evidence(problem.operator, problem.y, problem.sigma)
    for steps in steps_list:
        for name in names:
            t0 = time.perf_counter()
            ev: dict = {}
            try:
                if "@" in name:
                    x, nfe, ev = _smc_draws(problem, D, name, n, steps)
                else:
                    out = solve(problem, D, method=name, n_samples=n, seed=0, steps=steps, **SAMPLERS[name])
                    x, nfe = out.samples[:, 0], out.diagnostics.nfe
            except (RuntimeError, ValueError) as err:  # a diverged run is a result, not a crash
                print(f"{name} d={d} d_y={dy} rep {r}: {err}")
                x, nfe = torch.full((n, d), math.nan, dtype=torch.float64), 0
            record(f"{name}|{steps}", x, time.perf_counter() - t0, nfe)
            for k, v in ev.items():  # evidence errors against the exact log p(y)
                mine[f"{name}|{steps}"][k.replace("logz", "logz_err")] = v - log_z
    return mine


def run(dims=(8, 80, 800), dys=(1, 2, 4), reps: int = 20, steps_list=(20, 100), n: int = 2000,
        samplers: list[str] | None = None, cache: Path | None = None,
        cached_only: bool = False, ray: str | None = None) -> list[dict]:  # fmt: skip
    """One row per (sampler, d, d_y, steps) with the mean and 95% interval over replicates.

    Replicates run in the order ``r = 0, 1, ...`` over every (d, d_y) in turn, so a run stopped
    early has about as many replicates in each column (each row says how many it has).

    With ``cache`` (a JSON-lines file), each finished replicate is appended to it and replicates
    already there (same samples, steps, samplers and sampler options) are read instead of run: a
    long configuration (d = 800) can be built up over several sessions. The protocol key does not
    see code changes: after changing a sampler, start a new file. ``cached_only`` runs nothing and
    tabulates the cache.

    ``ray``: an address (``"local"``: this machine's cores) to run each replicate as one Ray task
    (``invprior.eval.distributed``); the rows are the same as a single-process run's (every replicate
    is seeded by its own (d, d_y, r)), the driver appends each finished replicate to the cache.
    """
    names = samplers or list(APPROXIMATE)
    unknown = [k for k in names if k not in SAMPLERS]
    if unknown:
        raise ValueError(f"unknown samplers {unknown}; known: {', '.join(SAMPLERS)}")
    protocol = {"n": n, "steps": list(steps_list), "samplers": {k: SAMPLERS[k] for k in names}}
    done = _load_cache(cache, protocol)
    order = [(d, dy, r) for r in range(reps) for d in dims for dy in dys]
    todo = [] if cached_only else [c for c in order if f"{c[0]}-{c[1]}-{c[2]}" not in done]
    results: dict[tuple[int, int, int], dict[str, dict]] = {}
    for d, dy, r in order:
        if f"{d}-{dy}-{r}" in done:
            results[(d, dy, r)] = done[f"{d}-{dy}-{r}"]
    jobs = [(d, dy, r, names, tuple(steps_list), n) for d, dy, r in todo]
    if ray is None:
        finished = ((job, _run_replicate(*job)) for job in tqdm(jobs, desc="bench gmm (replicates)"))
    else:
        from .distributed import ray_map

        finished = ray_map(_run_replicate, jobs, ray, desc="bench gmm (replicates)")
    for (d, dy, r, *_), mine in finished:
        results[(d, dy, r)] = mine
        if cache is not None:
            _append(cache, json.dumps({"key": f"{d}-{dy}-{r}", "protocol": protocol, "records": mine}) + "\n")
    rows = []
    for d in dims:
        for dy in dys:
            res: dict[tuple[str, int], dict[str, list]] = {}
            for r in range(reps):
                for k, e in results.get((d, dy, r), {}).items():
                    name, steps = k.split("|")
                    acc = res.setdefault((name, int(steps)), {"sw": [], "tv": [], "time": [], "nfe": []})
                    for field, v in e.items():
                        acc.setdefault(field, []).append(v)
            for (name, steps), e in res.items():
                sw = torch.tensor(e["sw"], dtype=torch.float64)
                tv = torch.tensor(e["tv"], dtype=torch.float64)
                ok = torch.isfinite(sw)
                m = float(sw[ok].mean()) if ok.any() else math.nan
                ci = 1.96 * float(sw[ok].std()) / math.sqrt(int(ok.sum())) if int(ok.sum()) > 1 else math.nan
                rows.append({
                    "sampler": name, "d": d, "d_y": dy, "steps": steps, "SW": m, "SW ci95": ci,
                    "mode TV": float(tv[ok].mean()) if ok.any() else math.nan, "failed": int((~ok).sum()),
                    "NFE": int(e["nfe"][0]), "time s": float(torch.tensor(e["time"]).mean()),
                    "reps": len(e["sw"]),
                    **{f: _mean_abs(e[f]) for f in ("logz_err_pooled", "logz_err_run_mean") if f in e},
                })  # fmt: skip
    return rows


def _mean_abs(v: list[float]) -> float:
    t = torch.tensor(v, dtype=torch.float64)
    t = t[torch.isfinite(t)]
    return float(t.abs().mean()) if len(t) else math.nan


def tables(rows: list[dict]) -> str:
    """Markdown: one SW table per step count (rows samplers, columns (d, d_y)), then mode TV and time."""
    configs = sorted({(r["d"], r["d_y"]) for r in rows})
    names = list(dict.fromkeys(r["sampler"] for r in rows))
    steps_list = sorted({r["steps"] for r in rows if r["steps"]})
    idx = {(r["sampler"], r["steps"], r["d"], r["d_y"]): r for r in rows}
    out = []
    head = "| sampler | NFE | " + " | ".join(f"d={d}, d_y={dy}" for d, dy in configs) + " |"
    sep = "|---|---|" + "---|" * len(configs)

    def cell(r, key, ci=None):
        if r is None or not math.isfinite(r[key]):
            return "n/a" if r is None else f"failed ({r['failed']})"
        s = f"{r[key]:.2f}" + (f" ± {r[ci]:.2f}" if ci and math.isfinite(r[ci]) else "")
        return s + (f" ({r['failed']} failed)" if r["failed"] else "")

    reps = "| replicates | | " + " | ".join(str(idx[("exact", 0, d, dy)]["reps"]) if ("exact", 0, d, dy) in idx
                                       else "0" for d, dy in configs) + " |"  # fmt: skip
    for steps in steps_list:
        out += [f"### Sliced Wasserstein to the exact posterior, {steps} steps", "", head, sep, reps]
        for name in names:
            st = 0 if name in ("exact", "prior") else steps
            r0 = idx.get((name, st, *configs[0]))
            nfe = r0["NFE"] if r0 else ""
            out.append(f"| {name} | {nfe} | " + " | ".join(cell(idx.get((name, st, d, dy)), "SW", "SW ci95")
                                                         for d, dy in configs) + " |")  # fmt: skip
        out.append("")
    last = steps_list[-1]
    out += [f"### Mode recovery (total variation to the posterior weights), {last} steps", "", head, sep]
    for name in names:
        st = 0 if name in ("exact", "prior") else last
        r0 = idx.get((name, st, *configs[0]))
        out.append(f"| {name} | {r0['NFE'] if r0 else ''} | "
                   + " | ".join(cell(idx.get((name, st, d, dy)), "mode TV") for d, dy in configs) + " |")  # fmt: skip
    out += ["", f"### Mean wall time per run (s, {last} steps, 2,000 samples)", "", head, sep]
    for name in names:
        st = 0 if name in ("exact", "prior") else last
        out.append(f"| {name} | | " + " | ".join(
            f"{idx[(name, st, d, dy)]['time s']:.2f}" if (name, st, d, dy) in idx else "n/a" for d, dy in configs
        ) + " |")  # fmt: skip
    return "\n".join(out)


def _baseline(d: int, folder: Path) -> list[dict]:
    """The approximate samplers' rows of ``gmm-d{d}.json`` (the tables of the same protocol)."""
    f = folder / f"gmm-d{d}.json"
    return json.loads(f.read_text())["rows"] if f.exists() else []


def smc_section(rows: list[dict], folder: Path, figure: Path) -> str:
    """Markdown for SMC rows: SW against particles per (d, d_y) (a log-log figure with the exact floor,
    the prior and the best approximate sampler of ``gmm-d{d}.json``) and the log-evidence errors."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    smc = [r for r in rows if "@" in r["sampler"]]
    if not smc:
        return ""
    configs = sorted({(r["d"], r["d_y"]) for r in smc})
    steps_list = sorted({r["steps"] for r in smc})
    last = steps_list[-1]
    idx = {(r["sampler"], r["steps"], r["d"], r["d_y"]): r for r in rows}
    dims, dys = sorted({d for d, _ in configs}), sorted({dy for _, dy in configs})
    fig, axes = plt.subplots(len(dims), len(dys), figsize=(3.2 * len(dys), 2.7 * len(dims)), squeeze=False)
    best_rows = []
    for i, d in enumerate(dims):
        base = _baseline(d, folder)
        for j, dy in enumerate(dys):
            ax = axes[i][j]
            for m, color in zip(SMC_SAMPLERS, ("C0", "C1", "C2"), strict=True):
                for st, ls in ((last, "-"), (steps_list[0], ":")) if len(steps_list) > 1 else ((last, "-"),):
                    ns = [n for n in PARTICLES if (f"{m}@{n}", st, d, dy) in idx]
                    if ns:
                        sw = [idx[(f"{m}@{n}", st, d, dy)]["SW"] for n in ns]
                        ax.plot(ns, sw, ls, marker="o", color=color, ms=3, label=f"{m} ({st} steps)")
            for name, color, label in (("exact", "k", "exact floor"), ("prior", "0.6", "prior")):
                r0 = idx.get((name, 0, d, dy))
                if r0:
                    ax.axhline(r0["SW"], color=color, ls="--", lw=0.8, label=label)
            approx = [b for b in base if b["d_y"] == dy and b["steps"] == last and b["sampler"] in APPROXIMATE]
            if approx:
                b = min(approx, key=lambda r: r["SW"])
                best_rows.append((d, dy, b["sampler"], b["SW"]))
                ax.axhline(b["SW"], color="C3", ls="-.", lw=0.8, label=f"best approximate ({b['sampler']})")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_title(f"d={d}, d_y={dy}", fontsize=8)
            ax.tick_params(labelsize=7)
            if i == len(dims) - 1:
                ax.set_xlabel("particles per run", fontsize=7)
            if j == 0:
                ax.set_ylabel("sliced Wasserstein", fontsize=7)
    axes[0][0].legend(fontsize=5, loc="best")
    fig.tight_layout()
    figure.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(figure, dpi=110)
    plt.close(fig)
    head = "| sampler | " + " | ".join(f"d={d}, d_y={dy}" for d, dy in configs) + " |"
    sep = "|---|" + "---|" * len(configs)
    out = [
        f"### SW against particles ({last} steps; dotted: {steps_list[0]} steps)", "", f"![smc]({figure.name})", "",
        "Best approximate sampler at the same steps (from the `gmm-d*.json` tables): "
        + ", ".join(f"d={d}, d_y={dy}: {n} {v:.2f}" for d, dy, n, v in best_rows), "",
        f"### Log-evidence error |log Z-hat - log Z| ({last} steps), mean over replicates", "",
        "Pooled: the estimate of all runs together (log of the mean of their Z-hat); per run: the mean over runs "
        "of a single run's error.", "", head, sep,
    ]  # fmt: skip
    for m in SMC_SAMPLERS:
        for n in PARTICLES:
            cells = []
            for d, dy in configs:
                r = idx.get((f"{m}@{n}", last, d, dy))
                if r is None or "logz_err_pooled" not in r:
                    cells.append("n/a")
                else:
                    cells.append(f"{r['logz_err_pooled']:.2f} / {r['logz_err_run_mean']:.2f}")
            out.append(f"| {m}@{n} (pooled / per run) | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"
