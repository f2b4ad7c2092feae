"""Markdown tables (no heavy imports: the CLI's quick commands use it before torch is loaded)."""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["markdown_table"]


def markdown_table(rows: Sequence[dict[str, object]], columns: Sequence[str] | None = None) -> str:
    """A Markdown table; floats get 4 significant digits."""
    if not rows:
        return "(no rows)\n"
    columns = list(columns or rows[0].keys())

    def fmt(v: object) -> str:
        if isinstance(v, float):
            if math.isnan(v):
                return "n/a"
            return f"{v:.4g}"
        return str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(fmt(r.get(c, "")) for c in columns) + " |")
    return "\n".join(lines) + "\n"
