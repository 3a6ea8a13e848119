"""BENCHMARKS.md: a report with pages appended below it, links rewritten, headings one level down."""

from __future__ import annotations

import os
import re
from pathlib import Path

_LINK = re.compile(r"(\]\()(?!https?:|#|/)([^)\s]+)(\))")


def relink(markdown: str, source_dir: Path, dest_dir: Path) -> str:
    """Rewrite relative links/images of a markdown file in `source_dir` to work from `dest_dir`."""
    prefix = Path(os.path.relpath(source_dir, dest_dir)).as_posix()
    if prefix == ".":
        return markdown
    return _LINK.sub(lambda m: f"{m.group(1)}{prefix}/{m.group(2)}{m.group(3)}", markdown)



def demote_headings(markdown: str) -> str:
    """One more '#' on every heading outside code fences (to nest a page under another)."""
    out, fenced = [], False
    for line in markdown.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced and line.startswith("#"):
            line = "#" + line
        out.append(line)
    return "\n".join(out)


def benchmarks_page(report: Path, dest: Path, appended: list[Path]) -> str:
    """The text of a BENCHMARKS page at `dest`: `report`, then each of `appended` (headings one level
    down), their relative links rewritten to work from `dest`'s folder."""
    folder = dest.resolve().parent
    parts = [relink(report.read_text(), report.resolve().parent, folder).rstrip() + "\n"]
    for extra in appended:
        text = relink(extra.read_text(), extra.resolve().parent, folder)
        parts.append(demote_headings(text).rstrip() + "\n")
    return "\n".join(parts)
