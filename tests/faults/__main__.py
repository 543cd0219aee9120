"""`python -m tests.faults [--cycles N] [--cycles-for NAME=N] [--only NAME,...]`: one table.

Exit status 0 when every scenario met its goal, 1 otherwise (the folder with the
daemon logs is kept and printed), 2 when a scenario cannot be built here.
"""
from __future__ import annotations

import argparse
import sys
import time

from tests.faults.harness import SCENARIOS, Harness, Options, describe, table


def main(argv: list[str] | None = None) -> int:
    defaults = Options()
    parser = argparse.ArgumentParser(prog="python -m tests.faults",
                                     description=__doc__.splitlines()[0],
                                     epilog="scenarios:\n" + describe(),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cycles", type=int, default=defaults.cycles,
                        help="faults injected per scenario (default %(default)s)")
    parser.add_argument("--cycles-for", action="append", default=[], metavar="NAME=N",
                        type=scenario_cycles,
                        help="faults injected in scenario NAME instead (repeatable)")
    parser.add_argument("--outage", type=float, default=defaults.outage,
                        help="seconds each fault lasts (default %(default)s)")
    parser.add_argument("--rate", type=float, default=defaults.rate,
                        help="new SMTP messages a second (default %(default)s)")
    parser.add_argument("--connections", type=int, default=defaults.connections)
    parser.add_argument("--drain-timeout", type=float, default=defaults.drain_timeout)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--only", default="", help="comma-separated scenario names")
    parser.add_argument("--keep", action="store_true", help="keep the folder and its logs")
    args = parser.parse_args(argv)
    names = [n for n in args.only.split(",") if n] or list(SCENARIOS)
    cycles_of = dict(args.cycles_for)
    unknown = [n for n in [*names, *cycles_of] if n not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(unknown)}")
    options = Options(cycles=args.cycles, cycles_of=cycles_of, outage=args.outage, rate=args.rate,
                      connections=args.connections, drain_timeout=args.drain_timeout,
                      seed=args.seed, keep=args.keep)
    results = []
    started = time.monotonic()
    with Harness(options) as harness:
        for name in names:
            began = time.monotonic()
            result = harness.run(name)
            results.append(result)
            verdict = "ok" if result.ok else "not available" if result.unavailable else "FAIL"
            print(f"# {name}: {verdict} in {time.monotonic() - began:.0f} s", file=sys.stderr,
                  flush=True)
        folder = harness.folder
        kept = options.keep or harness.failed
    print(table(results))
    print(f"\n{len(names)} scenarios in {time.monotonic() - started:.0f} s"
          + (f"; logs in {folder}" if kept else ""))
    if any(not r.ok and not r.unavailable for r in results):
        return 1
    return 2 if any(r.unavailable for r in results) else 0


def scenario_cycles(value: str) -> tuple[str, int]:
    name, _, count = value.partition("=")
    if not count.isdigit():
        raise argparse.ArgumentTypeError(f"not NAME=N: {value!r}")
    return name, int(count)


if __name__ == "__main__":
    sys.exit(main())
