"""Macros in an OLE2 compound file (Word, Excel, PowerPoint 97-2003): a VBA project or an
Excel 4.0 macro sheet. Pure; `sniff.examine` calls `ole_macros` for such files."""
from __future__ import annotations

import struct
from io import BytesIO

import olefile

MAX_WORKBOOK_SCAN = 1024 * 1024  # bytes of the Workbook stream searched for macro sheets


def ole_macros(data: bytes) -> tuple[str, str]:
    """("macros", what) when the compound file holds a VBA project or an Excel 4.0 macro
    sheet; a file olefile cannot read is reported too, since Office may read it."""
    try:
        with olefile.OleFileIO(BytesIO(data)) as ole:
            paths = [[p.lower() for p in path] for path in ole.listdir(streams=True,
                                                                        storages=True)]
            for path in paths:
                if len(path) >= 2 and path[-2] == "vba" and path[-1] in ("dir", "_vba_project"):
                    return "macros", "VBA macro project (" + "/".join(path[:-1]) + ")"
            if ["workbook"] in paths and _biff_macro_sheet(ole.openstream("Workbook").read()):
                return "macros", "Excel 4.0 macro sheet"
    except Exception as error:  # olefile raises what its parser meets; Office may differ
        return "macros", f"OLE file could not be checked for macros ({error.__class__.__name__})"
    return "", ""


def _biff_macro_sheet(stream: bytes) -> bool:
    """Does the workbook globals substream list a macro sheet (BoundSheet8 dt=1)?"""
    pos, end = 0, min(len(stream), MAX_WORKBOOK_SCAN)
    while pos + 4 <= end:
        kind, size = struct.unpack_from("<HH", stream, pos)
        if kind == 0x0085 and size >= 6 and stream[pos + 4 + 5] == 0x01:
            return True
        if kind == 0x000A:  # EOF of the globals substream
            return False
        pos += 4 + size
    return False
