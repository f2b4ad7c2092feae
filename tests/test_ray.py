"""Benchmarks on Ray (a real local runtime, two CPUs): the same rows as one process, retried tasks."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from invprior.cli import _ray_flag, app
from invprior.eval import bench_gmm

ray = pytest.importorskip("ray")  # in [dev]: CI has it
TINY = {"dims": (8,), "dys": (1,), "reps": 3, "steps_list": (10,), "n": 200, "samplers": ["ddrm", "pigdm"]}


def test_ray_bad_input_is_one_clear_error(monkeypatch, tmp_path):  # before Ray is started below
    runner = CliRunner()
    base = ["bench", "gmm", "--d", "8", "--dy", "1", "--reps", "1", "--steps", "5", "--samples", "50",
            "--sampler", "ddrm", "--out", str(tmp_path)]  # fmt: skip
    r = runner.invoke(app, [*base, "--ray", "127.0.0.1:1"])
    assert r.exit_code == 2 and "cannot reach a Ray cluster at '127.0.0.1:1'" in r.output, r.output
    r = runner.invoke(app, [*base, "--ray", "nonsense"])
    assert r.exit_code == 2 and "--ray takes HOST:PORT" in r.output, r.output
    monkeypatch.setitem(sys.modules, "ray", None)  # as if the extra were not installed
    r = runner.invoke(app, [*base, "--ray", "local"])
    assert r.exit_code == 2 and 'pip install -e ".[ray]"' in r.output and "Traceback" not in r.output, r.output
    assert _ray_flag(["bench", "gmm", "--ray"]) == ["bench", "gmm", "--ray", "local"]
    assert _ray_flag(["--ray", "--d", "8"]) == ["--ray", "local", "--d", "8"]
    assert _ray_flag(["--ray", "10.0.0.5:6379"]) == ["--ray", "10.0.0.5:6379"]


@pytest.fixture(scope="module")
def local_ray(tmp_path_factory):
    """Ray on this machine with 2 CPUs; its workers can import this test module (the crash hook)."""
    marker = tmp_path_factory.mktemp("ray") / "crashed-once"
    path = os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])
    env = {"PYTHONPATH": path, "INVPRIOR_TEST_CRASH_MARKER": str(marker)}
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": env})
    yield marker
    ray.shutdown()


def _without_times(rows):
    return [{k: v for k, v in r.items() if k != "time s"} for r in rows]


@pytest.fixture
def one_thread():
    """The single-process baseline on one thread, like every Ray task: the same floating-point sums."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_a_local_ray_run_gives_the_rows_of_a_single_process_run(local_ray, tmp_path, one_thread):
    alone = bench_gmm.run(**TINY)
    on_ray = bench_gmm.run(**TINY, cache=tmp_path / "c.jsonl", ray="local")
    assert _without_times(on_ray) == _without_times(alone)  # every replicate is seeded by its own key
    assert len((tmp_path / "c.jsonl").read_text().splitlines()) == 3


def crashing_replicate(d, dy, r, *args):
    """The replicate, but the first worker to run r == 1 dies mid-task (as a killed process would)."""
    marker = Path(os.environ["INVPRIOR_TEST_CRASH_MARKER"])
    if r == 1 and not marker.exists():
        marker.touch()
        os._exit(1)
    return bench_gmm._run_replicate(d, dy, r, *args)


def test_a_worker_killed_mid_task_is_retried_and_each_replicate_is_cached_once(local_ray, tmp_path, monkeypatch):
    monkeypatch.setattr(bench_gmm, "_run_replicate", crashing_replicate)
    cache = tmp_path / "gmm.jsonl"
    rows = bench_gmm.run(**TINY, cache=cache, ray="local")
    assert local_ray.exists()  # a worker did die
    keys = [json.loads(line)["key"] for line in cache.read_text().splitlines()]
    assert sorted(keys) == [f"8-1-{r}" for r in range(3)]  # each exactly once
    assert all(row["reps"] == 3 for row in rows)


def test_bench_generative_map_on_ray_gives_the_single_process_rows(local_ray, one_thread):
    from invprior.eval import bench_generative

    kw = {"datasets": ("shapes",), "tasks": ("cs100", "box"), "methods": ("tv", "vae_map"), "n_images": 1}
    alone, rep = bench_generative.run(**kw)
    on_ray, rep_ray = bench_generative.run(**kw, ray="local")
    assert _without_times(on_ray) == _without_times(alone) and rep_ray == rep
    assert [(r["task"], r["method"]) for r in on_ray] == [("cs100", "tv"), ("cs100", "vae_map"), ("box", "tv"),
                                                          ("box", "vae_map")]  # fmt: skip


def test_bench_diffusion_on_ray_gives_the_single_process_rows_and_figures(local_ray, one_thread, tmp_path):
    from invprior.eval import bench_diffusion

    kw = {"datasets": ("digits",), "tasks": ("box",), "samplers": ("ddnm", "pigdm"), "n_images": 1, "n_samples": 2}
    alone = bench_diffusion.run(**kw, out=tmp_path / "a")
    on_ray = bench_diffusion.run(**kw, out=tmp_path / "b", ray="local")
    assert _without_times(on_ray) == _without_times(alone)
    assert (tmp_path / "b" / "digits-box.png").exists()


def test_bench_classical_reconstructions_on_ray_give_the_single_process_rows(local_ray, one_thread):
    from invprior.eval import bench_classical

    alone = bench_classical.reconstruction_table(size=24, quick=True)
    on_ray = bench_classical.reconstruction_table(size=24, quick=True, ray="local")
    assert _without_times(on_ray) == _without_times(alone) and len(alone) > 20


def weighted(case: str, w: float) -> float:
    return len(case) * w


def test_grid_map_runs_a_ray_tune_grid_in_the_order_of_its_points(local_ray):
    from invprior.eval.distributed import grid_map

    points = [("deblur", 0.5), ("sr", 2.0), ("inpaint", 1.0)]
    assert grid_map(weighted, points, "local") == grid_map(weighted, points, None) == [3.0, 4.0, 7.0]
