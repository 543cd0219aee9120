"""`[customers]`: what a customer may ask for by mail besides a ticket ("my tickets").

    [customers]
    list_words = ["#tickets", "my tickets", "تیکت‌های من", "ჩემი ბილეთები"]
    list_limit = 50

`mail/ticket_query.py` reads a request with these words; the status labels the
list shows are `[statuses]` (`status_labels.py`).
"""
from __future__ import annotations

from dataclasses import dataclass

from .config_checks import at_least
from .config_keys import key

LIST_WORDS = ("#tickets", "my tickets", "تیکت‌های من", "ჩემი ბილეთები")


def words(value: tuple[str, ...]) -> str | None:
    if not all(w.strip() for w in value):
        return "must not hold an empty word"
    return None


@dataclass(frozen=True)
class CustomerSettings:
    # subject or first line that asks for the list; "" words are refused
    list_words: tuple[str, ...] = key(LIST_WORDS, words)
    list_limit: int = key(50, at_least(1))  # tickets in one list, the newest (open first)
