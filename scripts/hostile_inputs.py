"""Run every hostile case of tests/hostile_cases.py and count the verdicts (issue 19).

    python scripts/hostile_inputs.py                      # this checkout
    PYTHONPATH=/path/to/old/checkout python scripts/hostile_inputs.py --label before

Runs under an address-space limit (``--mem-limit-gb``, default 8), so that a version which tries
to allocate a huge schedule fails with an error instead of waking the OOM killer. Prints one line
per case and a table of counts: clear error / unclear / silent wrong / data loss.
``--out FILE`` also writes the rows as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from hostile_cases import CASES, verdict

import invprior


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--label", default="after")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--before", type=Path, default=None, help="the --out JSON of an earlier run: write a comparison")
    ap.add_argument("--report", type=Path, default=Path("docs/results/hostile-inputs.md"))
    ap.add_argument("--mem-limit-gb", type=float, default=8.0, help="address-space limit (older versions allocate)")
    args = ap.parse_args()
    import resource

    limit = int(args.mem_limit_gb * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))  # an allocation past it raises, not the OOM killer
    rows = []
    for case in CASES:
        with tempfile.TemporaryDirectory() as tmp:
            v, detail = verdict(case, Path(tmp))
        rows.append({"case": case.name, "verdict": v, "detail": detail.splitlines()[0][:160] if detail else ""})
        print(f"{v:10s} {case.name}: {rows[-1]['detail']}", flush=True)
    counts = Counter(r["verdict"] for r in rows)
    print(f"\n{args.label} ({invprior.__file__}): {len(rows)} cases")
    for k in ("clear", "unclear", "silent", "data loss"):
        print(f"  {k:10s} {counts.get(k, 0)}")
    if args.out:
        args.out.write_text(json.dumps({"label": args.label, "counts": counts, "rows": rows}, indent=1))
    if args.before:
        _report(json.loads(args.before.read_text()), {"label": args.label, "counts": counts, "rows": rows}, args.report)


def _report(before: dict, after: dict, path: Path) -> None:
    kinds = ("clear", "unclear", "silent", "data loss")
    old = {r["case"]: r for r in before["rows"]}
    lines = [
        "# Hostile inputs: before and after (issue 19)",
        "",
        "Made by `python scripts/hostile_inputs.py --before BEFORE.json`, where BEFORE.json came from the same",
        "script run with `PYTHONPATH` set to a checkout of the earlier version "
        f"({before['label']}). Cases: `tests/hostile_cases.py`; each is also a test (`tests/test_hostile.py`).",
        "",
        "Verdicts: **clear** = an `InvpriorError` whose message names the option (or the documented warning /",
        "a correct result); **unclear** = another exception, or a message that does not name it; **silent** =",
        "finished with no error or warning, or with a wrong result; **data loss** = a user's file deleted or hidden.",
        "",
        "| | " + " | ".join(kinds) + " |",
        "|---|" + "---|" * len(kinds),
    ]
    for run in (before, after):
        lines.append(f"| {run['label']} | " + " | ".join(str(run["counts"].get(k, 0)) for k in kinds) + " |")
    lines += ["", f"| case | {before['label']} | {after['label']} | message now |", "|---|---|---|---|"]
    for r in after["rows"]:
        b = old.get(r["case"], {"verdict": "n/a", "detail": ""})
        msg = r["detail"].replace("|", "\\|")
        lines.append(f"| {r['case']} | {b['verdict']}: {b['detail'][:70].replace('|', '/')} | {r['verdict']} | {msg} |")
    path.write_text("\n".join(lines) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
