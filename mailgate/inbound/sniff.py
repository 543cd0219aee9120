"""What an attachment really is, from its first bytes (the declared type is the sender's claim).

Deliberately small: it knows the types the default allow-list accepts and the
executable/archive formats worth naming when refusing. Everything else is
`application/octet-stream`, which the allow-list refuses unless configured.
"""
from __future__ import annotations

import zipfile
from io import BytesIO

OOXML = {
    "word/": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xl/": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "ppt/": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
}
OLE2_BY_DECLARED = {
    "application/msword", "application/vnd.ms-excel", "application/vnd.ms-powerpoint",
    "application/vnd.ms-outlook",
}
MAGIC = [
    (b"%PDF-", "application/pdf"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"RIFF", "image/webp"),  # refined below
    (b"MZ", "application/x-msdownload"),
    (b"\x7fELF", "application/x-executable"),
    (b"\x1f\x8b", "application/gzip"),
    (b"Rar!\x1a\x07", "application/vnd.rar"),
    (b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
    (b"\x78\x9f\x3e\x22", "application/ms-tnef"),
]


def _zip_type(data: bytes) -> str:
    try:
        with zipfile.ZipFile(BytesIO(data)) as archive:
            names = archive.namelist()[:200]
            if "mimetype" in names:
                kind = archive.read("mimetype")[:100].decode("ascii", "replace").strip()
                if kind.startswith("application/vnd.oasis.opendocument."):
                    return kind
            if "[Content_Types].xml" in names:
                for prefix, kind in OOXML.items():
                    if any(n.startswith(prefix) for n in names):
                        return kind
    except (zipfile.BadZipFile, OSError, ValueError, RuntimeError, NotImplementedError):
        pass
    return "application/zip"


def _looks_like_text(data: bytes) -> bool:
    sample = data[:4096]
    if b"\x00" in sample:
        return False
    try:
        sample.decode("utf-8")
        return True
    except UnicodeDecodeError as exc:
        # a multi-byte character cut at the end of the sample is still text
        if exc.start >= len(sample) - 3:
            return True
    control = sum(1 for b in sample if b < 9 or 13 < b < 32)
    return control == 0  # legacy 8-bit charsets


def sniff(data: bytes, declared: str = "") -> str:
    """The content type the bytes show; `declared` only breaks ties the bytes cannot."""
    head = data[:16]
    if head.startswith(b"PK\x03\x04"):
        return _zip_type(data)
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):  # OLE2 compound file
        return declared if declared in OLE2_BY_DECLARED else "application/x-ole-storage"
    for magic, kind in MAGIC:
        if head.startswith(magic):
            if magic == b"RIFF" and data[8:12] != b"WEBP":
                break
            return kind
    if data and _looks_like_text(data):
        return "text/plain"
    return "application/octet-stream"
