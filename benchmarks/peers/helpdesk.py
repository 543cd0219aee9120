"""mailgate ingest against django-helpdesk's get_email, on the same files, SQLite and PostgreSQL.

Run by hand (not part of the tests):

    .venv/bin/python benchmarks/peers/helpdesk.py [--messages 1000] [--venv DIR]

django-helpdesk (2.6.1, with Django and psycopg2-binary) is installed into a venv
of its own (`--venv`, default ~/.cache/mailgate-peers/helpdesk-venv; made on the
first run), never into ours. Both get the same N files (the mix of
`smtp_ingest.py` without tokens: every message opens a ticket, ~10 % with a
100 KB attachment) from a folder: django-helpdesk as a queue of
`email_box_type = local` read by `manage.py get_email` (it mails the submitter
through Django's file backend), mailgate by `mailgate ingest FOLDER` and then
`mailgate outbox send` (every acknowledgement and agent notification written by
the file transport). Prints messages/s and CPU per message (the command and its
children, plus PostgreSQL's backends of that database), and mailgate / helpdesk.
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from smtp_ingest import NO_CAPS, Database, build_messages, load  # noqa: E402

HELPDESK = "django-helpdesk==2.6.1"
SETTINGS = """
SECRET_KEY = "bench"
DEBUG = False
USE_TZ = True
SITE_ID = 1
ROOT_URLCONF = "bench_urls"  # helpdesk.urls under its namespace: its mail links reverse it
INSTALLED_APPS = ["django.contrib.admin", "django.contrib.auth", "django.contrib.contenttypes",
                  "django.contrib.sessions", "django.contrib.messages", "django.contrib.sites",
                  "django.contrib.humanize", "rest_framework", "helpdesk"]
MIDDLEWARE = ["django.contrib.sessions.middleware.SessionMiddleware",
              "django.contrib.auth.middleware.AuthenticationMiddleware",
              "django.contrib.messages.middleware.MessageMiddleware"]
DATABASES = {{"default": {database}}}
EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
EMAIL_FILE_PATH = {outbox!r}
DEFAULT_FROM_EMAIL = "support@example.com"
MEDIA_ROOT = {media!r}
TEMPLATES = [{{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True,
              "OPTIONS": {{"context_processors": ["django.contrib.auth.context_processors.auth",
                                                "django.contrib.messages.context_processors.messages",
                                                "django.template.context_processors.request"]}}}}]
LOGGING = {{"version": 1, "disable_existing_loggers": True}}
HELPDESK_TEAMS_MODE_ENABLED = False  # else it needs pinax-teams
"""
URLS = """
from django.urls import include, path
urlpatterns = [path("", include("helpdesk.urls", namespace="helpdesk"))]
"""
QUEUE = """
from helpdesk.models import Queue
Queue.objects.create(title="Support", slug="support", email_address="support@example.com",
                     email_box_type="local", email_box_local_dir={folder!r},
                     allow_email_submission=True, logging_type="none")
