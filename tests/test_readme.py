"""The README's links: pictures that exist, anchors that exist, one import link per blueprint."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
RAW = "https://raw.githubusercontent.com/prepaid-meter/prepaid_meter/main/"


def _anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to dashes."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_every_picture_is_in_the_repository() -> None:
    pictures = re.findall(r"!\[[^\]]*\]\((docs/[^)]+)\)", README)
    pictures += re.findall(r'<img src="(docs/[^"]+)"', README)
    assert {"docs/dashboard.png", "docs/tenant-page.png", "docs/bill.png"} <= set(pictures)
    for picture in pictures:
        assert (ROOT / picture).is_file(), picture


def test_every_internal_link_has_its_heading() -> None:
    anchors = {_anchor(h) for h in re.findall(r"(?m)^#{2,3} (.+)$", README)}
    links = set(re.findall(r"\]\(#([^)]+)\)", README))
    assert links, "the README links its sections"
    assert links - anchors == set()


def test_every_blueprint_has_a_one_click_import_of_its_raw_file() -> None:
    shipped = sorted((ROOT / "blueprints").rglob("*.yaml"))
    assert shipped
    urls = re.findall(
        r"\((https://my\.home-assistant\.io/redirect/blueprint_import/\?[^)]+)\)", README
    )
    imported = set()
    for url in urls:
        [target] = parse_qs(urlparse(url).query)["blueprint_url"]
        target = unquote(target)
        assert target.startswith(RAW), target
        imported.add(target.removeprefix(RAW))
    assert imported == {str(p.relative_to(ROOT)) for p in shipped}
