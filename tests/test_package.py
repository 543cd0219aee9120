"""mailgate as it is installed: a wheel built from this tree, installed into a fresh
venv outside the checkout and run from there; the command table; startup imports.

The wheel's dependencies (and the build backend) come from a wheelhouse,
$MAILGATE_WHEELHOUSE or ~/.cache/mailgate/wheelhouse, filled from the package index
the first time and whenever a dependency is missing, so that later runs install
offline in seconds instead of downloading everything again.
"""
from __future__ import annotations

import argparse
import contextlib
import email
import email.policy
import fcntl
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from mailgate.cli import COMMANDS, build_parser, main
from mailgate.outbound import render

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("pyproject.toml", "README.md", "MANIFEST.in", "mailgate", "templates")
SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")


def wheelhouse() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    folder = Path(os.environ.get("MAILGATE_WHEELHOUSE") or cache / "mailgate" / "wheelhouse")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@contextlib.contextmanager
def locked(folder: Path):
    """One test run at a time fills or reads the wheelhouse."""
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def pip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
                          capture_output=True, text=True, timeout=600)


def offline_then_online(offline: tuple[str, ...], fill: tuple[str, ...]) -> None:
    """Run pip offline from the wheelhouse; when something is missing, fill it and retry."""
    if pip(*offline).returncode == 0:
        return
    filled = pip(*fill)
    assert filled.returncode == 0, filled.stdout + filled.stderr
    done = pip(*offline)
    assert done.returncode == 0, done.stdout + done.stderr


def build_wheel(source: Path, dist: Path, house: Path) -> Path:
    """`pip wheel` of a copy of this tree (the checkout stays free of build/ folders)."""
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=SKIP)
        elif (ROOT / name).exists():
            shutil.copy2(ROOT / name, source / name)
    backend = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]["requires"]
    offline_then_online(
        ("wheel", "--no-deps", "--no-index", "--find-links", str(house), "-w", str(dist),
         str(source)),
        ("download", "--dest", str(house), *backend))
    [wheel] = dist.glob("mailgate-*.whl")
    return wheel


def install(wheel: Path, venv: Path, house: Path) -> None:
    """A venv of its own (no system site-packages) with the wheel and its dependencies."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    offline_then_online(
        ("--python", str(venv / "bin" / "python"), "install", "--no-index",
         "--find-links", str(house), str(wheel)),
        ("wheel", "--wheel-dir", str(house), "--find-links", str(house), str(wheel)))
    for copy in house.glob("mailgate-*.whl"):  # `pip wheel` keeps the project's own too
        copy.unlink()


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(wheel, venv) of this tree; the venv lives outside the checkout."""
    top = tmp_path_factory.mktemp("package")
    (top / "source").mkdir()
    house = wheelhouse()
    with locked(house):
        wheel = build_wheel(top / "source", top / "dist", house)
        install(wheel, top / "venv", house)
    return wheel, top / "venv"


@pytest.mark.slow
def test_the_wheel_holds_every_module_template_and_migration(installed):
    wheel, _ = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"mailgate/{p.relative_to(ROOT / 'mailgate')}"
                for p in (ROOT / "mailgate").rglob("*")
                if p.is_file() and "__pycache__" not in p.parts}
    expected |= {f"mailgate/templates/{p.relative_to(ROOT / 'templates')}"
                 for p in (ROOT / "templates").rglob("*") if p.is_file()}
    assert "mailgate/migrations/script.py.mako" in expected
    assert not expected - names, sorted(expected - names)


@pytest.mark.slow
def test_the_installed_wheel_works_outside_the_checkout(installed, tmp_path):
    """db upgrade, a department, ingest, the acknowledgement sent as an .eml file,
    templates rendered in en/fa/ka, check: all from the venv, in a folder of its own."""
    _, venv = installed
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "MAILGATE_CONFIG", "VIRTUAL_ENV", "PYTHONHOME")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    shutil.copy(ROOT / "examples" / "first-ticket.eml", tmp_path / "first-ticket.eml")

    def mailgate(*args: str) -> str:
        proc = subprocess.run([str(venv / "bin" / "mailgate"), *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, f"mailgate {' '.join(args)}: {proc.stdout}{proc.stderr}"
        return proc.stdout

    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c",
         "import mailgate.outbound.render as r; print(r.__file__); print(r.BUILTIN)"],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=True).stdout.split()
    assert all(Path(p).is_relative_to(venv) for p in where), where

    assert re.search(r"schema: \(empty\) -> \S+", mailgate("db", "upgrade"))
    mailgate("department", "add", "support", "--name", "Customer support")
    mailgate("address", "add", "support@example.com", "--department", "support")
    number = re.search(r"new #(\d+)", mailgate("ingest", "first-ticket.eml")).group(1)
    assert number in mailgate("ticket", "list")
    mailgate("outbox", "send")
    [sent] = (tmp_path / "var" / "outbox").glob("*.eml")
    ack = email.message_from_bytes(sent.read_bytes(), policy=email.policy.default)
    assert ack["To"].addresses[0].addr_spec == "shirin@example.ir"
    assert f"#{number}]" in ack["Subject"]
    assert ack.get_body(("plain",)).get_content().strip()

    scripts = {"en": r"[A-Za-z]", "fa": "[\u0600-\u06ff]", "ka": "[\u10a0-\u10ff]"}
    for locale, script in scripts.items():
        text = mailgate("template", "render", "ack", "--locale", locale)
        assert text.startswith("Subject: ") and re.search(script, text.split("\n", 2)[2])
        assert re.search(script, mailgate("template", "render", "sms/ack", "--locale", locale))
    assert "ok" in mailgate("check")


def test_check_says_when_the_built_in_templates_are_missing(tmp_path, monkeypatch, capsys):
    config = tmp_path / "mailgate.toml"
    config.write_text(f'[storage]\ndir = "{tmp_path / "var"}"\nfsync = false\n')
    assert main(["--config", str(config), "db", "upgrade"]) == 0
    assert main(["--config", str(config), "check"]) == 0
    monkeypatch.setattr(render, "BUILTIN", tmp_path / "no-templates")
    capsys.readouterr()
    assert main(["--config", str(config), "check"]) == 78
    assert "templates: built-in templates not found" in capsys.readouterr().out


def test_the_command_table_is_what_the_modules_register():
    full = build_parser()
    sub = next(a for a in full._actions if isinstance(a, argparse._SubParsersAction))
    registered = {action.dest: action.help for action in sub._choices_actions}
    assert registered == {command: line for command, (_, line) in COMMANDS.items()}
    assert list(registered) == list(COMMANDS)
    for module, _ in COMMANDS.values():
        assert build_parser((module,)).format_help() == full.format_help()
    assert build_parser(()).format_help() == full.format_help()


def test_help_imports_no_command_module_nor_the_orm():
    code = ("import sys\nfrom mailgate.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('sqlalchemy', 'alembic', 'jinja2') or m.startswith('mailgate.cli.')))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)
    assert proc.stdout.strip().splitlines()[-1] == "[]"
