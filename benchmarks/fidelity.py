"""How faithfully each message reads once it is a ticket: a report over a folder of mail.

Run by hand (not part of the tests):

    .venv/bin/python benchmarks/fidelity.py [FOLDER_OR_FILE...] [--json] [--quiet]

Default folder: ../shared/corpus. Every file goes through `pipeline.ingest` on a
scratch SQLite database with a catch-all department, parsed in bounded worker
processes as in the daemon. Per message: the outcome (and why, for a quarantine),
the ticket text's length, U+FFFD characters that were not in the source,
encoded words left raw in what an agent sees (subject, sender name, file names;
and separately in the text), attachments found against the attachment parts a
plain stdlib walk sees, uuencoded blocks, refused attachments with the reason, and
whether the text is empty although the message has text, uuencoded blocks left
in the text. Totals at the end.

A message that was not stored (duplicate, ignored, quarantined) is measured on
what the parser gives for it, so every message counts.
Targets (issue 13): 0 tracebacks, 0 replacement characters where the source
charset is declared or detectable, 0 raw encoded words shown, no empty ticket text
where the message has text.
"""
from __future__ import annotations

import collections
import email
import email.policy
import json
import re
import sys
import tempfile
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT = ROOT.parent / "shared" / "corpus"
SKIP = {"README.md", "MANIFEST.tsv"}
ENCODED_WORD = re.compile(r"=\?[\w.:+-]+(?:\*[\w-]+)?\?[bBqQ]\?[^\s?]*\?=")
UUENCODE_BEGIN = re.compile(rb"^begin [0-7]{3,4} \S", re.MULTILINE)
FFFD = "\ufffd"


@dataclass
class Row:
    file: str
    outcome: str = ""
    reason: str = ""
    measured: str = ""  # stored | parsed | -
    text_len: int = 0
    fffd: int = 0  # replacement characters not in the source
    raw_words: int = 0  # encoded words left raw in subject, name, file names
    raw_words_text: int = 0  # ... and in the text (may be quoted headers)
    attachments: int = 0  # stored + refused
    attachment_parts: int = 0  # what a stdlib walk calls attachments
    uuencoded: int = 0  # begin NNN blocks in the raw bytes
    uuencoded_text: int = 0  # ... still in the ticket text
    refused: list[str] = field(default_factory=list)
    empty_text: bool = False  # no ticket text though the message has text
    error: str = ""  # a traceback in this script or a `bug` quarantine


# -- what the message holds, by a plain stdlib walk (the yardstick) -----------------

def _source(raw: bytes) -> email.message.Message:
    return email.message_from_bytes(raw, policy=email.policy.compat32)


def _is_attachment_part(part: email.message.Message) -> bool:
    disposition = str(part.get("Content-Disposition") or "").lower()
    if part.get_filename() or part.get_param("name") or disposition.startswith("attachment"):
        return True
    return part.get_content_maintype() not in ("text", "multipart")


def source_facts(raw: bytes) -> tuple[bool, int]:
    """(the message has text, how many attachment parts it has)."""
    try:
        return _source_facts(_source(raw))
    except Exception:  # the yardstick's own trouble: count the bytes as text
        return bool(raw.strip()), 0


def _source_facts(msg: email.message.Message) -> tuple[bool, int]:
    has_text, parts, stack = False, 0, [msg]
    while stack:
        part = stack.pop()
        payload = part.get_payload()
        if isinstance(payload, list):
            if part.get_content_type() == "message/rfc822" and part is not msg:
                parts += 1
                continue
            stack.extend(p for p in payload if isinstance(p, email.message.Message))
            continue
        if _is_attachment_part(part) and (part is not msg or part.get_filename() or
                                          part.get_content_maintype() != "text"):
            parts += 1
            continue
        if part.get_content_maintype() in ("text", "multipart") or part is msg:
            try:
                body = part.get_payload(decode=True) or b""
            except Exception:
                body = str(payload).encode("utf-8", "surrogateescape")
            visible = re.sub(rb"&(?:nbsp|#160|#xa0);|<[^>]*>", b"", body[:200_000])
            if re.search(rb"[^\s<>/]", visible):
                has_text = True
    return has_text, parts


# -- one message ------------------------------------------------------------------

def _raw_words(*values: str) -> int:
    return sum(len(ENCODED_WORD.findall(v or "")) for v in values)


def measure(gw, path: Path) -> Row:
    from sqlalchemy import select

    from mailgate.models import Message, Quarantine
    from mailgate.pipeline import Envelope, ingest

    row = Row(path.name)
    raw = path.read_bytes()
    has_text, row.attachment_parts = source_facts(raw)
    row.uuencoded = len(UUENCODE_BEGIN.findall(raw))
    source_fffd = raw.decode("utf-8", "replace").count(FFFD) + raw.count(b"\xef\xbf\xbd")
    try:
        result = ingest(gw, raw, Envelope("pipe", None, ("support@example.com",)))
    except Exception:
        row.outcome, row.error = "exception", traceback.format_exc(limit=3)
        return row
    row.outcome, row.reason = result.outcome, result.reason
    row.refused = [line.removeprefix("attachment refused: ") for line in result.trace
                   if line.startswith("attachment refused: ")]
    with gw.db.unit_of_work() as session:
        if result.quarantine_id is not None:
            entry = session.get(Quarantine, result.quarantine_id)
            row.reason = f"{entry.error_class}: {entry.error}"[:200]
            if entry.error_class == "bug":
                row.error = entry.error
        stored = session.scalar(select(Message).where(Message.inbound_id == result.inbound_id)) \
            if result.inbound_id is not None and result.outcome in ("new", "appended") else None
        if stored is not None:
            row.measured = "stored"
            text, shown = stored.text_body or "", [stored.subject, stored.author_name]
            shown += [a.filename for a in stored.attachments]
            row.attachments = len(stored.attachments) + len(row.refused)
    if stored is None:
        try:
            parsed = gw.parser.parse(raw)
        except Exception as error:  # not parseable: nothing shown
            row.measured = "-"
            row.reason = row.reason or f"{error.__class__.__name__}: {error}"[:200]
            return row
        row.measured = "parsed"
        text, shown = parsed.text or "", [parsed.subject, parsed.from_name]
        shown += [a.filename for a in parsed.attachments]
        row.attachments = len(parsed.attachments)
    row.text_len = len(text.strip())
    row.fffd = max(0, sum(v.count(FFFD) for v in [text, *shown]) - source_fffd)
    row.raw_words = _raw_words(*shown)
    row.raw_words_text = _raw_words(text)
    row.empty_text = has_text and not text.strip()
    row.uuencoded_text = len(UUENCODE_BEGIN.findall(text.encode("utf-8", "replace")))
    return row


