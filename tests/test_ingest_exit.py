"""`mailgate ingest` behind an MTA's pipe: every failure that is ours to fix (a broken
configuration, a schema older than the code, a bug) exits 75, so the MTA keeps the
mail queued; admin commands keep their own statuses (78 for a configuration error)."""
import subprocess
import sys

from tests.mails import make_mail


def run(config, *args, stdin=b""):
    return subprocess.run([sys.executable, "-m", "mailgate", "--config", str(config), *args],
                          input=stdin, capture_output=True, timeout=60)


def test_a_broken_configuration_defers_piped_mail(tmp_path):
    config = tmp_path / "mailgate.toml"
    config.write_text(f'[storage]\ndir = "{tmp_path}"\nfsync = "flase"\n')
    piped = run(config, "ingest", "--recipient", "support@example.com", stdin=make_mail())
    assert piped.returncode == 75, piped.stderr
    assert b"storage.fsync" in piped.stderr
    assert run(config, "ticket", "list").returncode == 78
