"""Tracking tokens: the check digit and what mail clients do to subjects."""
import pytest

from mailgate.mail.tokens import (
    damm,
    find_tokens,
    format_token,
    is_valid_number,
    strip_tokens,
    ticket_number,
)

NUMBER = ticket_number(32)  # "100327"


def test_numbers_carry_a_damm_check_digit():
    assert NUMBER == "100327" and is_valid_number(NUMBER)
    assert damm("572") == 4  # the published example: 572 -> check digit 4
    for i in range(1, 2000):
        assert is_valid_number(ticket_number(i))


def test_every_single_digit_typo_and_adjacent_swap_is_caught():
    for i in range(1, 300):
        number = ticket_number(i)
        for pos in range(len(number)):
            for digit in "0123456789":
                typo = number[:pos] + digit + number[pos + 1:]
                if typo != number:
                    assert not is_valid_number(typo), (number, typo)
        for pos in range(len(number) - 1):
            swapped = number[:pos] + number[pos + 1] + number[pos] + number[pos + 2:]
            if swapped != number:
                assert not is_valid_number(swapped), (number, swapped)


@pytest.mark.parametrize("subject", [
    f"[MG#{NUMBER}] Printer",
    f"Re: [MG#{NUMBER}] Printer",
    f"RE: RE: [MG#{NUMBER}]",
    f"AW: [MG#{NUMBER}] Drucker",
    f"SV: [MG#{NUMBER}]",
    f"Fwd: FW: TR: [MG#{NUMBER}]",
    f"پاسخ: [MG#{NUMBER}] چاپگر",
    f"Ответ: [MG#{NUMBER}] принтер",
    f"[External] Re: [MG#{NUMBER}] Printer",
    f"Re: [mg#{NUMBER}] lower case",
    f"Re: [ MG # {NUMBER} ] spaced",
    f"Re: [MG#{NUMBER}]\t  folded   and spaced",
    f"Re: MG#{NUMBER} brackets lost",
    f"Re: ［MG＃{NUMBER}］ full-width",
    "Re: [MG#۱۰۰۳۲۷] Persian digits",
    "Re: [MG#١٠٠٣٢٧] Arabic-Indic digits",
    f"რე: [MG#{NUMBER}] პრინტერი",
])
def test_token_survives_subject_mangling(subject):
    assert find_tokens(subject, {"MG"}) == [(NUMBER, True)]


@pytest.mark.parametrize("subject,expected", [
    ("Re: hello", []),
    (f"[XMG#{NUMBER}]", []),  # another installation's longer prefix
    (f"[MG#{NUMBER}9]", [(NUMBER + "9", False)]),
    ("[MG#100328]", [("100328", False)]),  # one digit off
    (f"[BILL#{NUMBER}] and [MG#100010]", [(NUMBER, True), ("100010", False)]),
])
def test_token_edge_cases(subject, expected):
    assert find_tokens(subject, {"MG", "BILL"}) == expected


def test_format_token():
    assert format_token("MG", NUMBER) == "[MG#100327]"


@pytest.mark.parametrize("subject,expected", [
    ("Re: [SRV#100015] typo", "typo"),  # a mistyped token: the new ticket's subject drops it
    (f"Re: [MG#{NUMBER}] New ticket: Printer", "New ticket: Printer"),  # a linked ticket's
    (f"AW: Re: ［MG＃{NUMBER}］ Drucker", "Drucker"),
    ("پاسخ: [MG#۱۰۰۳۲۷] چاپگر ۱۲", "چاپگر ۱۲"),  # the subject's own Persian digits stay
    (f"[External] Re: [ MG # {NUMBER} ] Printer", "[External] Printer"),
    (f"Store: [MG#{NUMBER}] list", "Store: list"),  # "re:" inside a word is no reply marker
    (f"Printer [BILL#12] and MG#{NUMBER}", "Printer and"),
    (f"Fwd: [MG#{NUMBER}]", ""),
    (f"Re: [XMG#{NUMBER}] theirs", f"Re: [XMG#{NUMBER}] theirs"),  # not our prefix
    ("Re: no token  at all", "Re: no token  at all"),
])
def test_strip_tokens_of_ours_from_a_new_tickets_subject(subject, expected):
    assert strip_tokens(subject, {"MG", "BILL", "SRV"}) == expected
