"""Every hostile input of ``hostile_cases.CASES`` gets a clear error naming the option (or the
documented warning / correct result), and saving survives being killed half-way (issue 19)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from hostile_cases import CASES, verdict

import invprior as ip
from invprior.result import Result


def test_enough_cases():
    assert len(CASES) >= 40
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_input(case, tmp_path):
    v, detail = verdict(case, tmp_path)
    assert v == "clear", f"{case.name}: {v} ({detail})"


def test_error_types_are_invprior_errors():
    """Non-finite results are a documented subclass of InvpriorError."""
    assert issubclass(ip.solvers.NonFiniteResultError, ip.InvpriorError)


# ----- killed saves ----------------------------------------------------------------------------
_WRITER = textwrap.dedent(
    """
    import os, sys, time, torch
    import invprior._io as io
    from invprior.result import Result

    folder, phase, k = sys.argv[1], sys.argv[2], int(sys.argv[3])
    calls = {"move": 0}
    real_move, real_json = io._move, io._write_json

    def pause():
        print("paused", flush=True)
        time.sleep(60)

    def move(src, dst):
        real_move(src, dst)
        calls["move"] += 1
        if phase == "move" and calls["move"] == k:
            pause()

    def write_json(path, obj):
        if phase == "commit" and path.name == io.MARKER:
            real_json(path, obj)
            pause()
        else:
            real_json(path, obj)

    def write_hook(tmp):
        if phase == "write":
            pause()

    io._move, io._write_json = move, write_json
    r = Result.from_samples(torch.full((4, 1, 1, 8, 8), 0.9))
    r.save(folder, extra_files=write_hook)
    """
)


def _old_result(folder: Path) -> None:
    Result.from_samples(torch.full((3, 1, 1, 8, 8), 0.1)).save(folder)


@pytest.mark.parametrize(("phase", "k"), [("write", 0), ("move", 1), ("move", 4), ("move", 9), ("commit", 0)])
def test_killed_save(tmp_path, phase, k):
    """SIGKILL a save in each phase: the old result loads (or, past the commit point, the new one,
    whole), and the next save leaves no temporary folders."""
    folder = tmp_path / "run"
    _old_result(folder)
    (tmp_path / "keep.txt").write_text("user")
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(folder), phase, str(k)], stdout=subprocess.PIPE,
                            text=True)  # fmt: skip
    try:
        assert proc.stdout.readline().strip() == "paused"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    r = Result.load(folder)
    value = float(r.mean.mean())
    expected = 0.9 if phase == "commit" else 0.1
    assert value == pytest.approx(expected), f"load after a kill in phase {phase}: mean {value}"
    assert torch.allclose(r.samples.mean(0), r.mean), "samples and mean from different saves"
    assert r.samples.shape[0] == (4 if phase == "commit" else 3)
    Result.from_samples(torch.full((2, 1, 1, 8, 8), 0.5)).save(folder)
    left = [p.name for p in folder.iterdir() if p.name.startswith((".invprior-tmp", ".invprior-old", ".invprior-j"))]
    assert not left, f"temporary entries left after the next save: {left}"
    assert float(Result.load(folder).mean.mean()) == pytest.approx(0.5)
    assert (tmp_path / "keep.txt").read_text() == "user"


def test_concurrent_writers_and_readers(tmp_path):
    """Two processes save different results into one folder while this one reads: every read
    sees one whole result (samples and mean of the same save)."""
    folder = tmp_path / "run"
    _old_result(folder)
    script = textwrap.dedent(
        """
        import sys, torch
        from invprior.result import Result
        folder, v = sys.argv[1], float(sys.argv[2])
        for i in range(15):
            Result.from_samples(torch.full((3 + i % 3, 1, 1, 16, 16), v + i / 1000)).save(folder)
        """
    )
    procs = [subprocess.Popen([sys.executable, "-c", script, str(folder), v]) for v in ("0.2", "0.6")]
    bad: list[str] = []

    def reader():
        while any(p.poll() is None for p in procs):
            r = Result.load(folder)
            if not torch.allclose(r.samples.mean(0), r.mean) or r.samples.shape[0] not in (3, 4, 5):
                bad.append(f"torn read: {r.samples.shape}, {float(r.mean.mean())}")

    t = threading.Thread(target=reader)
    t.start()
    for p in procs:
        assert p.wait(timeout=300) == 0
    t.join()
    assert not bad, bad[:3]
    final = float(Result.load(folder).mean.mean())
    assert final == pytest.approx(0.214) or final == pytest.approx(0.614)


def test_legacy_result_folder_loads(tmp_path):
    """A folder written before markers existed (plain files) still loads."""
    d = tmp_path / "old"
    d.mkdir()
    np.save(d / "mean.npy", np.zeros((1, 1, 4, 4), np.float32))
    np.save(d / "samples.npy", np.zeros((1, 1, 1, 4, 4), np.float32))
    (d / "summary.json").write_text('{"method": "fista", "diagnostics": {"nfe": 3}}')
    r = Result.load(d)
    assert r.method == "fista" and r.diagnostics.nfe == 3 and r.std is None