# -- the run ----------------------------------------------------------------------

def files_of(args: list[str]) -> list[Path]:
    found = []
    for arg in args or [str(DEFAULT)]:
        path = Path(arg)
        found += sorted(p for p in path.iterdir() if p.is_file() and p.name not in SKIP) \
            if path.is_dir() else [path]
    return found


def gateway(folder: Path):
    from mailgate.config import Settings
    from mailgate.db import Database
    from mailgate.gateway import Gateway
    from mailgate.models import Address, Department

    settings = Settings().replace(database={"url": f"sqlite:///{folder / 'mailgate.db'}"},
                                  storage={"dir": folder, "fsync": False},
                                  routing={"catch_all": "support"})
    Database(settings.database_url).upgrade()
    gw = Gateway(settings)
    with gw.db.unit_of_work() as session:
        support = Department(key="support", name="Support")
        session.add_all([support, Address(address="support@example.com", department=support)])
    return gw


def totals(rows: list[Row]) -> dict:
    refused = collections.Counter(re.sub(r"^[^:]*: ", "", r).split(",")[0][:70]
                                  for row in rows for r in row.refused)
    quarantined = collections.Counter(row.reason.split(":")[0] + ": " +
                                      ":".join(row.reason.split(":")[1:2]).strip()[:60]
                                      for row in rows if row.outcome == "quarantined")
    return {
        "messages": len(rows),
        "outcomes": dict(collections.Counter(row.outcome for row in rows).most_common()),
        "tracebacks": sum(1 for row in rows if row.error),
        "fffd_messages": sum(1 for row in rows if row.fffd),
        "fffd_chars": sum(row.fffd for row in rows),
        "raw_word_messages": sum(1 for row in rows if row.raw_words),
        "raw_words": sum(row.raw_words for row in rows),
        "raw_words_in_text_messages": sum(1 for row in rows if row.raw_words_text),
        "empty_text_with_text": sum(1 for row in rows if row.empty_text),
        "attachments_found": sum(row.attachments for row in rows),
        "attachment_parts": sum(row.attachment_parts for row in rows),
        "uuencoded_blocks": sum(row.uuencoded for row in rows),
        "uuencoded_blocks_in_text": sum(row.uuencoded_text for row in rows),
        "refused": sum(len(row.refused) for row in rows),
        "refused_by_reason": dict(refused.most_common()),
        "quarantined_by_reason": dict(quarantined.most_common()),
        "no_usable_from": sum(1 for row in rows if "no usable From" in row.reason),
    }


def print_table(rows: list[Row], quiet: bool) -> None:
    if not quiet:
        print(f"{'file':<48} {'outcome':<11} {'text':>7} {'fffd':>5} {'ew':>3} {'ewT':>3} "
              f"{'att':>7} {'uu':>2} {'empty':>5}  refused / reason")
        for row in rows:
            note = "; ".join(row.refused) or (row.reason if row.outcome in (
                "quarantined", "ignored") else "")
            if row.error:
                note = "TRACEBACK " + row.error.strip().splitlines()[-1]
            print(f"{row.file[:48]:<48} {row.outcome[:11]:<11} {row.text_len:>7} {row.fffd:>5} "
                  f"{row.raw_words:>3} {row.raw_words_text:>3} "
                  f"{row.attachments:>3}/{row.attachment_parts:<3} {row.uuencoded:>2} "
                  f"{'EMPTY' if row.empty_text else '':>5}  {note[:150]}")
        print()
    for key, value in totals(rows).items():
        if isinstance(value, dict):
            print(f"{key}:")
            for name, count in value.items():
                print(f"    {count:>5}  {name}")
        else:
            print(f"{key:<28} {value}")


def main(argv: list[str]) -> None:
    import logging

    logging.disable(logging.CRITICAL)  # quarantines log loudly; the table says it all
    as_json, quiet = "--json" in argv, "--quiet" in argv
    files = files_of([a for a in argv if not a.startswith("--")])
    with tempfile.TemporaryDirectory() as folder:
        gw = gateway(Path(folder))
        try:
            rows = [measure(gw, path) for path in files]
        finally:
            gw.close()
    if as_json:
        print(json.dumps({"rows": [asdict(r) for r in rows], "totals": totals(rows)}, indent=1))
    else:
        print_table(rows, quiet)


if __name__ == "__main__":
    main(sys.argv[1:])
