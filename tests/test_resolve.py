"""The threading policy as a table: found tickets in, decision out."""
import datetime as dt

import pytest

from mailgate.config import ThreadingSettings
from mailgate.mail.threads import Action, TicketView, decide

NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.timezone.utc)
OPEN = TicketView(1, "100017", "open", frozenset({"c@x.org", "cc@x.org"}))
CLOSED_RECENT = TicketView(2, "100025", "closed", frozenset({"c@x.org"}),
                           NOW - dt.timedelta(days=3))
CLOSED_OLD = TicketView(3, "100031", "closed", frozenset({"c@x.org"}),
                        NOW - dt.timedelta(days=40))
DEFAULT = ThreadingSettings()
APPEND = ThreadingSettings(foreign_sender="append")


@pytest.mark.parametrize("token,header,sender,settings,action,ticket,rule", [
    (None, None, "c@x.org", DEFAULT, Action.NEW, None, "none"),
    (OPEN, None, "c@x.org", DEFAULT, Action.APPEND, OPEN, "subject token"),
    (None, OPEN, "c@x.org", DEFAULT, Action.APPEND, OPEN, "In-Reply-To"),
    (OPEN, CLOSED_OLD, "c@x.org", DEFAULT, Action.APPEND, OPEN, "subject token"),
    (OPEN, None, "cc@x.org", DEFAULT, Action.APPEND, OPEN, "subject token"),
    (OPEN, None, "stranger@y.org", DEFAULT, Action.NEW_LINKED, OPEN, "subject token"),
    (OPEN, None, "stranger@y.org", APPEND, Action.APPEND, OPEN, "subject token"),
    (CLOSED_RECENT, None, "c@x.org", DEFAULT, Action.REOPEN, CLOSED_RECENT, "subject token"),
    (CLOSED_OLD, None, "c@x.org", DEFAULT, Action.NEW_LINKED, CLOSED_OLD, "subject token"),
    (None, CLOSED_RECENT, "c@x.org", DEFAULT, Action.REOPEN, CLOSED_RECENT, "In-Reply-To"),
])
def test_decide(token, header, sender, settings, action, ticket, rule):
    decision = decide(token, header, "In-Reply-To", sender, NOW, settings)
    assert (decision.action, decision.ticket, decision.rule) == (action, ticket, rule)
    assert type(decision.action) is Action
    assert decision.reason


def test_reopen_window_is_configurable():
    short = ThreadingSettings(reopen_days=1)
    assert decide(CLOSED_RECENT, None, "", "c@x.org", NOW, short).action == Action.NEW_LINKED
