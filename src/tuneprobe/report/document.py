"""The report as a list of blocks, rendered to markdown (``report.md``) and to one self-contained HTML page.

Blocks: :class:`Heading`, :class:`Para` (inline markdown: ```code``` and ``**bold**`` only), :class:`Items`
(a bullet list), :class:`Code` (preformatted text), :class:`Table` and :class:`Figure`. A table or figure
whose rows are absent carries ``missing`` (what it needs) instead of content and renders as
"not in this run". The HTML page embeds every figure as a base64 PNG and its CSS inline, so it makes no
external request.
"""

from __future__ import annotations

import base64
import html
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd


@dataclass
class Heading:
    level: int
    text: str
    anchor: str = ""


@dataclass
class Para:
    text: str


@dataclass
class Items:
    items: list[str]


@dataclass
class Code:
    text: str


@dataclass
class Table:
    """A table: ``display`` (strings, one column per shown column) and ``data`` (raw values, for the CSV).

    ``missing`` (what the table needs) replaces both when the run has no rows for it.
    """

    id: str
    title: str
    caption: str = ""
    display: pd.DataFrame | None = None
    data: pd.DataFrame | None = None
    missing: str | None = None
    notes: list[str] = field(default_factory=list)
    csv_path: Path | None = None


@dataclass
class Figure:
    """A figure written as ``png`` and ``svg`` files; ``missing`` (what it needs) when it could not be
    drawn."""

    id: str
    title: str
    caption: str = ""
    png: Path | None = None
    svg: Path | None = None
    missing: str | None = None


Block = Heading | Para | Items | Code | Table | Figure


def fmt(x: object, digits: int = 2) -> str:
    """A number for display: ``–`` for NaN/None, integers without decimals, else ``digits`` decimals."""
    if x is None:
        return "–"
    if isinstance(x, str):
        return x
    v = float(x)  # type: ignore[arg-type]
    if math.isnan(v):
        return "–"
    if v.is_integer() and abs(v) < 1e15:
        return f"{int(v)}"
    return f"{v:.{digits}f}"


def fmt_pm(mean: float, std: float, digits: int = 2) -> str:
    """``mean ± std`` (``–`` when the mean is NaN; the mean alone when the std is NaN)."""
    if mean is None or math.isnan(mean):
        return "–"
    if std is None or math.isnan(std):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


# ---------------------------------------------------------------------------------------------- markdown


def _md_cell(s: object) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured markdown table of ``frame`` (cells as strings, ``|`` escaped)."""
    cols = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(_md_cell(c) for c in cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(_md_cell(v) for v in row) + " |")
    return "\n".join(lines)


def to_markdown(blocks: list[Block], base: Path) -> str:
    """The report as markdown; figure and CSV paths relative to ``base`` (the report directory)."""
    out: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            out.append("#" * b.level + " " + b.text)
        elif isinstance(b, Para):
            out.append(b.text)
        elif isinstance(b, Items):
            out.append("\n".join(f"- {it}" for it in b.items))
        elif isinstance(b, Code):
            out.append("```\n" + b.text.rstrip("\n") + "\n```")
        elif isinstance(b, Table):
            parts = [f"**{b.title}**" + (f" {b.caption}" if b.caption else "")]
            if b.missing is not None:
                parts.append(f"*Not in this run:* {b.missing}")
            else:
                assert b.display is not None
                parts.append(markdown_table(b.display))
                if b.csv_path is not None:
                    parts.append(f"CSV: [`{_rel(b.csv_path, base)}`]({_rel(b.csv_path, base)})")
            parts.extend(b.notes)
            out.append("\n\n".join(parts))
        elif isinstance(b, Figure):
            if b.missing is not None:
                out.append(f"**{b.title}** *Not in this run:* {b.missing}")
            else:
                assert b.png is not None
                links = f"[PNG]({_rel(b.png, base)})" + (f" · [SVG]({_rel(b.svg, base)})" if b.svg else "")
                out.append(f"**{b.title}** {b.caption}\n\n![{b.title}]({_rel(b.png, base)})\n\n{links}")
    return "\n\n".join(out) + "\n"


def _rel(path: Path, base: Path) -> str:
    try:
        return path.relative_to(base).as_posix()
    except ValueError:
        return path.as_posix()


# -------------------------------------------------------------------------------------------------- HTML

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:1200px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}
h1{border-bottom:2px solid #444}h2{border-bottom:1px solid #bbb;margin-top:2em}
table{border-collapse:collapse;margin:.5em 0 1em;font-size:.88em}
th,td{border:1px solid #ccc;padding:.2em .5em;text-align:left}th{background:#f0f0f0}
td.num{text-align:right;white-space:nowrap}td:first-child,td:nth-child(2){white-space:nowrap}
code{background:#f4f4f4;padding:0 .2em}pre{background:#f6f6f6;padding:.6em;overflow-x:auto}
figure{margin:1em 0 2em}figure img{max-width:100%;height:auto;border:1px solid #ddd}
figcaption{font-size:.9em;color:#444}.missing{color:#8a4b00;font-style:italic}
nav ul{columns:2}
"""


