"""Keep the README's generated parts in sync: ``python -m exporter.readme`` rewrites them."""

from __future__ import annotations

import re
from pathlib import Path

from exporter.support import support_table_markdown

START, END = "<!-- support-table:start -->", "<!-- support-table:end -->"


def render(readme: str) -> str:
    """The README text with the support table between its markers replaced by the current one."""
    pattern = re.compile(re.escape(START) + r".*?" + re.escape(END), re.DOTALL)
    if not pattern.search(readme):
        raise ValueError(f"README has no {START} … {END} block")
    return pattern.sub(lambda _: f"{START}\n{support_table_markdown()}\n{END}", readme)


def main() -> None:
    path = Path(__file__).resolve().parent.parent / "README.md"
    path.write_text(render(path.read_text(encoding="utf-8")), encoding="utf-8")


if __name__ == "__main__":
    main()
