"""Helpers of the report tests: what a page loads from elsewhere, which trials it lists."""

from __future__ import annotations

import re
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

LOADING_ATTRS = {
    "script": ("src",),
    "link": ("href",),
    "img": ("src", "srcset"),
    "source": ("src", "srcset"),
    "iframe": ("src",),
    "embed": ("src",),
    "object": ("data",),
    "video": ("src", "poster"),
    "audio": ("src",),
    "image": ("href", "xlink:href"),
    "use": ("href", "xlink:href"),
}
"""Elements whose attribute makes a browser fetch something."""


class _Loads(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.styles: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value is None:
                continue
            if name in LOADING_ATTRS.get(tag, ()):
                self.urls.append(value)
            if name == "style":
                self.styles.append(value)
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.styles.append(data)


def remote_loads(html: str) -> list[str]:
    """Every URL the page's markup would fetch from another host: `src` / `href` of scripts,
    stylesheets, images, fonts and frames, and `url(...)` / `@import` in its styles."""
    parser = _Loads()
    parser.feed(html)
    css_urls = [
        m.group(1).strip("'\"")
        for css in parser.styles
        for m in re.finditer(r"(?:url\(|@import\s+)\s*([^)\s;]+)", css)
    ]
    return [
        u
        for u in parser.urls + css_urls
        if re.match(r"^\s*(?:[a-z][a-z0-9+.-]*:)?//", u, re.I)  # scheme://host or //host
        and not u.strip().lower().startswith(("file:", "data:", "blob:"))
    ]


def listed_trials(html: str) -> set[int]:
    """Trial numbers with a row in the trials table."""
    return {int(n) for n in re.findall(r'<tr class="\w+" id="trial-(\d+)">', html)}


def text_of(html: str) -> str:
    """The page's visible text without its scripts, entities decoded, whitespace collapsed."""
    no_scripts = re.sub(r"<script\b.*?</script>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", no_scripts)))


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")
