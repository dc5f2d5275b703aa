"""The icon set: generated from the SVG source, readable by Qt, shipped with the package."""

from __future__ import annotations

import struct
from importlib import resources
from pathlib import Path
from types import ModuleType

import pytest
from PySide6.QtGui import QImage, QImageReader

from .conftest import ROOT

ICONS = ROOT / "resources" / "icons"
SVG = ROOT / "resources" / "bandsync.svg"


def _decode(data: bytes) -> QImage:
    image = QImage()
    assert image.loadFromData(data, "PNG")
    return image.convertToFormat(QImage.Format.Format_ARGB32)


def _max_channel_difference(a: QImage, b: QImage) -> int:
    assert a.size() == b.size()
    worst = 0
    step = max(1, a.width() // 64)
    for y in range(0, a.height(), step):
        for x in range(0, a.width(), step):
            pa, pb = a.pixel(x, y), b.pixel(x, y)
            for shift in (0, 8, 16, 24):
                worst = max(worst, abs(((pa >> shift) & 0xFF) - ((pb >> shift) & 0xFF)))
    return worst


def test_committed_pngs_are_what_the_svg_renders_to(
    qapp: object, icons_script: ModuleType, tmp_path: Path
) -> None:
    fresh = icons_script.render_pngs(SVG, (16, 64, 256))
    for size, data in fresh.items():
        committed = (ICONS / f"bandsync-{size}.png").read_bytes()
        assert icons_script.png_size(committed) == (size, size)
        # A newer Qt may antialias a little differently; a changed drawing differs a lot.
        assert _max_channel_difference(_decode(data), _decode(committed)) <= 24, (
            f"resources/icons/bandsync-{size}.png is stale: run python packaging/icons.py"
        )


def test_every_png_size_is_square_and_not_empty(icons_script: ModuleType) -> None:
    for size in icons_script.PNG_SIZES:
        image = _decode((ICONS / f"bandsync-{size}.png").read_bytes())
        assert (image.width(), image.height()) == (size, size)
        # the tile is opaque in the middle and transparent in the corner
        assert image.pixelColor(size // 2, size // 2).alpha() == 255
        assert image.pixelColor(0, 0).alpha() == 0


def test_ico_holds_every_windows_size_and_qt_reads_them(qapp: object) -> None:
    path = ICONS / "bandsync.ico"
    data = path.read_bytes()
    reserved, kind, count = struct.unpack("<HHH", data[:6])
    assert (reserved, kind, count) == (0, 1, 7)
    reader = QImageReader(str(path))
    sizes = []
    for index in range(reader.imageCount()):
        assert reader.jumpToImage(index)
        sizes.append(reader.read().width())
    assert sorted(sizes) == [16, 24, 32, 48, 64, 128, 256]


def test_icns_holds_retina_sizes_and_qt_reads_them(qapp: object, icons_script: ModuleType) -> None:
    path = ICONS / "bandsync.icns"
    elements = icons_script.read_icns(path.read_bytes())
    assert set(elements) == {kind for kind, _ in icons_script.ICNS_TYPES}
    for kind, size in icons_script.ICNS_TYPES:
        assert icons_script.png_size(elements[kind]) == (size, size), kind
    reader = QImageReader(str(path))
    assert reader.imageCount() == len(icons_script.ICNS_TYPES)
    assert reader.read().width() > 0


def test_writers_reject_what_the_formats_cannot_hold(
    qapp: object, icons_script: ModuleType
) -> None:
    pngs = icons_script.render_pngs(SVG, (16, 512))
    with pytest.raises(ValueError, match="1 to 256"):
        icons_script.write_ico(pngs)
    with pytest.raises(ValueError, match="16px image"):
        icons_script.write_ico({16: pngs[512]})
    with pytest.raises(ValueError, match="no image"):
        icons_script.write_icns({20: pngs[16]})
    with pytest.raises(ValueError, match="not an ICNS"):
        icons_script.read_icns(b"nope")
    with pytest.raises(ValueError, match="not a PNG"):
        icons_script.png_size(b"GIF89a")


def test_generate_writes_the_whole_set(
    qapp: object, icons_script: ModuleType, tmp_path: Path
) -> None:
    written = icons_script.generate(SVG, tmp_path / "icons", tmp_path / "runtime")
    names = {p.name for p in written}
    assert {"bandsync.ico", "bandsync.icns", "bandsync-1024.png", "icon.svg"} <= names
    assert all(p.stat().st_size > 0 for p in written)


def test_the_package_ships_the_window_icon() -> None:
    runtime = resources.files("bandsync_desktop").joinpath("resources")
    assert runtime.joinpath("icon.svg").read_bytes() == SVG.read_bytes()
    for size in (64, 256):
        image = _decode(runtime.joinpath(f"icon-{size}.png").read_bytes())
        assert image.width() == size
