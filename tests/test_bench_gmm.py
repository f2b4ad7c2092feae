"""bench gmm: the protocol's rows, its floor/ceiling order, and the replicate cache."""

from __future__ import annotations

import json

import torch

from invprior.data import GaussianMixture
from invprior.eval import bench_gmm


def test_mode_fractions_read_the_component_of_each_sample():
    prior = GaussianMixture.mcgdiff(8, seed=0)
    x = prior.means.to(torch.float64)  # the 25 component means, one sample each
    f = bench_gmm.mode_fractions(x)
    assert f.sum() == 1 and int((f > 0).sum()) == 25


def test_rows_and_replicate_cache(tmp_path):
    cache = tmp_path / "gmm.jsonl"
    kw = {"dims": (8,), "dys": (2,), "reps": 2, "steps_list": (10,), "n": 200, "samplers": ["ddrm"]}
    rows = bench_gmm.run(**kw, cache=cache)
    by = {r["sampler"]: r for r in rows}
    assert set(by) == {"exact", "prior", "ddrm"} and all(r["reps"] == 2 for r in rows)
    # the metric's floor (two exact draws) is far below its ceiling (prior samples); ddrm in between
    assert by["exact"]["SW"] < by["ddrm"]["SW"] < by["prior"]["SW"]
    lines = cache.read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[0])["key"] == "8-2-0"
    # a second run reads every replicate from the cache: same rows, nothing appended
    again = bench_gmm.run(**kw, cache=cache)
    assert [(r["sampler"], r["SW"]) for r in again] == [(r["sampler"], r["SW"]) for r in rows]
    assert len(cache.read_text().splitlines()) == 2
    # a different protocol (more samples) does not reuse them
    bench_gmm.run(**{**kw, "reps": 1, "n": 100}, cache=cache)
    assert len(cache.read_text().splitlines()) == 3


def test_an_interrupted_run_resumes_from_its_cache_and_cached_only_tabulates(tmp_path):
    """The cache replaces the old --shard split (Ray distributes now, tests/test_ray.py): a run stopped
    after some replicates continues with the rest, and --cached-only tabulates without running."""
    cache = tmp_path / "gmm.jsonl"
    kw = {"dims": (8,), "dys": (1, 2), "steps_list": (10,), "n": 100, "samplers": ["ddnm"]}
    bench_gmm.run(**kw, reps=1, cache=cache)  # "stopped" after replicate 0 of each column
    full = bench_gmm.run(**kw, reps=2, cache=cache)
    keys = [json.loads(line)["key"] for line in cache.read_text().splitlines()]
    assert keys == ["8-1-0", "8-2-0", "8-1-1", "8-2-1"]  # the first two were not run again
    assert {(r["d_y"], r["reps"]) for r in full} == {(1, 2), (2, 2)}
    rows = bench_gmm.run(**kw, reps=3, cache=cache, cached_only=True)
    assert len(cache.read_text().splitlines()) == 4
    assert [(r["sampler"], r["SW"], r["reps"]) for r in rows] == [(r["sampler"], r["SW"], r["reps"]) for r in full]
    assert "| replicates | | 2 | 2 |" in bench_gmm.tables(rows)
