"""The shipped brand icons are the ones devtools/brand.py draws, at the sizes HA reads."""

from __future__ import annotations

import pytest
from PIL import Image

from devtools.brand import BRAND, icon


@pytest.mark.parametrize(("name", "size"), [("icon.png", 256), ("icon@2x.png", 512)])
def test_brand_icon_is_the_drawn_one(name: str, size: int) -> None:
    with Image.open(BRAND / name) as shipped:
        assert shipped.size == (size, size)
        assert shipped.mode == "RGBA"
        assert shipped.tobytes() == icon(size).tobytes(), "run: python -m devtools.brand"