def _inline(text: str) -> str:
    """Escape ``text`` and turn ```code```, ``**bold**`` and ``[text](href)`` into HTML."""
    out = html.escape(text, quote=False)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    out = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", out)
    out = re.sub(r"\*([^*]+)\*", r"<em>\1</em>", out)
    return re.sub(
        r"\[([^\]]+)\]\(([^)\s]+)\)", lambda m: f'<a href="{html.escape(m.group(2))}">{m.group(1)}</a>', out
    )


_NUMERIC = re.compile(r"^[-+]?[\d.]+( ± [\d.]+)?( / [-+]?[\d.]+)?$")


def _td(text: str) -> str:
    cls = ' class="num"' if _NUMERIC.match(text) else ""
    return f"<td{cls}>{_inline(text)}</td>"


def _html_table(frame: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = "".join(
        "<tr>" + "".join(_td(str(v)) for v in row) + "</tr>" for row in frame.itertuples(index=False)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def to_html(blocks: list[Block], title: str, base: Path) -> str:
    """One self-contained HTML page: CSS inline, figures as base64 PNG ``<img>`` elements."""
    out: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            anchor = f' id="{html.escape(b.anchor)}"' if b.anchor else ""
            out.append(f"<h{b.level}{anchor}>{_inline(b.text)}</h{b.level}>")
        elif isinstance(b, Para):
            out.append(f"<p>{_inline(b.text)}</p>")
        elif isinstance(b, Items):
            out.append("<ul>" + "".join(f"<li>{_inline(it)}</li>" for it in b.items) + "</ul>")
        elif isinstance(b, Code):
            out.append(f"<pre>{html.escape(b.text)}</pre>")
        elif isinstance(b, Table):
            cap = f"<p><strong>{_inline(b.title)}</strong> {_inline(b.caption)}</p>"
            if b.missing is not None:
                out.append(cap + f'<p class="missing">Not in this run: {_inline(b.missing)}</p>')
            else:
                assert b.display is not None
                out.append(cap + _html_table(b.display) + "".join(f"<p>{_inline(n)}</p>" for n in b.notes))
        elif isinstance(b, Figure):
            if b.missing is not None:
                out.append(
                    f'<p><strong>{_inline(b.title)}</strong> <span class="missing">Not in this run: '
                    f"{_inline(b.missing)}</span></p>"
                )
            else:
                assert b.png is not None
                data = base64.b64encode(b.png.read_bytes()).decode("ascii")
                out.append(
                    f'<figure id="fig-{html.escape(b.id)}"><img class="figure" alt="{html.escape(b.title)}" '
                    f'src="data:image/png;base64,{data}"><figcaption><strong>{_inline(b.title)}</strong> '
                    f"{_inline(b.caption)}</figcaption></figure>"
                )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>\n"
        + "\n".join(out)
        + "\n</body></html>\n"
    )
