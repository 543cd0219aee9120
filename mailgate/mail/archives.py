"""What a zip archive is (OpenDocument, OOXML or plain zip) and whether opening it is an
attack: a directory that promises far more than it holds (a zip bomb), so many
entries that listing them is the attack, or an Office or OpenDocument macro project.

The directory is checked before any entry is read, and no entry is read beyond a
few KB. Pure; `sniff.examine` calls `examine_zip` for bytes that start as a zip.
"""
from __future__ import annotations

import re
import struct
import zipfile
import zlib
from io import BytesIO

OOXML = {
    "word/": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xl/": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "ppt/": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
}
MAX_ZIP_ENTRIES = 10_000
MAX_ZIP_DIRECTORY = 4 * 1024 * 1024  # bytes of central directory
MAX_INFLATED = 1024 * 1024 * 1024  # declared size of all entries together
MAX_RATIO = 100  # declared / compressed, for entries over RATIO_FROM bytes
RATIO_FROM = 1024 * 1024
PEEK = 4096  # bytes read of any one entry
CONTENT_TYPES_PEEK = 256 * 1024
_OOXML_MACROS = re.compile(rb"vbaProject|macrosheet|(?<!binary\.)macroEnabled", re.IGNORECASE)


def examine_zip(data: bytes) -> tuple[str, str, str]:
    """(type, hazard, what): the type is application/zip unless the entries show an
    OpenDocument or OOXML file; the hazard is "", "bomb" or "macros"."""
    problem = _zip_directory_problem(data)
    if problem:
        return "application/zip", "bomb", problem
    try:
        with zipfile.ZipFile(BytesIO(data)) as archive:
            infos = archive.infolist()
            problem = _inflation_problem(infos)
            if problem:
                return "application/zip", "bomb", problem
            names = {info.filename for info in infos}
            kind = _zip_kind(archive, names)
            macros = _zip_macros(archive, names, kind) if kind != "application/zip" else ""
            return kind, "macros" if macros else "", macros
    except (zipfile.BadZipFile, OSError, ValueError, RuntimeError, NotImplementedError,
            EOFError, zlib.error, struct.error):
        return "application/zip", "", ""


def _zip_directory_problem(data: bytes) -> str:
    """Why the archive's directory alone is too much to read, from its end record."""
    end = data.rfind(b"PK\x05\x06", max(0, len(data) - 65_557))
    if end < 0 or len(data) < end + 22:
        return ""
    entries, directory = struct.unpack_from("<HI", data, end + 10)
    zip64 = end - 20 - 56
    if zip64 >= 0 and data[zip64:zip64 + 4] == b"PK\x06\x06":
        entries, directory = struct.unpack_from("<QQ", data, zip64 + 32)
    if entries > MAX_ZIP_ENTRIES:
        return f"archive lists {entries} entries (more than {MAX_ZIP_ENTRIES})"
    if directory > MAX_ZIP_DIRECTORY:
        return f"archive directory of {directory} bytes"
    return ""


def _inflation_problem(infos: list[zipfile.ZipInfo]) -> str:
    total = 0
    for info in infos:
        total += info.file_size
        if info.file_size > RATIO_FROM and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            ratio = info.file_size // max(info.compress_size, 1)
            return (f"archive entry {info.filename[:80]!r} inflates to {info.file_size} bytes, "
                    f"{ratio} times its size (zip bomb)")
    if total > MAX_INFLATED:
        return f"archive inflates to {total} bytes (zip bomb)"
    return ""


def _peek(archive: zipfile.ZipFile, name: str, size: int = PEEK) -> bytes:
    with archive.open(name) as entry:
        return entry.read(size)


def _zip_kind(archive: zipfile.ZipFile, names: set[str]) -> str:
    if "mimetype" in names:
        kind = _peek(archive, "mimetype", 100).decode("ascii", "replace").strip()
        if kind.startswith("application/vnd.oasis.opendocument."):
            return kind
    if "[Content_Types].xml" in names:
        for prefix, kind in OOXML.items():
            if any(n.startswith(prefix) for n in names):
                return kind
    return "application/zip"


def _zip_macros(archive: zipfile.ZipFile, names: set[str], kind: str) -> str:
    lowered = {n.lower() for n in names}
    if kind.startswith("application/vnd.oasis.opendocument."):
        if any(n.startswith(("basic/", "scripts/")) for n in lowered):
            return "OpenDocument macros (Basic/Scripts)"
        return ""
    if any(n.endswith("vbaproject.bin") for n in lowered):
        return "VBA macro project (vbaProject.bin)"
    if any(n.startswith("xl/macrosheets/") for n in lowered):
        return "Excel 4.0 macro sheet"
    if "[Content_Types].xml" in names:
        match = _OOXML_MACROS.search(_peek(archive, "[Content_Types].xml", CONTENT_TYPES_PEEK))
        if match:
            return f"macro-enabled Office content type ({match.group().decode()})"
    return ""
