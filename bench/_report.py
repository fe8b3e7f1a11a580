"""Write one named section of BENCHMARKS.md, leaving the other scripts' sections alone.

Every bench script owns exactly one section, delimited by HTML comment markers, so the
scripts can run in any order and re-running one only replaces its own numbers.
"""

from __future__ import annotations

import os
import platform
import re
from pathlib import Path

BENCHMARKS_PATH = Path(__file__).resolve().parent.parent / "BENCHMARKS.md"
_HEADER = (
    "# Benchmarks\n\n"
    "Every number below was measured by the script named in its section; rerun that command to\n"
    "reproduce it. Sections are rewritten independently by their scripts.\n"
)


def machine_line() -> str:
    """One line describing where a measurement was taken."""
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def write_section(name: str, body: str, path: Path = BENCHMARKS_PATH) -> None:
    """Replace (or append) the section ``name`` of BENCHMARKS.md with ``body``."""
    begin, end = f"<!-- begin {name} -->", f"<!-- end {name} -->"
    block = f"{begin}\n{body.rstrip()}\n{end}\n"
    text = path.read_text() if path.exists() else _HEADER
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end) + r"\n?", re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text + "\n" + block
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(text)
    tmp.replace(path)
