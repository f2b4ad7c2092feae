"""Benchmarks and tuning sweeps on Ray: each replicate or grid point is one Ray task.

``--ray`` (no address) starts a local Ray runtime with this machine's cores; ``--ray ADDRESS`` joins a
running cluster (``ray start --head`` on one machine, ``ray start --address=HEAD:6379`` on the others).
Every task asks for one CPU and runs torch on one thread; a task whose worker dies is retried by Ray
(``max_retries``). Results come back to the driver, which alone writes the JSON-lines caches: no file
locks. Ray is imported only here, and only when ``--ray`` is given (the optional extra
``pip install -e ".[ray]"``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from tqdm import tqdm

from .._errors import InvpriorError

__all__ = ["LOCAL", "add_ray_argument", "grid_map", "ray_map", "start_ray"]

LOCAL = "local"  # the address that means: start Ray on this machine


def start_ray(address: str | None = LOCAL):
    """Connect to Ray (``LOCAL``/``None``: a local runtime with every core) and return the module."""
    try:
        import ray
    except ImportError:
        raise InvpriorError('--ray needs the optional Ray extra: pip install -e ".[ray]"') from None
    if address not in (None, "", LOCAL):
        _check_reachable(address)
    if ray.is_initialized():
        return ray
    kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
    if address in (None, "", LOCAL):
        ray.init(num_cpus=os.cpu_count() or 1, **kw)
        return ray
    try:
        ray.init(address=address, **kw)
    except Exception as e:  # ConnectionError, TimeoutError, ValueError... depending on how it fails
        raise InvpriorError(
            f"cannot reach a Ray cluster at {address!r} ({type(e).__name__}: {str(e).splitlines()[0][:200]}); "
            "start one with `ray start --head` there, or give --ray alone for a local run"
        ) from None
    return ray


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail in seconds, not minutes, when nothing listens at ``host:port`` (Ray itself retries for ~1 min)."""
    import socket

    if address == "auto":  # Ray finds a cluster started on this machine by `ray start`
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise InvpriorError(f"--ray takes HOST:PORT (e.g. 10.0.0.5:6379) or nothing for a local run, got {address!r}")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as e:
        raise InvpriorError(
            f"cannot reach a Ray cluster at {address!r}: {e.strerror or e}; start one with `ray start --head` "
            "there, or give --ray alone for a local run"
        ) from None


def _one_thread(fn: Callable, *args):
    import torch

    torch.set_num_threads(1)
    return fn(*args)


def ray_map(
    fn: Callable, items: Iterable[tuple], address: str | None = LOCAL, desc: str = "tasks", max_retries: int = 3
) -> Iterator[tuple[tuple, Any]]:
    """Run ``fn(*item)`` for every item as one Ray task (1 CPU, one torch thread, retried up to
    ``max_retries`` times if its worker dies) and yield ``(item, result)`` as tasks finish."""
    ray = start_ray(address)
    remote = ray.remote(num_cpus=1, max_retries=max_retries)(_one_thread)
    fn_ref = ray.put(fn)
    refs = {remote.remote(fn_ref, *item): item for item in items}
    pending = list(refs)
    with tqdm(total=len(pending), desc=f"{desc} on Ray") as bar:
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for r in done:
                try:
                    out = ray.get(r)
                except ray.exceptions.RayTaskError as e:  # the task's own error, re-raised as it was
                    raise e.as_instanceof_cause() from None
                bar.update()
                yield refs[r], out


def add_ray_argument(parser) -> None:
    """``--ray [ADDRESS]`` on a tuning script's ``argparse`` parser (alone: this machine)."""
    parser.add_argument(
        "--ray", nargs="?", const=LOCAL, default=None, metavar="ADDRESS",
        help="run the grid as Ray Tune trials: alone, on this machine's cores; ADDRESS: a running cluster",
    )  # fmt: skip


def _trial(config: dict) -> dict:
    import torch

    torch.set_num_threads(1)
    return {"value": config["fn"](*config["point"])}


def grid_map(fn: Callable, points: list[tuple], address: str | None = None, desc: str = "grid") -> list[Any]:
    """``[fn(*p) for p in points]``; with an ``address`` (``LOCAL``: this machine) as a Ray Tune grid
    search, one trial per point (1 CPU, one torch thread, retried up to 3 times), results in the order
    of ``points``. The tuning scripts' ``--ray``."""
    if address is None:
        return [fn(*p) for p in tqdm(points, desc=desc)]
    import tempfile

    start_ray(address)
    from ray import tune

    tuner = tune.Tuner(
        tune.with_resources(_trial, {"cpu": 1}),
        param_space={"fn": fn, "point": tune.grid_search([list(p) for p in points])},
        run_config=tune.RunConfig(
            name=desc.replace(" ", "-"), storage_path=tempfile.mkdtemp(prefix="invprior-tune-"), verbose=0,
            failure_config=tune.FailureConfig(max_failures=3),
        ),
    )  # fmt: skip
    results = tuner.fit()
    by_point = {}
    for r in results:
        if r.error is not None:
            raise r.error
        by_point[tuple(r.config["point"])] = r.metrics["value"]
    return [by_point[tuple(p)] for p in points]