"""


def helpdesk_venv(folder: Path) -> Path:
    python = folder / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", HELPDESK, "psycopg2-binary"],
                       check=True)
    return python


def backend_cpu(pids: set[int]) -> dict[int, float]:
    """CPU seconds of each of `pids` still running."""
    ticks, found = os.sysconf("SC_CLK_TCK"), {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[pid] = (int(fields[11]) + int(fields[12])) / ticks
    return found


def timed(command: list[str], env: dict, db: Database | None) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the command, its children and the database's
    backends, sampled while they run: they end with the command) for one run."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    backends = backend_cpu(db.backends()) if db else {}
    start = dict(backends)
    started = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    while proc.poll() is None:
        if db:
            backends.update(backend_cpu(db.backends()))
        time.sleep(0.05)
    elapsed = time.perf_counter() - started
    if proc.returncode:
        raise RuntimeError(f"{command[:3]} exited {proc.returncode}: {proc.stderr.read()[-2000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - children.ru_utime) + (after.ru_stime - children.ru_stime)
    return elapsed, cpu + sum(backends.values()) - sum(start.values())


def write_files(folder: Path, messages: list[bytes]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, raw in enumerate(messages):
        (folder / f"{i:05d}.eml").write_bytes(raw)


def run_helpdesk(python: Path, messages: list[bytes], postgresql: bool) -> tuple[float, float]:
    work = Path(tempfile.mkdtemp(prefix="helpdesk-bench-"))
    db = Database("helpdesk_bench") if postgresql else None
    database = ({"ENGINE": "django.db.backends.postgresql", "NAME": db.name,
                 "USER": "postgres", "HOST": "127.0.0.1"} if db else
                {"ENGINE": "django.db.backends.sqlite3", "NAME": str(work / "db.sqlite3")})
    (work / "bench_settings.py").write_text(SETTINGS.format(
        database=repr(database), outbox=str(work / "outbox"), media=str(work / "media")))
    (work / "bench_urls.py").write_text(URLS)
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "bench_settings", "PYTHONPATH": str(work)}
    manage = [str(python), "-m", "django"]
    try:
        subprocess.run(manage + ["migrate", "-v", "0"], env=env, check=True)
        subprocess.run(manage + ["shell", "-c", QUEUE.format(folder=str(work / "mail"))],
                       env=env, check=True)
        write_files(work / "mail", messages)
        elapsed, cpu = timed(manage + ["get_email", "--quiet"], env, db)
        left = len(list((work / "mail").iterdir()))
        if left:  # a run that did not process every file measures nothing
            raise RuntimeError(f"django-helpdesk left {left} of {len(messages)} files unprocessed")
        return elapsed, cpu
    finally:
        if db:
            db.drop()


def run_mailgate(messages: list[bytes], postgresql: bool) -> tuple[float, float]:
    work = Path(tempfile.mkdtemp(prefix="mailgate-peer-bench-"))
    db = Database("mailgate_peer_bench") if postgresql else None
    url = (f"postgresql+psycopg2://postgres@127.0.0.1:5432/{db.name}" if db else
           f"sqlite:///{work / 'mailgate.db'}")
    config = work / "mailgate.toml"
    config.write_text(f'[database]\nurl = "{url}"\n[storage]\ndir = "{work / "var"}"\n' + NO_CAPS)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONSAFEPATH": "1"}
    mg = [sys.executable, "-m", "mailgate", "--config", str(config)]
    try:
        for command in (["db", "upgrade"], ["department", "add", "support"],
                        ["address", "add", "support@example.com", "--department", "support"],
                        ["agent", "add", "agent@example.com", "--department", "support"]):
            subprocess.run(mg + command, check=True, env=env, capture_output=True)
        write_files(work / "mail", messages)
        ingested = timed(mg + ["ingest", str(work / "mail")], env, db)
        sent = timed(mg + ["outbox", "send"], env, db)
        return ingested[0] + sent[0], ingested[1] + sent[1]
    finally:
        if db:
            db.drop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--venv", type=Path,
                        default=Path.home() / ".cache" / "mailgate-peers" / "helpdesk-venv")
    args = parser.parse_args()
    python = helpdesk_venv(args.venv)
    messages = build_messages(args.messages, [])
    print(f"{args.messages} files, {os.cpu_count()} CPUs, load average {load()}", flush=True)
    for postgresql in (False, True):
        rates = {}
        for name, run in (("django-helpdesk", lambda: run_helpdesk(python, messages,
                                                                     postgresql)),
                          ("mailgate", lambda: run_mailgate(messages, postgresql))):
            elapsed, cpu = run()
            rates[name] = len(messages) / elapsed
            print(f"{'PostgreSQL' if postgresql else 'SQLite':10s} {name:16s} "
                  f"{rates[name]:7.1f} msg/s   CPU {cpu / len(messages) * 1000:5.1f} ms/msg",
                  flush=True)
        print(f"{'':10s} mailgate / django-helpdesk = "
              f"{rates['mailgate'] / rates['django-helpdesk']:.2f}   (load average {load()})",
              flush=True)


if __name__ == "__main__":
    main()
