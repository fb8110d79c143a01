"""The static site (scripts/build_site.py, Jupyter Book): every notebook has a page, no internal link is broken.

One build of the real site into a temporary folder (about 20 s on 2 cores), checked by parsing its HTML: each
notebook's page carries its title and at least as many images as the notebook has image outputs, and every local
``href`` and ``src`` of every page (a page, a file, ``page.html#anchor`` or ``#anchor``) resolves. A second, tiny
build shows that a broken link between notebooks fails the build, and a tampered copy of a page shows that the
checker sees a broken href.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))

pytest.importorskip("jupyter_book", reason="jupyter-book is in the dev extras: pip install -e '.[dev]'")
_spec = importlib.util.spec_from_file_location("build_site", ROOT / "scripts" / "build_site.py")
build_site = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build_site)


class _Page(HTMLParser):
    """The ids, links (href/src), images, title and first h1 of one HTML page."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids, self.links, self.images = set(), [], []
        self.title, self.h1, self._in = "", None, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("id", "name") if tag == "a" else ("id",):
            if attrs.get(key):
                self.ids.add(attrs[key])
        for key in ("href", "src"):
            if attrs.get(key) is not None:
                self.links.append((tag, attrs[key]))
        if tag == "img":
            self.images.append(attrs.get("src", ""))
        if tag == "title":
            self._in = "title"
        elif tag == "h1" and self.h1 is None:
            self._in, self.h1 = "h1", ""

    def handle_endtag(self, tag):
        if tag in ("title", "h1"):
            self._in = None

    def handle_data(self, data):
        if self._in == "title":
            self.title += data
        elif self._in == "h1":
            self.h1 += data


def parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def broken_links(site: Path) -> list[str]:
    """Every local href/src of every page under ``site`` that points at no file, or at no id of its page."""
    pages = {p: parse(p) for p in site.rglob("*.html") if "_static" not in p.relative_to(site).parts}  # not templates
    broken = []
    for path, page in pages.items():
        for tag, url in page.links:
            parts = urlsplit(url)
            if parts.scheme or parts.netloc or url.startswith(("javascript:", "data:")) or url in ("", "#"):
                continue  # external, or the theme's placeholder
            target = (path.parent / unquote(parts.path)).resolve() if parts.path else path
            if target.is_dir():
                target = target / "index.html"
            where = f"{path.relative_to(site)}: <{tag}> {url}"
            if not target.is_file() or site.resolve() not in target.resolve().parents:
                broken.append(f"{where} (no such file)")
            elif parts.fragment and target.suffix == ".html":
                ids = pages[target].ids if target in pages else parse(target).ids
                if unquote(parts.fragment) not in ids:
                    broken.append(f"{where} (no such anchor)")
    return broken


def notebook_title(nb: dict) -> str:
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            match = re.search(r"^# (.+)$", "".join(cell["source"]), flags=re.M)
            if match:
                return match.group(1).strip()
    raise AssertionError("the notebook has no # title")


def image_outputs(nb: dict) -> int:
    return sum(1 for c in nb["cells"] for o in c.get("outputs", [])
               if any(m.startswith("image/") for m in o.get("data", {})))


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site") / "html"
    warnings = build_site.build(out)
    assert not warnings, "\n".join(warnings)
    return out


def test_the_site_has_a_front_page_listing_every_notebook(site):
    index = parse(site / "index.html")
    linked = {url.split("#")[0] for _, url in index.links}
    for nb in NOTEBOOKS:
        assert f"notebooks/{nb.stem}.html" in linked, f"{nb.name} is not in the table of contents"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_notebook_is_rendered_with_its_title_and_images(site, path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    html = site / "notebooks" / f"{path.stem}.html"
    assert html.is_file(), f"no page for {path.name}"
    page = parse(html)
    title = notebook_title(nb)
    plain = re.sub(r"[*_`]", "", title)
    assert plain in page.title and plain in page.h1.replace("#", "").strip(), (plain, page.title, page.h1)
    pictures = [src for src in page.images if "_images/" in src]
    assert len(pictures) >= image_outputs(nb), f"{len(pictures)} images for {image_outputs(nb)} image outputs"
    for src in pictures:
        data = (html.parent / src).read_bytes()
        assert len(data) > 100 and data[:4] in (b"\x89PNG", b"<?xm", b"<svg", b"\xff\xd8\xff\xe0"), src
    if any("```" in "".join(c["source"]) or c["outputs"] for c in nb["cells"] if c["cell_type"] == "code"):
        assert "cell_output" in html.read_text(encoding="utf-8"), "the committed outputs are not rendered"


def test_no_page_has_a_broken_internal_link(site):
    pages = [p for p in site.rglob("*.html") if "_static" not in p.relative_to(site).parts]
    assert len(pages) >= len(NOTEBOOKS) + 1
    broken = broken_links(site)
    assert not broken, "\n".join(broken[:20])


def test_the_link_check_sees_a_broken_link(site, tmp_path):
    copy = tmp_path / "site"
    shutil.copytree(site, copy)
    page = copy / "notebooks" / f"{NOTEBOOKS[-1].stem}.html"
    text = page.read_text(encoding="utf-8")
    text = text.replace("</article>", '<a href="99_missing.html">x</a><a href="../index.html#no-such-id">y</a>'
                                      '</article>', 1)
    page.write_text(text, encoding="utf-8")
    broken = broken_links(copy)
    assert any("99_missing.html (no such file)" in b for b in broken), broken
    assert any("index.html#no-such-id (no such anchor)" in b for b in broken), broken


def _notebook(cells: list[str]) -> dict:
    return {"nbformat": 4, "nbformat_minor": 5, "metadata": {},
            "cells": [{"cell_type": "markdown", "id": f"c{i}", "metadata": {}, "source": s} for i, s in enumerate(cells)]}


def test_a_broken_link_between_notebooks_fails_the_build(tmp_path):
    repo = tmp_path / "repo"
    (repo / "notebooks").mkdir(parents=True)
    (repo / "notebooks" / "00_first.ipynb").write_text(json.dumps(_notebook(
        ["# 00 · First\n\nSee [the second](01_second.ipynb) and [its part](01_second.ipynb#a-part).",
         "## Known part\n\nText."])))
    (repo / "notebooks" / "01_second.ipynb").write_text(json.dumps(_notebook(
        ["# 01 · Second\n\n## A part\n\nBack to [the first](00_first.ipynb#known-part)."])))
    build_site.build(tmp_path / "good", root=repo)  # resolves: pages and heading anchors
    assert 'href="01_second.html#a-part"' in (tmp_path / "good" / "notebooks" / "00_first.html").read_text()

    (repo / "notebooks" / "01_second.ipynb").write_text(json.dumps(_notebook(
        ["# 01 · Second\n\nOn to [notebook 07](07_missing.ipynb), back to [00](00_first.ipynb#no-such-part)."])))
    with pytest.raises(RuntimeError) as failure:
        build_site.build(tmp_path / "bad", root=repo)
    message = str(failure.value)
    assert "07_missing" in message and "no-such-part" in message, message
