"""What each hostile message costs: CPU seconds, peak RSS and outcome, one process each.

Run by hand (not part of the tests):

    .venv/bin/python benchmarks/bombs.py [NAME...]

Every bomb (built by tests/test_bounds.py, which sends the same ones through the
pipeline) runs in a fresh child process set up like a daemon delivery worker:
the whole pipeline in-process (`parse_workers = 0`) under RLIMIT_AS =
`[limits] parse_memory`, on a scratch SQLite database. CPU is what the child spent
inside `pipeline.ingest` (after one warm-up message, as in a long-lived worker);
peak RSS is the child's whole life (interpreter, imports and all), from `wait4`. The `pipe` rows run `mailgate ingest` reading the
message on stdin instead; their CPU is the whole command (start-up included).
Goal: at most 1 s CPU and under 200 MB peak RSS per message, every outcome clean.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MiB = 1024 * 1024
IN_WORKER = ["ordinary", "odt_zip_bomb", "odt_zip_bomb_x2", "parts_100k_no_ct",
             "part_header_10mb", "base64_24mb", "notes_to_16k_words", "notes_parts_50k",
             "notes_nesting_1000", "nesting_450", "text_body_24mb"]
THROUGH_PIPE = ["pipe_ordinary", "pipe_100mb"]


def builders() -> dict:
    """Imported only in the child that builds (see `build`)."""
    from tests import test_bounds as bombs
    from tests.mails import make_mail
    from tests.test_limits import encoded_word_header, many_parts, nested

    def oversize(size: int) -> bytes:
        line = b"y" * 76 + b"\r\n"
        return make_mail(subject="huge") + line * (size // len(line))

    return {
        "ordinary": lambda: make_mail(),
        "odt_zip_bomb": lambda: bombs.odt_bomb_mail(1),
        "odt_zip_bomb_x2": lambda: bombs.odt_bomb_mail(2),
        "parts_100k_no_ct": lambda: bombs.parts_without_content_type(100_000),
        "part_header_10mb": lambda: bombs.part_header(10 * MiB),
        "base64_24mb": lambda: bombs.base64_attachment(24 * MiB),
        "notes_to_16k_words": lambda: encoded_word_header(16_000),
        "notes_parts_50k": lambda: many_parts(50_000),
        "notes_nesting_1000": lambda: nested(1000),
        "nesting_450": lambda: nested(450),
        "text_body_24mb": lambda: make_mail(body=("z" * 75 + "\n") * (24 * MiB // 76)),
        "pipe_ordinary": lambda: make_mail(),
        "pipe_100mb": lambda: oversize(100 * MiB),
    }


CHILD = r"""
import json, resource, sys, time
from pathlib import Path
from mailgate.config import Settings
from mailgate.db import Database
from mailgate.gateway import Gateway
from mailgate.inbound.workers import limit_memory
from mailgate.models import Address, Department, TicketEvent
from mailgate.pipeline import Envelope, ingest
from sqlalchemy import select

var = Path(sys.argv[2])
settings = Settings().replace(database={"url": f"sqlite:///{var / 'mailgate.db'}"},
                              storage={"dir": var, "fsync": False},
                              limits={"parse_workers": 0}, routing={"catch_all": "support"})
Database(settings.database_url).upgrade()
gw = Gateway(settings)
with gw.db.unit_of_work() as session:
    support = Department(key="support", name="Support")
    session.add_all([support, Address(address="support@example.com", department=support)])
limit_memory(settings.limits.parse_memory)
# a long-lived worker has loaded what the first messages needed: warm up with one
# message that opens a ticket and has an attachment refused (the rejection notice)
warm = (b"From: w@example.org\r\nTo: support@example.com\r\nSubject: warm\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=W\r\n\r\n--W\r\n"
        b"Content-Type: text/plain\r\n\r\nhello\r\n--W\r\nContent-Type: application/x-msdownload;"
        b" name=a.exe\r\nContent-Transfer-Encoding: base64\r\n\r\nTVqQAAMAAAA=\r\n--W--\r\n")
