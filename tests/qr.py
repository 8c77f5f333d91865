"""Reading a QR code back from the SVG the portal sends."""
from __future__ import annotations

import re

import zxingcpp


def read_qr_code(svg: bytes) -> str:
    """Draw the SVG's dark rectangles onto a grayscale raster and read it back with zxing-cpp,
    as a phone camera at the door would read the picture."""
    document = svg.decode()
    width, height = (int(v) for v in re.search(r'<svg width="(\d+)" height="(\d+)"', document).groups())
    pixels = bytearray(b"\xff" * (width * height))
    for x, y, w, h in re.findall(r"M(\d+) (\d+)h(\d+)v(\d+)h-\d+Z", document):
        x, y, w, h = int(x), int(y), int(w), int(h)
        for row in range(y, y + h):
            pixels[row * width + x: row * width + x + w] = b"\x00" * w
    barcode = zxingcpp.read_barcode(memoryview(pixels).cast("B", (height, width)))
    assert barcode is not None, "no QR code found in the attachment"
    return barcode.text
