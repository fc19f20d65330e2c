"""The report's first table: per paper, how many of its declared tables and figures were
regenerated, how many still lack a row because a method is not implemented, and its claims'
verdicts as counts, each artifact linked to its section."""
from __future__ import annotations

from diffreg.report import stats


def anchor(paper_index: int, artifact: str) -> str:
    """The HTML id of an artifact's section (paper_index counts from 1, as the report's sections)."""
    return f"paper-{paper_index}-{artifact}"


def scorecard(experiments: list[dict]) -> list[dict]:
    """One row per experiment of ``report_sections`` output."""
    rows = []
    for i, exp in enumerate(experiments, start=1):
        secs = exp["sections"]
        verdicts = [c["verdict"] or stats.UNTESTABLE for s in secs for c in s["claims"]]
        rows.append({
            "name": exp["name"], "anchor": f"paper-{i}",
            "declared": len(secs),
            "regenerated": sum(bool(s["regenerated"]) for s in secs),
            "incomplete": sum(s["not_implemented"] > 0 for s in secs),
            "verdicts": {v: verdicts.count(v) for v in stats.VERDICTS},
            "artifacts": [{"name": s["artifact"] or s["title"], "href": "#" + anchor(i, s["artifact"]),
                           "regenerated": bool(s["regenerated"]),
                           "verdicts": [c["verdict"] for c in s["claims"]]} for s in secs],
        })
    return rows


__all__ = ["anchor", "scorecard"]