ingest(gw, warm, Envelope("smtp", "w@example.org", ("support@example.com",)))
raw = Path(sys.argv[1]).read_bytes()
before = resource.getrusage(resource.RUSAGE_SELF)
result = ingest(gw, raw, Envelope("smtp", "a@example.org", ("support@example.com",)))
after = resource.getrusage(resource.RUSAGE_SELF)
with gw.db.unit_of_work() as session:
    refused = [e.detail for e in session.scalars(
        select(TicketEvent).where(TicketEvent.kind == "attachment_refused"))][1:]
print(json.dumps({"cpu": after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime,
                  "outcome": result.outcome, "reason": result.reason, "refused": refused}))
"""


def _run(argv: list[str], stdin=None) -> tuple[str, float, float]:
    """Run a child; its stdout, CPU seconds and peak RSS in MB (from wait4)."""
    proc = subprocess.Popen(argv, stdin=stdin, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, cwd=ROOT)
    out = proc.stdout.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return out, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def in_worker(name: str, message: Path, tmp: Path) -> dict:
    var = tmp / name
    var.mkdir()
    out, _, rss = _run([sys.executable, "-c", CHILD, str(message), str(var)])
    try:
        row = json.loads(out.strip().splitlines()[-1])
    except (IndexError, ValueError):
        row = {"cpu": float("nan"), "outcome": "child died", "reason": "", "refused": []}
    outcome = row["outcome"] + (f": {row['reason']}" if row["reason"] else "")
    if row["refused"]:
        outcome += "; refused: " + " | ".join(row["refused"])
    return {"cpu": row["cpu"], "rss": rss, "outcome": outcome}


def through_pipe(name: str, message: Path, tmp: Path) -> dict:
    var = tmp / name
    config = tmp / f"{name}.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{var / "mailgate.db"}"\n[storage]\n'
                      f'dir = "{var}"\nfsync = false\n[routing]\ncatch_all = "support"\n')
    mailgate = [sys.executable, "-m", "mailgate", "--config", str(config)]
    subprocess.run(mailgate + ["department", "add", "support"], check=True,
                   capture_output=True, cwd=ROOT)
    with open(message, "rb") as stdin:
        out, cpu, rss = _run(mailgate + ["ingest", "--json"], stdin=stdin)
    try:
        row = json.loads(out)[0]
        outcome = row["outcome"] + (f": {row['reason']}" if row["reason"] else "")
    except (IndexError, ValueError):
        outcome = "command failed"
    raw_store = sum(p.stat().st_size for p in (var / "raw").rglob("*") if p.is_file()) \
        if (var / "raw").exists() else 0
    return {"cpu": cpu, "rss": rss, "outcome": f"{outcome}; var/raw holds {raw_store} bytes"}


def build(name: str, path: Path) -> int:
    """Build bomb `name` into `path` in a child process: a parent that held the bombs
    would pass its own peak RSS on to every child it starts (Linux keeps the
    high-water mark across fork and exec)."""
    subprocess.run([sys.executable, __file__, "--build", name, str(path)], check=True, cwd=ROOT)
    return path.stat().st_size


def main(names: list[str]) -> None:
    if names[:1] == ["--build"]:
        Path(names[2]).write_bytes(builders()[names[1]]())
        return
    chosen = names or IN_WORKER + THROUGH_PIPE
    print(f"{'bomb':<20} {'MB in':>7} {'CPU s':>6} {'RSS MB':>7}  outcome")
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        for name in chosen:
            message = tmp / f"{name}.eml"
            size = build(name, message)
            row = (in_worker if name in IN_WORKER else through_pipe)(name, message, tmp)
            print(f"{name:<20} {size / MiB:>7.1f} {row['cpu']:>6.2f} {row['rss']:>7.0f}  "
                  f"{row['outcome'][:300]}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
