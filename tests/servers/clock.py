"""A clock tests move by hand: pass it to Gateway(clock=…) and advance it."""
from __future__ import annotations

import datetime as dt


class Clock:
    def __init__(self):
        self.now = dt.datetime.now(dt.timezone.utc)

    def __call__(self):
        return self.now

    def advance(self, **delta):
        self.now += dt.timedelta(**delta)
