"""Draw the integration's brand icon (custom_components/prepaid_meter/brand/).

Home Assistant 2026.3 and later show a custom integration's own
``brand/icon.png`` (and ``icon@2x.png``) in the UI; older versions fall back
to a generic icon. The icon is drawn here rather than by hand so it can be
changed in one place: a meter (a rounded body with a display) and a
lightning bolt, on the project's blue.

    .venv/bin/python -m devtools.brand
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

BRAND = Path(__file__).parents[1] / "custom_components" / "prepaid_meter" / "brand"
BLUE = (3, 105, 161, 255)
WHITE = (255, 255, 255, 255)
SCREEN = (224, 242, 254, 255)
AMBER = (245, 158, 11, 255)


def icon(size: int) -> Image.Image:
    """The icon at ``size`` x ``size`` pixels, transparent around a rounded square."""
    scale = size / 256
    img = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)

    def box(x0: float, y0: float, x1: float, y1: float) -> tuple[int, int, int, int]:
        return (round(x0 * scale), round(y0 * scale), round(x1 * scale), round(y1 * scale))

    draw.rounded_rectangle(box(8, 8, 248, 248), radius=round(48 * scale), fill=BLUE)
    draw.rounded_rectangle(box(56, 36, 200, 220), radius=round(20 * scale), fill=WHITE)
    draw.rounded_rectangle(box(76, 58, 180, 106), radius=round(8 * scale), fill=SCREEN)
    bolt = [(136, 118), (96, 170), (124, 170), (114, 206), (160, 148), (132, 148), (142, 118)]
    draw.polygon([(round(x * scale), round(y * scale)) for x, y in bolt], fill=AMBER)
    return img


def main() -> None:
    BRAND.mkdir(parents=True, exist_ok=True)
    icon(256).save(BRAND / "icon.png", optimize=True)
    icon(512).save(BRAND / "icon@2x.png", optimize=True)
    print(BRAND)


if __name__ == "__main__":
    main()
