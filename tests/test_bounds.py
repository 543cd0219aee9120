"""Attachments and parsing stay bounded (issue 11, section 6).

Every hostile message here goes through the real pipeline and the outcome is
read from the database: quarantined with its reason, or a ticket whose hostile
attachment is refused and noted. What each bomb costs in CPU and memory is
measured by benchmarks/bombs.py (which builds the same bombs), not by timing here.
"""
from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import struct
import subprocess
import sys
import zipfile
import zlib

import pytest
from sqlalchemy import select

from mailgate.config import LimitSettings
from mailgate.errors import MessageRejected
from mailgate.gateway import Gateway
from mailgate.mail.names import clean_filename
from mailgate.mail.parse import parse_message
from mailgate.mail.precheck import Truncated, precheck
from mailgate.mail.sniff import examine
from mailgate.inbound.workers import ParserPool
from mailgate.models import Attachment, Contact, Message, Quarantine, TicketEvent
from mailgate.pipeline import Envelope, ingest
from tests.mails import make_mail
from tests.test_limits import nested

MiB = 1024 * 1024
GiB = 1024 * MiB


# -- bomb builders (shared with benchmarks/bombs.py) -----------------------------

_ZERO_SEGMENT = 16 * MiB


@functools.cache
def _zeros_deflated(size: int) -> tuple[bytes, int]:
    """A raw deflate stream of `size` zero bytes and their CRC-32, built in a fraction
    of a second: after a full flush the compressor starts afresh, so every 16 MiB
    segment compresses to the same bytes."""
    count, rest = divmod(size, _ZERO_SEGMENT)
    segment = bytes(_ZERO_SEGMENT)
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = packer.compress(segment) + packer.flush(zlib.Z_FULL_FLUSH) if count else b""
    tail = packer.compress(bytes(rest)) + packer.flush()
    crc = 0
    for _ in range(count):
        crc = zlib.crc32(segment, crc)
    return block * count + tail, zlib.crc32(bytes(rest), crc)


def zip64(entries: list[tuple[str, bytes | int]], declare: dict[str, int] | None = None
          ) -> bytes:
    """A zip (zip64 records throughout) of `(name, bytes)` or `(name, n)`: n zero bytes,
    deflated. `declare` makes the directory lie about an entry's inflated size."""
    local, central = bytearray(), bytearray()
    for name, content in entries:
        if isinstance(content, int):
            data, crc = _zeros_deflated(content)
            size = content
        else:
            packer = zlib.compressobj(9, zlib.DEFLATED, -15)
            data = packer.compress(content) + packer.flush()
            crc, size = zlib.crc32(content), len(content)
        size = (declare or {}).get(name, size)
        encoded = name.encode()
        offset = len(local)
        extra = struct.pack("<HHQQ", 1, 16, size, len(data))
        local += struct.pack("<IHHHHHIIIHH", 0x04034B50, 45, 0, 8, 0, 0x21, crc,
                             0xFFFFFFFF, 0xFFFFFFFF, len(encoded), len(extra))
        local += encoded + extra + data
        extra = struct.pack("<HHQQQ", 1, 24, size, len(data), offset)
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45, 0, 8, 0, 0x21, crc,
                               0xFFFFFFFF, 0xFFFFFFFF, len(encoded), len(extra), 0, 0, 0, 0,
                               0xFFFFFFFF)
        central += encoded + extra
    count, start = len(entries), len(local)
    end64 = struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, count, count,
                        len(central), start)
    locator = struct.pack("<IIQI", 0x07064B50, 0, start + len(central), 1)
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    return bytes(local + central + end64 + locator + end)


ODT = "application/vnd.oasis.opendocument.text"


def odt_bomb(inflated: int = 4 * GiB) -> bytes:
    """An OpenDocument text whose `mimetype` entry inflates to `inflated` bytes."""
    return zip64([("mimetype", inflated), ("content.xml", b"<office:document-content/>")])


def odt_bomb_mail(count: int = 1) -> bytes:
    return make_mail(subject="quarterly report", attachments=[
        (f"report{i}.odt", ODT, odt_bomb()) for i in range(count)])


