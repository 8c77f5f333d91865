"""Attachments drawn when a message is sent, not when it is queued.

A check-in QR code took about 0.8 ms to encode and draw, a tenth of a whole registration
(`bench/register_cpu.py`). The outbox row stores the text the code carries (the same secret
the message body prints anyway); the sender draws the picture. Stored files are sent as they are.
"""
from __future__ import annotations

import zxingcpp

#: `OutboxAttachment.generated`: the content is the file itself.
STORED = ""
#: `OutboxAttachment.generated`: the content is a text, sent as an SVG QR code of it.
QR_CODE = "qr-code"


def qr_code_svg(text: str) -> bytes:
    """The QR code (error correction M, with its quiet zone) as SVG, 8 pixels a module,
    encoded and drawn in C++ by zxing-cpp."""
    code = zxingcpp.create_barcode(text, zxingcpp.BarcodeFormat.QRCode, ec_level="M")
    return zxingcpp.write_barcode_to_svg(code, scale=8).encode("utf-8")


def attachment_file(generated: str, content: bytes) -> bytes:
    """The bytes that go out for an attachment row: the stored file, or the drawn picture."""
    if generated == QR_CODE:
        return qr_code_svg(bytes(content).decode("ascii"))
    return bytes(content)
