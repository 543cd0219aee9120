"""A minimal but real TNEF (winmail.dat) blob with one attached file, built by hand.

Layout (MS-OXTNEF): signature, key, then attributes of
level(1) id(4) length(4) data checksum(2), all little-endian.
"""
from __future__ import annotations

import struct

SIGNATURE = 0x223E9F78
LVL_MESSAGE, LVL_ATTACHMENT = 1, 2
ATT_TNEF_VERSION = 0x00089006
ATT_ATTACH_REND_DATA = 0x00069002
ATT_ATTACH_TITLE = 0x00018010
ATT_ATTACH_DATA = 0x0006800F


def _attribute(level: int, attr: int, data: bytes) -> bytes:
    checksum = sum(data) & 0xFFFF
    return struct.pack("<BII", level, attr, len(data)) + data + struct.pack("<H", checksum)


def winmail_dat(filename: str = "report.pdf",
                content: bytes = b"%PDF-1.4\n% inside winmail.dat\n") -> bytes:
    return b"".join([
        struct.pack("<IH", SIGNATURE, 0x1234),
        _attribute(LVL_MESSAGE, ATT_TNEF_VERSION, struct.pack("<I", 0x00010000)),
        _attribute(LVL_ATTACHMENT, ATT_ATTACH_REND_DATA, b"\x01\x00" + b"\x00" * 12),
        _attribute(LVL_ATTACHMENT, ATT_ATTACH_TITLE, filename.encode("ascii") + b"\x00"),
        _attribute(LVL_ATTACHMENT, ATT_ATTACH_DATA, content),
    ])
