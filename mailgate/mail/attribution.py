"""The lines mail clients write above the history they quote, per language. Pure data.

`quotes.py` decides where to cut; this module only says what the clients'
lines look like: the attribution ("On ... wrote:"), Outlook's header block
(From/Sent/To/Subject), "-----Original Message-----", the forward marker that
makes what follows content, and the mobile footers ("Sent from my iPhone").
Languages: en, de, fr, es, ru, fa and ka — Gmail, Outlook and Apple Mail as they
write them in each (Gmail and Apple Mail in Persian put the date first and
"نوشت:" last; Georgian Gmail ends in "წერს:", Outlook's Georgian header labels
are "ვისგან/გამგზავნი", "გაიგზავნა", "ვის", "თემა").
"""
from __future__ import annotations

import re

# Direction marks and isolates that clients put around RTL text and addresses.
BIDI = re.compile("[\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]")

_DATE_FIRST = r"^(?:\S+\s+){0,3}\S*\d"  # a date within the first four words
ATTRIBUTIONS = tuple(re.compile(p, re.IGNORECASE) for p in (
    r"^-*\s*On\s.+wrote\s?:$",  # en: Gmail, Apple Mail, Thunderbird, Yahoo's "--- On ..."
    r"^Am\s.+\sschrieb\b.*:$",  # de
    r"^Le\s.+\sa\s[ée]crit\s?:$",  # fr
    r"^El\s.+\sescribi[óo]\s?:$",  # es
    _DATE_FIRST + r".*\s(?:пишет|написал|написала|написал\(а\))\s?:$",  # ru
    _DATE_FIRST + r".*\sنوشت(?:ه است)?\s?:$",  # fa
    _DATE_FIRST + r".*\s(?:წერს|დაწერა|მოგწერათ)\s?:$",  # ka
    _DATE_FIRST + r".*\d:\d\d.*<[^<>\s]+@[^<>\s]+>\)?\s?:$",  # no verb: Gmail, Mail.ru in Russian
))
# What is left above our separator when a client's attribution is unknown to us.
LOOSE_ATTRIBUTION = re.compile(r"^(?=.*(?:@|\d:\d\d)).*:$")

# Outlook's header block: the group a label falls in is what `quotes` counts.
HEADER = re.compile(
    r"^\*?(?:(?P<sender>From|Von|De|От|از|ვისგან|გამგზავნი|ავტორი)"
    r"|(?P<subject>Subject|Betreff|Objet|Asunto|Тема|موضوع|თემა)"
    r"|(?P<other>Sent|Date|To|Cc|Gesendet|Datum|An|Envoyé|À|Enviado|Fecha|Para"
    r"|Отправлено|Дата|Кому|Копия|ارسال شده|تاریخ|به|رونوشت"
    r"|გაიგზავნა|გაგზავნილია|თარიღი|ვის|ადრესატი|ასლი))\*?\s?:", re.IGNORECASE)
ORIGINAL = re.compile(
    r"^-{3,}\s*(?:Original Message|Ursprüngliche Nachricht|Message d'origine"
    r"|Mensaje original|Исходное сообщение|پیام اصلی|ორიგინალი შეტყობინება"
    r"|საწყისი შეტყობინება)\s*-{3,}$", re.IGNORECASE)
FORWARD = re.compile(
    r"^(?:-+\s*(?:Forwarded message|Weitergeleitete Nachricht|Message transféré"
    r"|Mensaje reenviado|Пересылаемое сообщение|پیام هدایت‌شده|پیام ارسال‌شده"
    r"|გადაგზავნილი შეტყობინება)\s*-+|Begin forwarded message:)$", re.IGNORECASE)
RULE = re.compile(r"^[_-]{20,}$")
MOBILE_FOOTER = re.compile(
    r"^(?:Sent from my(?: [^\s,;:!?]+){1,4}|Get Outlook for (?:iOS|Android)"
    r"|Von meinem(?: [^\s,;:!?]+){1,3} gesendet|Envoyé de mon(?: [^\s,;:!?]+){1,3}"
    r"|Enviado desde mi(?: [^\s,;:!?]+){1,3}|Отправлено с(?: [^\s,;:!?]+){1,3}"
    r"|ارسال شده از(?: [^\s,;:!?]+){1,3}|გაგზავნილია(?: [^\s,;:!?]+){1,3}-დან)"
    r"\.?(?:\s*<\S+>)?$", re.IGNORECASE)
