"""Every speed figure of issue #17 in one run: SMTP against the bare server and the
durable floor, `mailgate ingest` against django-helpdesk, an IMAP backlog, and
threading at 1,000 and 1,000,000 tickets.

Run by hand (not part of the tests):

    .venv/bin/python benchmarks/all.py [--baseline REF] [--rounds 3] [--quick]

Runs, one after the other, each printing as it goes:
`smtp_ingest.py --messages 1000 --rounds R [--baseline REF]`,
`peers/helpdesk.py --messages 500`, `imap_backlog.py --messages 10000 --rounds R
[--baseline REF]` and `threading_scale.py` (1,000 and 1,000,000 tickets), then the
lines each printed last (their medians and ratios) together. `--quick` makes every
size small (a smoke run of the scripts, no figures to quote). Takes about an hour
on a 2-CPU machine with three rounds; the machine should be otherwise idle.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def plan(baseline: str | None, rounds: int, quick: bool) -> list[tuple[str, list[str]]]:
    """(title, arguments) of each benchmark, in the order they run."""
    compare = ["--baseline", baseline] if baseline else []
    repeat = ["--rounds", str(rounds)]
    return [
        ("SMTP: bare, durable floor, mailgate",
         ["smtp_ingest.py", "--messages", "60" if quick else "1000", *repeat, *compare]),
        ("mailgate ingest against django-helpdesk",
         ["peers/helpdesk.py", "--messages", "20" if quick else "500"]),
        ("IMAP backlog, one daemon",
         ["imap_backlog.py", "--messages", "60" if quick else "10000", *repeat, *compare]),
        ("threading at scale",
         ["threading_scale.py", *(["--tickets", "100", "1000", "--replies", "5"] if quick
                                  else [])]),
    ]


def run(title: str, arguments: list[str]) -> tuple[str, list[str], int]:
    """Run one benchmark, its output shown as it comes; (title, its last lines, status)."""
    print(f"\n=== {title}: {' '.join(arguments)}", flush=True)
    started = time.monotonic()
    process = subprocess.Popen([sys.executable, str(HERE / arguments[0]), *arguments[1:]],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in process.stdout:
        print(line, end="", flush=True)
        lines.append(line.rstrip("\n"))
    status = process.wait()
    print(f"=== {title}: {time.monotonic() - started:.0f} s, exit {status}", flush=True)
    return title, lines, status


def summary(line_count: int, results: list[tuple[str, list[str], int]]) -> None:
    print(f"\n=== summary (load average {' '.join(f'{x:.2f}' for x in os.getloadavg())})")
    for title, lines, status in results:
        shown = [line for line in lines if line.strip() and not line.startswith("WARNING")
                 and "objects imported automatically" not in line]  # pip's and Django's noise
        print(f"--- {title}" + ("" if status == 0 else f" (FAILED, exit {status})"))
        for line in shown[-line_count:]:
            print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", metavar="REF", help="git ref to compare with")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    args = parser.parse_args()
    results = [run(title, arguments)
               for title, arguments in plan(args.baseline, args.rounds, args.quick)]
    summary(7, results)
    sys.exit(1 if any(status for _, _, status in results) else 0)


if __name__ == "__main__":
    main()
