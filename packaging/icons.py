"""Generate every app icon from ``resources/bandsync.svg``: PNG sizes, a Windows ICO, a macOS ICNS.

Rendering uses Qt (``QSvgRenderer`` onto a ``QImage``, offscreen), so no ImageMagick or
Pillow is needed. ICO and ICNS are written by the small writers below: both formats are a
short header followed by PNG-encoded images, which every Windows since Vista and every macOS
since 10.7 reads.

Usage: ``python packaging/icons.py [--out DIR] [--runtime DIR]``. Defaults regenerate the
committed files in ``resources/icons/`` and the runtime copies in
``bandsync_desktop/resources/``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import struct
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE_SVG = ROOT / "resources" / "bandsync.svg"
ICON_DIR = ROOT / "resources" / "icons"
RUNTIME_DIR = ROOT / "bandsync_desktop" / "resources"

PNG_SIZES = (16, 24, 32, 48, 64, 128, 256, 512, 1024)
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)
RUNTIME_PNG_SIZES = (64, 256)
# ICNS element types that hold PNG data, by pixel size (Apple's icns format; PNG payloads are
# read by macOS 10.7 and later). Retina variants reuse the doubled pixel size.
ICNS_TYPES: tuple[tuple[bytes, int], ...] = (
    (b"icp4", 16),
    (b"icp5", 32),
    (b"icp6", 64),
    (b"ic07", 128),
    (b"ic08", 256),
    (b"ic09", 512),
    (b"ic10", 1024),
    (b"ic11", 32),
    (b"ic12", 64),
    (b"ic13", 512),
    (b"ic14", 1024),
)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def render_pngs(svg: Path, sizes: Iterable[int]) -> dict[int, bytes]:
    """Render ``svg`` at each square size; returns PNG bytes by size.

    Creates a ``QGuiApplication`` on the offscreen platform if none exists (SVG text and
    gradients need one).
    """
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    app = QGuiApplication.instance() or QGuiApplication([])
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise ValueError(f"{svg}: not a valid SVG")
    out: dict[int, bytes] = {}
    for size in sizes:
        image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        renderer.render(painter)
        painter.end()
        data = QByteArray()
        buffer = QBuffer(data)
        buffer.open(QIODevice.OpenModeFlag.WriteOnly)
        if not image.convertToFormat(QImage.Format.Format_ARGB32).save(buffer, "PNG"):
            raise RuntimeError(f"could not encode the {size}px icon as PNG")
        buffer.close()
        out[size] = bytes(data.data())
    app.processEvents()  # keeps the application referenced until every render is done
    return out


def png_size(png: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    if not png.startswith(PNG_MAGIC) or png[12:16] != b"IHDR":
        raise ValueError("not a PNG")
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def write_ico(pngs: Mapping[int, bytes]) -> bytes:
    """An ICO file holding one PNG-encoded image per size (sizes up to 256)."""
    sizes = sorted(pngs)
    if not sizes or sizes[-1] > 256:
        raise ValueError("ICO holds images of 1 to 256 pixels")
    header = struct.pack("<HHH", 0, 1, len(sizes))
    offset = len(header) + 16 * len(sizes)
    entries = b""
    payload = b""
    for size in sizes:
        data = pngs[size]
        if png_size(data) != (size, size):
            raise ValueError(f"the {size}px image is {png_size(data)}")
        dim = 0 if size == 256 else size  # 0 means 256 in an ICO directory entry
        entries += struct.pack("<BBBBHHII", dim, dim, 0, 0, 1, 32, len(data), offset)
        offset += len(data)
        payload += data
    return header + entries + payload


def write_icns(pngs: Mapping[int, bytes]) -> bytes:
    """An ICNS file with a PNG element for each type whose pixel size is in ``pngs``."""
    body = b""
    for kind, size in ICNS_TYPES:
        data = pngs.get(size)
        if data is None:
            continue
        if png_size(data) != (size, size):
            raise ValueError(f"the {size}px image is {png_size(data)}")
        body += kind + struct.pack(">I", 8 + len(data)) + data
    if not body:
        raise ValueError("no image for any ICNS element")
    return b"icns" + struct.pack(">I", 8 + len(body)) + body


def read_icns(data: bytes) -> dict[bytes, bytes]:
    """The elements of an ICNS file, by type (used by the tests and ``--check``)."""
    if data[:4] != b"icns" or struct.unpack(">I", data[4:8])[0] != len(data):
        raise ValueError("not an ICNS file")
    elements: dict[bytes, bytes] = {}
    pos = 8
    while pos < len(data):
        kind = data[pos : pos + 4]
        (length,) = struct.unpack(">I", data[pos + 4 : pos + 8])
        if length < 8 or pos + length > len(data):
            raise ValueError(f"ICNS element {kind!r} overruns the file")
        elements[kind] = data[pos + 8 : pos + length]
        pos += length
    return elements


def generate(svg: Path, out_dir: Path, runtime_dir: Path | None) -> list[Path]:
    """Write ``bandsync-<size>.png``, ``bandsync.ico`` and ``bandsync.icns`` into ``out_dir``.

    With ``runtime_dir``, also copy the SVG and a few PNG sizes there as ``icon.svg`` and
    ``icon-<size>.png`` (the console's window icon, shipped as package data).
    """
    pngs = render_pngs(svg, PNG_SIZES)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for size, data in pngs.items():
        path = out_dir / f"bandsync-{size}.png"
        path.write_bytes(data)
        written.append(path)
    ico = out_dir / "bandsync.ico"
    ico.write_bytes(write_ico({s: pngs[s] for s in ICO_SIZES}))
    icns = out_dir / "bandsync.icns"
    icns.write_bytes(write_icns(pngs))
    written += [ico, icns]
    if runtime_dir is not None:
        runtime_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(svg, runtime_dir / "icon.svg")
        written.append(runtime_dir / "icon.svg")
        for size in RUNTIME_PNG_SIZES:
            path = runtime_dir / f"icon-{size}.png"
            path.write_bytes(pngs[size])
            written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--svg", type=Path, default=SOURCE_SVG, help="source SVG")
    parser.add_argument("--out", type=Path, default=ICON_DIR, help="where PNG/ICO/ICNS go")
    parser.add_argument(
        "--runtime",
        type=Path,
        default=RUNTIME_DIR,
        help="where the package's runtime copies go ('-' for none)",
    )
    args = parser.parse_args(argv)
    runtime = None if str(args.runtime) == "-" else args.runtime
    for path in generate(args.svg, args.out, runtime):
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