def parts_without_content_type(count: int) -> bytes:
    parts = b"".join(b"--B\r\n\r\npart %d\r\n" % i for i in range(count))
    return (b"From: a@example.org\r\nTo: support@example.com\r\nSubject: parts\r\n"
            b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n"
            + parts + b"--B--\r\n")


def part_header(size: int) -> bytes:
    """A MIME part whose header block is `size` bytes of folded header lines."""
    line = b" " + b"x" * 75 + b"\r\n"
    return (b"From: a@example.org\r\nTo: support@example.com\r\nSubject: header\r\n"
            b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n"
            b"--B\r\nContent-Type: text/plain\r\nX-Filler: x\r\n" + line * (size // len(line))
            + b"\r\nbody\r\n--B--\r\n")


def base64_attachment(message_size: int = 24 * MiB) -> bytes:
    """A message of about `message_size` bytes, nearly all one base64 PDF attachment."""
    data = b"%PDF-1.4\n" + bytes(range(256)) * (message_size * 3 // 4 // 256)
    return make_mail(subject="scan", attachments=[("scan.pdf", "application/pdf", data)])


def ole_file(streams: dict[str, bytes]) -> bytes:
    """A compound file (OLE2, version 3) holding `streams` by path ("Macros/VBA/dir").
    Each stream is padded to 4 KB so that it lives in ordinary sectors."""
    entries = [{"name": "Root Entry", "type": 5, "kids": [], "data": b""}]
    index = {(): 0}
    for path, data in streams.items():
        parts = tuple(path.split("/"))
        for depth in range(1, len(parts) + 1):
            if parts[:depth] not in index:
                index[parts[:depth]] = len(entries)
                entries[index[parts[:depth - 1]]]["kids"].append(len(entries))
                last = depth == len(parts)
                entries.append({"name": parts[depth - 1], "type": 2 if last else 1, "kids": [],
                                "data": data.ljust(4096, b"\0") if last else b""})
    dir_sectors = -(-len(entries) // 4)
    fat = [0xFFFFFFFD] + [n + 2 for n in range(dir_sectors - 1)] + [0xFFFFFFFE]
    body = b""
    for entry in entries:
        if entry["type"] == 2:
            entry["start"] = len(fat)
            count = len(entry["data"]) // 512
            fat += [len(fat) + n + 1 for n in range(count - 1)] + [0xFFFFFFFE]
            body += entry["data"]
    assert len(fat) <= 128
    directory = b""
    for number, entry in enumerate(entries):
        name = entry["name"].encode("utf-16-le") + b"\0\0"
        right = next((e["kids"][i + 1] for e in entries for i, k in enumerate(e["kids"])
                      if k == number and i + 1 < len(e["kids"])), 0xFFFFFFFF)
        directory += struct.pack("<64sHBBIII16sIQQIQ", name, len(name), entry["type"], 1,
                                 0xFFFFFFFF, right, entry["kids"][0] if entry["kids"]
                                 else 0xFFFFFFFF, b"", 0, 0, 0,
                                 entry.get("start", 0xFFFFFFFE), len(entry["data"]))
    empty = struct.pack("<64sHBBIII16sIQQIQ", b"", 0, 0, 0, 0xFFFFFFFF, 0xFFFFFFFF,
                        0xFFFFFFFF, b"", 0, 0, 0, 0, 0)
    directory = directory.ljust(dir_sectors * 512, b"\0")
    directory = b"".join(directory[i:i + 128] if directory[i:i + 128].strip(b"\0") else empty
                         for i in range(0, len(directory), 128))
    header = struct.pack("<8s16sHHHHH6sIIIIIIIII", bytes.fromhex("d0cf11e0a1b11ae1"), b"", 0x3E,
                         3, 0xFFFE, 9, 6, b"", 0, 1, 1, 0, 4096, 0xFFFFFFFE, 0, 0xFFFFFFFE, 0)
    header += struct.pack("<109I", 0, *[0xFFFFFFFF] * 108)
    fat_sector = struct.pack("<128I", *(fat + [0xFFFFFFFF] * (128 - len(fat))))
    return header + fat_sector + directory + body


def ooxml(content_types: str, *extra: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", content_types)
        archive.writestr("word/document.xml", "<w:document/>")
        for name in extra:
            archive.writestr(name, b"\0" * 64)
    return buffer.getvalue()


DOCX_TYPES = ('<Types><Override PartName="/word/document.xml" ContentType="application/'
              'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>')
DOCM_TYPES = ('<Types><Default Extension="bin" ContentType="application/vnd.ms-office.'
              'vbaProject"/><Override PartName="/word/document.xml" ContentType="application/'
              'vnd.ms-word.document.macroEnabled.main+xml"/></Types>')
PDF_OPEN_PAGE = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /OpenAction [3 0 R /Fit] >>\nendobj\n"
PDF_OPEN_SCRIPT = (b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /OpenAction 5 0 R >>\nendobj\n"
                   b"5 0 obj\n<< /S /Java#53cript /J#53 (app.alert(1)) >>\nendobj\n")



# -- what the database says after hostile mail went through the pipeline ------------

PIPE = Envelope("pipe")


def refusals(gw) -> dict[str, str]:
    """filename -> reason of every attachment refused so far (names are unique here)."""
    with gw.db.unit_of_work() as session:
        events = [(e.new_value, e.detail) for e in session.scalars(
            select(TicketEvent).where(TicketEvent.kind == "attachment_refused"))]
    assert len({name for name, _ in events}) == len(events)
    return dict(events)


def stored(gw) -> dict[str, Attachment]:
    with gw.db.unit_of_work() as session:
        return {a.filename: a for a in session.scalars(select(Attachment))}


def quarantined(gw) -> list[Quarantine]:
    with gw.db.unit_of_work() as session:
        return list(session.scalars(select(Quarantine)))


def test_zip_bomb_odt_is_refused_and_the_ticket_kept(gw, departments):
    raw = make_mail(subject="report", attachments=[
        ("report.odt", ODT, odt_bomb(GiB)), ("notes.txt", "text/plain", b"the real notes")])
    result = ingest(gw, raw, PIPE)
    assert result.outcome == "new", result.reason
    assert "zip bomb" in refusals(gw)["report.odt"]
    assert set(stored(gw)) == {"notes.txt"}


def test_parts_without_content_type_are_counted_before_parsing(gw, departments):
    result = ingest(gw, parts_without_content_type(100_000), PIPE)
    assert result.outcome == "quarantined"
    [entry] = quarantined(gw)
    assert (entry.error_class, entry.error) == (
        "limit", "more than 500 MIME parts (counted by their boundaries)")
    assert gw.storage.raw.exists(entry.sha256)  # nothing lost


def test_huge_header_inside_a_part_is_quarantined(gw, departments):
    result = ingest(gw, part_header(10 * MiB), PIPE)
    assert result.outcome == "quarantined"
    [entry] = quarantined(gw)
    assert entry.error == "header block of more than 524288 bytes in MIME part 1"
    assert gw.storage.raw.exists(entry.sha256)


def test_large_base64_attachment_parses_in_a_small_memory_bound(settings, departments,
                                                                 parser_pool):
    # 24 MB of base64 took the stdlib parser to 280 MB; a 250 MB worker now parses it
    # and the attachment is stored byte for byte
    raw = base64_attachment(24 * MiB)
    data = b"%PDF-1.4\n" + bytes(range(256)) * (24 * MiB * 3 // 4 // 256)
    pool = ParserPool(size=1, timeout=20, memory_limit=250 * MiB)
    gw = Gateway(settings.replace(limits={"max_attachment_size": 20 * MiB}), parser=pool)
    try:
        result = ingest(gw, raw, PIPE)
        assert result.outcome == "new", result.reason
        attachment = stored(gw)["scan.pdf"]
        assert attachment.sha256 == hashlib.sha256(data).hexdigest()
        assert gw.storage.attachments.get(attachment.sha256) == data
    finally:
        gw.close()
        pool.close()


DISGUISED = [
    ("page.html.", "application/octet-stream", b"<html><body>hi</body></html>"),
    ("pa\u200bge\u200b.htm", "application/octet-stream", b"<html>hi</html>"),
    ("report.shtml", "application/octet-stream", b"plain words"),
    ("saved.mht", "application/octet-stream",
     b"MIME-Version: 1.0\r\nContent-Type: multipart/related; boundary=x\r\n\r\n"),
    ("page.xht", "application/octet-stream", b"plain words"),
    ("notes.txt", "text/plain", b"<!DOCTYPE html><script>alert(1)</script>"),
    ("picture.txt", "text/plain", b"<svg xmlns='http://www.w3.org/2000/svg' onload='x'/>"),
    ("feed.txt", "text/plain", b"<?xml version='1.0'?><x/>"),
    ("invoice\u202efdp.exe", "application/pdf", b"%PDF-1.4 but named .exe"),
]


def test_html_disguised_as_other_files_is_refused(gw, departments):
    raw = make_mail(subject="files", attachments=[
        (name, kind, data) for name, kind, data in DISGUISED] + [
        ("invoice.pdf", "application/pdf", b"%PDF-1.4\n%%EOF\n")])
    assert ingest(gw, raw, PIPE).outcome == "new"
    refused = refusals(gw)
    assert set(refused) == {"page.html", "page.htm", "report.shtml", "saved.mht",
                            "page.xht", "notes.txt", "picture.txt", "feed.txt",
                            "invoicefdp.exe"}
    assert refused["notes.txt"] == "content is text/html, which is not an allowed type"
    assert refused["picture.txt"] == "content is image/svg+xml, which is not an allowed type"
    assert set(stored(gw)) == {"invoice.pdf"}


def _office_and_pdf_files():
    return [
        ("macro.docm", "application/octet-stream", ooxml(DOCM_TYPES, "word/vbaProject.bin")),
        ("renamed.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml."
         "document", ooxml(DOCX_TYPES, "word/vbaProject.bin")),
        ("old.doc", "application/msword",
         ole_file({"Macros/VBA/dir": b"x", "Macros/VBA/_VBA_PROJECT": b"y",
                   "WordDocument": b"z"})),
        ("open.pdf", "application/pdf", PDF_OPEN_SCRIPT),
        ("plain.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml."
         "document", ooxml(DOCX_TYPES)),
        ("plain.doc", "application/msword", ole_file({"WordDocument": b"z"})),
        ("page.pdf", "application/pdf", PDF_OPEN_PAGE),
    ]


def test_macros_and_pdf_scripts_are_refused_by_default(gw, departments):
    assert ingest(gw, make_mail(attachments=_office_and_pdf_files()), PIPE).outcome == "new"
    refused = refusals(gw)
    assert set(refused) == {"macro.docm", "renamed.docx", "old.doc", "open.pdf"}
    assert refused["old.doc"] == "VBA macro project (macros/vba): macros are not accepted"
    assert "PDF with /" in refused["open.pdf"]
    assert set(stored(gw)) == {"plain.docx", "plain.doc", "page.pdf"}


def test_macros_and_pdf_scripts_when_allowed(settings, departments, parser_pool):
    allowed = settings.replace(limits={"allow_macros": True, "allow_pdf_scripts": True})
    gw = Gateway(allowed, parser=parser_pool)
    try:
        assert ingest(gw, make_mail(attachments=_office_and_pdf_files()), PIPE).outcome == "new"
        assert refusals(gw) == {}
        assert len(stored(gw)) == 7
    finally:
        gw.close()


def test_bidi_controls_leave_display_names_and_filenames(gw, departments):
    raw = make_mail(sender="=?utf-8?q?Ali=E2=80=AE_Reza?= <ali@example.org>", attachments=[
        ("scan\u202efdp.txt", "text/plain", b"hello")])
    assert ingest(gw, raw, PIPE).outcome == "new"
    with gw.db.unit_of_work() as session:
        contact = session.scalar(select(Contact).where(Contact.email == "ali@example.org"))
        message = session.scalar(select(Message))
        assert (contact.name, message.author_name) == ("Ali Reza", "Ali Reza")
    assert set(stored(gw)) == {"scanfdp.txt"}


def test_encoded_crlf_in_from_name_keeps_the_address(gw, departments):
    raw = (b"From: =?UTF-8?Q?Evil=0D=0ABcc:_x@y?= <alice@example.com>\r\n"
           b"To: support@example.com\r\nSubject: hello\r\nMessage-ID: <crlf@example.com>\r\n"
           b"\r\nhi\r\n")
    result = ingest(gw, raw, PIPE)
    assert result.outcome == "new", result.reason
    with gw.db.unit_of_work() as session:
        message = session.scalar(select(Message))
        assert (message.author_email, message.author_name) == ("alice@example.com",
                                                               "Evil Bcc: x@y")


def test_oversize_mail_on_the_pipe_keeps_a_bounded_prefix(db_url, tmp_path, gw, departments):
    config = tmp_path / "mailgate.toml"
    config.write_text(f'[database]\nurl = "{db_url}"\n[storage]\ndir = "{tmp_path / "var"}"\n'
                      'fsync = false\n[limits]\nmax_message_size = 2000000\n')
    raw = make_mail(subject="huge") + (b"y" * 76 + b"\r\n") * 100_000  # 7.8 MB
    proc = subprocess.run([sys.executable, "-m", "mailgate", "--config", str(config), "ingest",
                           "--json"], input=raw, capture_output=True, timeout=120,
                          env={**os.environ, "MAILGATE_CONFIG": ""})
    [row] = json.loads(proc.stdout)
    assert row["outcome"] == "quarantined"
    assert row["reason"] == (f"over size limit: message of {len(raw)} bytes exceeds the limit "
                             "of 2000000; truncated: only its first 1048576 bytes are kept")
    [entry] = quarantined(gw)
    assert entry.size == 1024 * 1024
    assert gw.storage.raw.get(entry.sha256) == raw[:1024 * 1024]
    kept = [p for p in (tmp_path / "var" / "raw").rglob("*") if p.is_file()]
    assert [p.stat().st_size for p in kept] == [1024 * 1024]


# -- pure functions, by table ----------------------------------------------------------

def _zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.mark.parametrize("data,declared,kind,hazard,detail", [
    (odt_bomb(), "", "application/zip", "bomb", "4294967296 bytes, 1028 times"),
    (zip64([("mimetype", 64 * MiB)], declare={"mimetype": 39}), "", "application/zip", "", ""),
    (_zip({f"f{i}": b"" for i in range(10_001)}), "", "application/zip", "bomb", "10001 entries"),
    (_zip({"mimetype": ODT.encode(), "Basic/Standard/Module1.xml": b"x"}), "", ODT, "macros",
     "OpenDocument macros"),
    (ooxml(DOCX_TYPES), "", "application/vnd.openxmlformats-officedocument."
     "wordprocessingml.document", "", ""),
    (ooxml(DOCM_TYPES), "", "application/vnd.openxmlformats-officedocument."
     "wordprocessingml.document", "macros", "vbaProject"),
    (ooxml(DOCX_TYPES, "xl/macrosheets/sheet1.xml"), "", "application/vnd.openxmlformats-"
     "officedocument.wordprocessingml.document", "macros", "Excel 4.0"),
    (ole_file({"_VBA_PROJECT_CUR/VBA/dir": b"x", "Workbook": b"z"}), "application/vnd.ms-excel",
     "application/vnd.ms-excel", "macros", "_vba_project_cur/vba"),
    (ole_file({"Workbook": struct.pack("<HH", 0x0809, 0) + struct.pack("<HH6s", 0x85, 6,
                                                                       b"\0\0\0\0\0\x01")}),
     "application/vnd.ms-excel", "application/vnd.ms-excel", "macros", "Excel 4.0"),
    (bytes.fromhex("d0cf11e0a1b11ae1") + b"broken", "application/msword",
     "application/msword", "macros", "could not be checked"),
    (PDF_OPEN_PAGE, "", "application/pdf", "", ""),
    (PDF_OPEN_SCRIPT, "", "application/pdf", "script", "/OpenAction"),
    (b"%PDF-1.4\n<< /AA << /O 4 0 R >> >>", "", "application/pdf", "script", "/AA"),
    (b"%PDF-1.4\n<< /JSON 1 /AAPL 2 >>", "", "application/pdf", "", ""),
    (b"%PDF-1.4\n<< /#4A#53 (x) >>", "", "application/pdf", "script", "/JS (written"),
    (b"%PDF-1.5\n9 0 obj\n<</Type/ObjStm/N 1/First 4/Filter/FlateDecode>>stream\n"
     + zlib.compress(b"7 0 <</S/JavaScript/JS(app.alert(1))>>") + b"\nendstream",
     "", "application/pdf", "script", "/JavaScript"),
    (b"%PDF-1.5\n1 0 obj <</OpenAction 7 0 R>> endobj\n9 0 obj\n<</Type/ObjStm/N 1/First 4"
     b"/Filter/FlateDecode>>stream\n" + zlib.compress(b"7 0 [3 0 R /Fit]") + b"\nendstream",
     "", "application/pdf", "", ""),
    (b"%PDF-1.5\n9 0 obj\n<</Type/ObjStm/N 1/First 4/Filter/FlateDecode>>stream\n"
     + zlib.compress(bytes(64 * MiB)) + b"\nendstream", "", "application/pdf", "script",
     "beyond the budget"),
    (b"%PDF-1.5\n9 0 obj\n<</Type/ObjStm/Filter/LZWDecode>>stream\nxyz\nendstream", "",
     "application/pdf", "script", "filter we do not read"),
    (b"  <html><p>hi", "", "text/html", "", ""),
    (b"\xef\xbb\xbf<!doctype html>", "", "text/html", "", ""),
    (b"Dear team, see <a href='x'>this</a>", "", "text/html", "", ""),
    (b"<?xml version='1.0'?><svg xmlns='http://www.w3.org/2000/svg'/>", "", "image/svg+xml",
     "", ""),
    (b"<?xml version='1.0'?><html xmlns='http://www.w3.org/1999/xhtml'/>", "",
     "application/xhtml+xml", "", ""),
    (b"Content-Location: file:///x\r\nContent-Type: text/html\r\n\r\n<p>", "",
     "message/rfc822", "", ""),
    (b"<customer@example.org> wrote:\n> hello", "", "text/plain", "", ""),
    (b"1 < 2 and 3 > 2", "", "text/plain", "", ""),
    (b"junk first\n%PDF-1.4\n<< /JS (x) >>", "", "application/pdf", "script", "/JS"),
])
def test_examine(data, declared, kind, hazard, detail):
    found = examine(data, declared)
    assert (found.type, found.hazard) == (kind, hazard)
    assert detail in found.detail


@pytest.mark.parametrize("raw,limits,message", [
    (parts_without_content_type(600), LimitSettings(), "more than 500 MIME parts"),
    (parts_without_content_type(600).replace(b"\r\n", b"\r"), LimitSettings(),
     "more than 500 MIME parts"),
    (b"Content-Type: multipart/mixed; boundary=Q\r\nFrom: a@b.c\r\n\r\n"
     + b"--Q\r\n\r\nx\r\n" * 600, LimitSettings(), "more than 500 MIME parts"),
    (b"From: a@b.c\r\nContent-Type: multipart/mixed;\r\n boundary*0=Q; boundary*1=R\r\n\r\n"
     + b"--QR\r\n\r\nx\r\n" * 600, LimitSettings(), "more than 500 MIME parts"),
    (b"From: a@b.c\r\nContent-Type: multipart/mixed; boundary=\"a b\"\r\n\r\n"
     + b"--a b\r\n\r\nx\r\n" * 600, LimitSettings(), "more than 500 MIME parts"),
    (part_header(600_000), LimitSettings(), "header block of more than 524288 bytes in MIME"),
    (b"From: a@b.c\r\nContent-Type: multipart/mixed; boundary=Q\r\n\r\n--Q\r\nContent-Type: "
     b"message/rfc822\r\n\r\nSubject: x\r\n" + b" y\r\n" * 200_000 + b"\r\nbody\r\n--Q--\r\n",
     LimitSettings(), "header block of more than 524288 bytes in MIME part 1"),
    (b"From: a@b.c\r\nContent-Type: message/rfc822\r\n\r\nSubject: x\r\n" + b" y\r\n" * 200_000
     + b"\r\nbody\r\n", LimitSettings(), "in the attached message"),
    (b"From: a@b.c\r\nContent-Type: multipart/mixed; boundary=Q\r\n\r\n"
     + (b"--Q\r\nX-A: " + b"z" * 500_000 + b"\r\n\r\nx\r\n") * 5, LimitSettings(),
     "MIME part headers of 2500035 bytes in all exceed 2097152"),
    (b"From: a@b.c\r\nContent-Type: multipart/mixed; boundary=Q\r\n\r\n" + b"--Qx\r\n" * 30_000,
     LimitSettings(), "more than 20000 lines that start with '--' and a boundary"),
    (Truncated(b"From: a@b.c\r\n\r\nhead", 30_000_000), LimitSettings(),
     "over size limit: message of 30000000 bytes exceeds the limit of 26214400; truncated: "
     "only its first 19 bytes are kept"),
])
def test_precheck_refuses_before_parsing(raw, limits, message):
    with pytest.raises(MessageRejected) as caught:
        precheck(raw, limits)
    assert message in caught.value.reason


@pytest.mark.parametrize("raw", [
    # 30,000 SQL comment lines in a text body and one real part
    make_mail(body="".join(f"-- step {i}\nselect 1;\n" for i in range(30_000)),
              attachments=[("a.pdf", "application/pdf", b"%PDF-1.4")]),
    nested(19),
    base64_attachment(4 * MiB),
    # a forwarded message with ordinary headers
    make_mail(attachments=[("fwd.eml", "message/rfc822", make_mail(subject="inner"))]),
])
def test_precheck_passes_ordinary_mail(raw):
    precheck(raw, LimitSettings())


@pytest.mark.parametrize("name,clean", [
    ("page.html.", "page.html"),
    ("page.html . .", "page.html"),
    ("pa\u200bge\u200b.html", "page.html"),
    ("\ufeffreport.pdf", "report.pdf"),
    ("invoice\u202efdp.exe", "invoicefdp.exe"),
    ("\u2067x\u2069.pdf", "x.pdf"),
    ("نامه\u200cها.pdf", "نامه\u200cها.pdf"),  # a joiner inside a word stays
    ("CON.txt", "_CON.txt"),
    ("lpt1", "_lpt1"),
    ("a:b.html", "a_b.html"),
    ('w<h>a"t|?*.txt', "w_h_a_t___.txt"),
    ("..\\..\\boot.ini", "boot.ini"),
    ("line\r\nbreak.pdf", "line break.pdf"),
    ("...", "attachment"),
])
def test_clean_filename(name, clean):
    assert clean_filename(name) == clean


def test_set_aside_bodies_decode_like_the_parser():
    small, big = os.urandom(100_000), os.urandom(3 * MiB)
    raw = make_mail(body="hello", html="<p>hi</p>", attachments=[
        ("a.bin", "application/octet-stream", big), ("b.bin", "application/octet-stream", small),
        ("c.txt", "text/plain", b"x" * (2 * MiB)), ("d.pdf", "application/pdf", big)])
    parsed = parse_message(raw)
    assert [(a.filename, a.data) for a in parsed.attachments] == [
        ("a.bin", big), ("b.bin", small), ("c.txt", b"x" * (2 * MiB)), ("d.pdf", big)]
    assert (parsed.text, parsed.html) == ("hello\n", "<p>hi</p>\n")
