"""Every real-world message in ../shared/corpus ends as a ticket, a reply, ignored or
quarantined: never an uncaught exception, never lost."""
from __future__ import annotations

import collections
import json

from sqlalchemy import func, select

from mailgate.cli import main
from mailgate.models import Inbound, Quarantine
from tests.conftest import CORPUS

KNOWN = {"new", "appended", "duplicate", "ignored", "bounce", "quarantined"}


def corpus_files():
    files = sorted(p for p in CORPUS.iterdir() if p.name not in ("README.md", "MANIFEST.tsv"))
    assert len(files) >= 400, f"corpus missing or incomplete at {CORPUS}"
    return files


def test_whole_corpus_through_mailgate_ingest(db_url, tmp_path, capfd, gw):
    config = tmp_path / "corpus.toml"
    config.write_text(f'[database]\nurl = "{db_url}"\n[storage]\ndir = "{tmp_path / "var"}"\n'
                      'fsync = false\n[routing]\ncatch_all = "support"\n')
    assert main(["--config", str(config), "department", "add", "support"]) == 0
    files = corpus_files()
    capfd.readouterr()
    status = main(["--config", str(config), "ingest", "--json", *map(str, files)])
    out, err = capfd.readouterr()
    results = json.loads(out)
    assert status in (0, 65)  # 65: some inputs are reply bodies without any header

    assert len(results) == len(files)  # every input has an outcome
    outcomes = collections.Counter(r["outcome"] for r in results)
    assert set(outcomes) <= KNOWN, outcomes
    # test suites reuse one message (same Message-ID, From, Date, Subject) for many body
    # variants; those count as duplicates, as redeliveries would
    assert outcomes["new"] > 240 and outcomes["duplicate"] < 100, outcomes
    with gw.db.unit_of_work() as session:
        assert session.scalar(select(func.count()).select_from(Inbound)) == len(files)
        entries = list(session.scalars(select(Quarantine)))
    # nothing failed inside our own code: quarantine only for limits and unusable input
    assert [e.error for e in entries if e.error_class == "bug"] == []
    assert len({e.sha256 for e in entries}) == outcomes["quarantined"] or \
        sum(e.attempts for e in entries) == outcomes["quarantined"]
    for entry in entries:
        assert gw.storage.raw.exists(entry.sha256)  # the bytes are kept for a retry
