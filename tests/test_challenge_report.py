"""The challenge bench: its operators per condition, and its HTML report opened in a real browser
(Debian's headless Chromium, installed by .ci/run)."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
import torch

from invprior.eval import bench_challenge as bc
from invprior.eval.report import Panel, ReportRow, save_grid
from invprior.models.conditional import FAMILY, family_check

SHAPE = (1, 1, 28, 28)


def test_conditions_shift_the_operator_out_of_the_trained_family_and_not_in_distribution():
    for task in bc.TASKS:
        A, sigma = bc.make_operator(task, SHAPE, "a")
        assert family_check(A, sigma, FAMILY) == [], task
        A, sigma = bc.make_operator(task, SHAPE, "b")
        assert family_check(A, sigma, FAMILY), task  # every task leaves the family under condition b


def _fake_rows() -> list[dict]:
    rows = []
    for c in ("a", "b"):
        for m in ("e2e", "pigdm"):
            r = {"condition": c, "data": "shapes", "task": "sr4", "method": m, "PSNR": 20.0 - (c == "b"),
                 "SSIM": 0.8, "chi2": 1.0 if m == "pigdm" else 3.0, "NFE": 1, "time s": 0.1, "flags": "none",
                 "plausibility pct": 40.0}  # fmt: skip
            if m == "pigdm":
                r.update({"cover90": 0.7, "cover90 recal": 0.9, "cal err": 0.1, "cal err recal": 0.02,
                          "curve": [0.4, 0.5, 0.55, 0.6, 0.7, 0.75, 0.8], "curve recal": list(bc.LEVELS)})  # fmt: skip
            rows.append(r)
    return rows


def _chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.fail("Debian's chromium is not installed (.ci/run installs it: apt-get install chromium)")
    return exe


def test_html_report_shows_its_figures_in_headless_chromium(tmp_path):
    g = torch.Generator().manual_seed(0)
    (tmp_path / "challenge").mkdir()
    save_grid([ReportRow("x", [Panel(torch.rand(1, 28, 28, generator=g), "truth")])],
              tmp_path / "challenge" / "a-shapes-sr4.png")  # fmt: skip
    md, page = bc.write_report(_fake_rows(), tmp_path, "invprior bench challenge (test)", "(0 s)")
    text = page.read_text()
    assert "coverage.png" in text and "psnr-chi2.png" in text and "a-shapes-sr4.png" in text
    assert "![coverage.png](challenge/coverage.png)" in md.read_text()
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--allow-file-access-from-files",
             "--virtual-time-budget=5000"]  # fmt: skip
    exe = _chromium()
    dom = subprocess.run([exe, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert 'data-images-loaded="3/3"' in dom.stdout, dom.stdout[-500:] + dom.stderr[-500:]
    shot = tmp_path / "shot.png"
    subprocess.run([exe, *flags, f"--screenshot={shot}", "--window-size=1200,2400", page.as_uri()],
                   capture_output=True, timeout=120, check=True)  # fmt: skip
    from PIL import Image

    img = np.asarray(Image.open(shot).convert("L"), dtype=np.float64)
    assert img.shape[0] >= 2000
    assert img.std() > 10  # not blank: text, tables and figures
    assert (img < 128).mean() > 0.01  # dark pixels of the plots and text


def test_predictions_are_judged_from_the_cells():
    rows = _fake_rows()
    rows[1]["PSNR"] = 21.0  # pigdm beats e2e in distribution
    preds = {p["prediction"]: p for p in bc._predictions(rows)}
    best = preds["the end-to-end net is best in distribution (a)"]
    assert best["holds"] == "no" and "best PSNR in 0 of 1 cells (shapes sr4: pigdm)" in best["measured"]
    shift = preds["under operator shift (b) the end-to-end net stops fitting the data (chi2 >> 1)"]
    assert shift["holds"] == "yes" and "1 of 1 shifted cells above 1.5" in shift["measured"]
    keep = preds["prior-based samplers keep fitting the data under operator shift (b)"]
    assert keep["holds"] == "yes" and "pigdm 1.00" in keep["measured"] and "pigdm 2.00 dB" in keep["measured"]
    for r in rows:  # now pigdm misfits too: the prediction no longer holds
        r["chi2"] = 3.0
    keep = {p["prediction"]: p for p in bc._predictions(rows)}[keep["prediction"]]
    assert keep["holds"] == "no"


def test_merged_runs_keep_every_command_once_and_redone_cells_replace_old_ones(tmp_path):
    import json

    rows = _fake_rows()
    first, cmd = bc.merge_rows(tmp_path, rows[:2], "run A")
    (tmp_path / "challenge.json").write_text(json.dumps({"command": cmd, "rows": first}))
    for cell in ([rows[2]], [rows[3]]):  # run B saves its cells one by one
        merged, cmd = bc.merge_rows(tmp_path, cell, "run B")
        (tmp_path / "challenge.json").write_text(json.dumps({"command": cmd, "rows": merged}))
    assert cmd == "run A`, then `run B" and len(merged) == 4
    redo = {**rows[0], "PSNR": 99.0}
    merged, cmd = bc.merge_rows(tmp_path, [redo], "run B")
    assert len(merged) == 4 and next(r["PSNR"] for r in merged if r["method"] == "e2e") == 99.0
