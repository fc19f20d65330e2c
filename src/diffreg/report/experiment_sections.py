"""One built experiment folder as the HTML report shows it: its sections with the tables and
PNGs read in, every claim judged again with this version's statistics, and the numbers behind
each verdict as a table linked to their CSVs."""
from __future__ import annotations

import html
import json
import os
from pathlib import Path

from diffreg.errors import InputError
from diffreg.report import stats
from diffreg.report.claim_checks import claim_line, rejudge

def _link(href: str | None, name: str) -> str:
    return f'<a href="{html.escape(href, quote=True)}">{html.escape(name)}</a>' if href else html.escape(name)


def stats_html(claim: dict, href: str | None) -> str | None:
    """The numbers behind a verdict: each compared row's mean and interval, its paired difference
    to the claimed row, the interval of that difference and the test's p; linked to their CSVs."""
    lines = claim.get("lines")
    if not lines:
        return None
    out = ['<table class="metrics stats">',
           "<caption>Statistics of the claim — from " + " and ".join(
               _link(f"{href}/{claim[k]}" if href else None, claim[k]) for k in ("values", "stats") if claim.get(k))
           + "</caption>",
           f"<thead><tr><th>Row</th><th>n</th><th>mean [{stats.LEVEL:.0%} CI]</th>"
           f"<th>claimed − row [{stats.LEVEL:.0%} CI]</th><th>n paired</th><th>p</th></tr></thead><tbody>"]
    f = stats.fmt
    for i, r in enumerate(lines):
        first = i == 0 or r["row"] == "initial" or not r.get("n_paired")
        diff = "" if first else f"{f(r['diff'])} [{f(r['diff_lo'])}, {f(r['diff_hi'])}]"
        out.append(f"<tr><td>{html.escape(str(r['row']))}</td><td>{r['n']}</td>"
                   f"<td>{f(r['mean'])} [{f(r['ci_lo'])}, {f(r['ci_hi'])}]</td><td>{diff}</td>"
                   f"<td>{'' if first else r['n_paired']}</td><td>{'' if first else stats.fmt_p(r['p'])}</td></tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def report_sections(folder: str | os.PathLike, href: str | None = None) -> dict:
    """One experiment folder as the report shows it: name and sections with the table HTML and
    the PNG (base64) read in, the claim judged again and as one line; ``href``: the folder as the
    report links to it (the CSVs each number comes from)."""
    import base64
    folder = Path(folder)
    path = folder / "index.json"
    if not path.is_file():
        raise InputError(f"{path}: file not found (run `diffreg experiment-artifacts` first)")
    try:
        index = json.loads(path.read_text())
        sections = index["sections"]
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{path}: not an experiment index ({exc})") from None
    out = []
    for s in sections:
        table = (folder / s["html"]).read_text(encoding="utf-8") if s.get("html") and (folder / s["html"]).is_file() else None
        png = base64.b64encode((folder / s["png"]).read_bytes()).decode("ascii") \
            if s.get("png") and (folder / s["png"]).is_file() else None
        stored = s.get("claims") if s.get("claims") is not None else ([s["claim"]] if s.get("claim") else [])
        judged = [rejudge(c, folder) for c in stored]
        csv = f"{s.get('artifact', '')}.csv"
        sources = [_link(f"{href}/{csv}" if href else None, csv)] if (folder / csv).is_file() else []
        out.append({"artifact": s.get("artifact", ""), "title": s.get("title") or s.get("artifact", ""),
                    "table_html": table, "png_b64": png, "caption": s.get("caption", ""),
                    "regenerated": bool(s.get("regenerated", table or png)),
                    "not_implemented": int(s.get("not_implemented", 0)),
                    "claims": [{"line": claim_line(c), "holds": c.get("holds"), "verdict": c.get("verdict"),
                                "stats_html": stats_html(c, href)} for c in judged],
                    "sources_html": " · ".join(sources)})
    return {"name": str(index.get("experiment", folder.name)), "key": str(index.get("name", folder.name)),
            "sections": out}
