"""CI's short run of the fault harness: every scenario, two faults each.

The goals are the issue's: nothing answered 250 is lost or stored twice, no
message is refused for good because of our fault, every outgoing row ends sent,
exactly once (the relay may get at most the in-flight count again per kill,
RFC 5321), nothing stuck, everything drained. `python -m tests.faults
--cycles 200` is the long run of the same scenarios (see tests/faults/__init__.py).
"""
from __future__ import annotations

import pytest

from tests.faults.harness import SCENARIOS, Harness, Options, table

SHORT = Options(cycles=2, outage=2.0, drain_timeout=60.0)


@pytest.fixture(scope="module")
def harness():
    with Harness(SHORT) as running:
        yield running


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_fault_scenario_keeps_every_message_once(harness, name):
    result = harness.run(name)
    if result.unavailable:
        if result.required:
            pytest.fail(f"{name}: not available here: {result.unavailable}", pytrace=False)
        pytest.skip(f"{name}: not available here (privilege): {result.unavailable}")
    report = f"\n{table([result])}\nfolder: {result.folder}"
    assert result.refused == 0, report
    assert result.lost == 0, report
    assert result.duplicated == 0, report
    assert result.outbox_lost == 0, report
    assert result.twice <= result.allowed_twice, report
    assert result.stuck == 0, report
    assert result.drain is not None, report
    assert result.acked == result.sent, report
