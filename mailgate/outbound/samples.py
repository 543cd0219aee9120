"""A realistic sample context per template, for `mailgate check` and the tests.

Each context has the shape `notify.py` queues: plain values only, dates as
ISO 8601 strings with an offset. Some values are Persian or Georgian on
purpose, so every check also renders right-to-left text and non-Latin scripts.
A template without an entry of its own is rendered with `_default`.
"""
from __future__ import annotations

# A Persian customer writing to Billing, answered in Tehran time.
_BILLING_TICKET = {
    "number": "100017",
    "token": "[MG#100017]",
    "subject": "مبلغ فاکتور دو بار از کارتم کسر شد",
    "status": "open",
    "priority": "high",
    "category": "refund",
    "department": "Billing",
    "department_key": "billing",
    "created_at": "2026-11-13T09:41:00+03:30",
    "due_at": "2026-11-14T12:00:00+00:00",
}
_BILLING = {
    "key": "billing",
    "name": "Billing",
    "address": "billing@support.example.com",
    "promise": "We usually answer within one working day.",
    "response_hours": 8,  # the first-response target for the ticket's priority
    "resolution_hours": 72,
    "working_time": True,
}
_MARYAM = {"name": "مریم احمدی", "email": "maryam.ahmadi@example.ir"}

# A Georgian customer writing to technical support, in Tbilisi time.
_SUPPORT_TICKET = {
    "number": "100023",
    "token": "[MG#100023]",
    "subject": "ინტერნეტი საღამოობით ძალიან ნელა მუშაობს",
    "status": "answered",
    "priority": "normal",
    "category": None,
    "department": "Technical support",
    "department_key": "support",
    "created_at": "2026-11-10T18:05:00+04:00",
    "due_at": None,
}
_SUPPORT = {
    "key": "support",
    "name": "Technical support",
    "address": "support@support.example.com",
    "promise": "",
}
_LEVAN = {"name": "ლევან ჯავახიშვილი", "email": "levan.javakhishvili@example.ge"}
_NINO = {"name": "ნინო ბერიძე", "email": "nino.beridze@support.example.com"}

# a status page link (web/links.py), signed for one reader
_STATUS_URL = ("https://support.example.com/status/ticket/"
               "t17.4.6a5b1c00.1f2e0123456789abcdef0123456789abcdef")
_LIST_URL = ("https://support.example.com/status/tickets/"
             "l0.4.6a5b1c00.1f2e89abcdef0123456789abcdef01234567")
_RECEIPT = {"filename": "رسید-بانک.pdf", "size": 184_320}
_STATEMENT_OCT = {"filename": "bank-statement-2026-10.pdf", "size": 6_291_456}
_STATEMENT_NOV = {"filename": "bank-statement-2026-11.pdf", "size": 6_815_744}

_MARYAM_TEXT = (
    "سلام،\n"
    "امروز صبح مبلغ فاکتور شماره‌ی ۲۰۲۶-۱۱۴ دو بار از کارت بانکی‌ام کسر شد.\n"
    "رسید بانک را پیوست کرده‌ام. لطفاً مبلغ اضافه را به حسابم برگردانید.\n"
    "\n"
    "با تشکر،\n"
    "مریم احمدی"
)


def _billing(recipient_role: str = "customer") -> dict:
    recipient = ({**_MARYAM, "role": "customer"} if recipient_role == "customer"
                 else {"name": "", "email": "billing-team@support.example.com", "role": "agent"})
    return {"ticket": _BILLING_TICKET, "department": _BILLING, "requester": _MARYAM,
            "recipient": recipient, "close_word": "#close", "timezone": "Asia/Tehran",
            "status_url": _STATUS_URL}


def _support(recipient_role: str = "customer") -> dict:
    recipient = ({**_LEVAN, "role": "customer"} if recipient_role == "customer"
                 else {"name": "", "email": "support-team@support.example.com", "role": "agent"})
    return {"ticket": _SUPPORT_TICKET, "department": _SUPPORT, "requester": _LEVAN,
            "recipient": recipient, "close_word": "#close", "timezone": "Asia/Tbilisi",
            "status_url": _STATUS_URL}


SAMPLES: dict[str, dict] = {
    "_default": _billing(),
    "ack": {**_billing(), "message": {"attachments": [_RECEIPT]},  # no body: notify.py
            # the fields the customer set by mail (pipeline/rules.py), labels per locale
            "understood": [{"field": "category", "value": "billing",
                            "labels": {"en": "Billing", "fa": "مالی", "ka": "ბილინგი"}},
                           {"field": "priority", "value": "high", "labels": {}}]},
    "command_refused": {**_support(), "command": "#close"},
    "new_ticket": {
        **_billing("agent"),
        "message": {"text": _MARYAM_TEXT, "author_name": "مریم احمدی",
                    "received_at": "2026-11-13T09:41:00+03:30",
                    "attachments": [_RECEIPT, _STATEMENT_OCT, _STATEMENT_NOV],
                    # refused attachments the agent still sees (issue 13)
                    "refused": [{"filename": "رسید-بانک.exe", "size": 73_216,
                                 "content_type": "application/octet-stream",
                                 "sniffed_type": "application/x-msdownload",
                                 "reason": "content is application/x-msdownload, which is "
                                           "not an allowed type"}]},
        "big_attachments": [_STATEMENT_NOV],
    },
    "customer_reply": {
        **_support("agent"),
        "message": {"text": "გამარჯობა,\nროუტერი გადავტვირთე, მაგრამ საღამოს 8 საათის "
                            "შემდეგ სიჩქარე ისევ 2 Mbps-მდე ეცემა.\nსპიდტესტის სქრინშოტს "
                            "ვურთავ.\n\nლევანი",
                    "author_name": "ლევან ჯავახიშვილი",
                    "received_at": "2026-11-12T20:14:00+04:00",
                    "attachments": [{"filename": "speedtest.png", "size": 241_664}]},
        "big_attachments": [],
    },
    "agent_reply": {
        **_support(),
        "message": {"text": "გამარჯობა, ლევან!\n\nთქვენს ხაზზე საღამოს გადატვირთულ "
                            "სეგმენტს ვხედავთ. ხვალიდან ახალ პორტზე გადაგიყვანთ და "
                            "სიჩქარე აღდგება.\nთუ ორშაბათამდე არ გამოსწორდა, მოგვწერეთ.",
                    "author_name": "ნინო ბერიძე",
                    "received_at": "2026-11-13T11:02:00+04:00", "attachments": []},
        "agent": _NINO,
    },
    "status_change": {
        **_support(),
        "status": {"old": "answered", "new": "resolved",
                   "reason": "The line was moved to a new port on 14 November."},
    },
    "status_link": {**_billing(), "list_url": _LIST_URL},
    "merged": {
        **_billing(),
        "merged": {"number": "100020", "token": "[MG#100020]",
                   "subject": "دو بار پرداخت شد"},
    },
    "rejection": {
        **_billing(),
        "refused": [
            {"filename": "invoice-viewer.exe", "reason": "files named .exe are not accepted"},
            {"filename": "اسکن-قرارداد.pdf",
             "reason": "15728640 bytes exceeds the limit of 10485760 bytes"},
        ],
        "reason": "",
        "limit_bytes": 10_485_760,
        "accepted": [{"kind": "documents", "formats": ["PDF", "Word"]},
                     {"kind": "images", "formats": ["JPEG", "PNG"]}],
    },
    "command_result": {
        **_billing("agent"),
        "errors": [
            {"line": "#status solved",
             "reason": "unknown status 'solved'; use open, in_progress, answered, resolved "
                       "or closed"},
            {"line": "#department sales", "reason": "no department with the key 'sales'"},
        ],
        "applied": ["#priority urgent", "#assign me"],
    },
    "held": {**_billing("agent"), "quarantine_id": 42},
    "reminder": {**_support(), "waiting_days": 5, "close_after_days": 3},
    "auto_closed": {**_support(), "waiting_days": 8, "reopen_days": 14},
    "sla_warning": {
        **_billing("agent"),
        "deadline": {"kind": "first_response", "due_at": "2026-11-14T12:00:00+00:00"},
    },
    "escalation": {
        **_support("agent"),
        "deadline": {"kind": "resolution", "due_at": "2026-11-13T14:30:00+00:00"},
        "assignee": {"name": "გიორგი კაპანაძე",
                     "email": "giorgi.kapanadze@support.example.com"},
    },
    "digest": {
        "department": _BILLING,
        "recipient": {**_NINO, "role": "agent"},
        "agent": _NINO,
        "close_word": "#close",
        "timezone": "Asia/Tbilisi",
        "total": 3,
        "overdue_count": 1,
        "tickets": [
            {"number": "100011", "token": "[MG#100011]", "subject": "Refund not received",
             "status": "open", "priority": "urgent", "age_hours": 30, "age_days": 4, "overdue": True,
             "due_at": "2026-11-12T10:00:00+00:00"},
            {"number": "100017", "token": "[MG#100017]",
             "subject": "مبلغ فاکتور دو بار از کارتم کسر شد", "status": "in_progress",
             "priority": "high", "age_hours": 6, "age_days": 1, "overdue": False,
             "due_at": "2026-11-14T12:00:00+00:00"},
            {"number": "100019", "token": "[MG#100019]",
             "subject": "ანგარიშ-ფაქტურის ასლი", "status": "answered", "priority": "normal",
             "age_hours": 14, "age_days": 2, "overdue": False, "due_at": None},
        ],
    },
    "my_tickets": {  # outbound/ticket_list.py: a proven customer's "#tickets open"
        "recipient_name": "مریم احمدی", "verified": True, "total": 3,
        "close_word": "#close", "request_word": "#tickets", "timezone": "Asia/Tehran",
        "signature": "Billing",
        "query": {"state": "open", "statuses": [], "since": "2026-11-01T12:00:00+00:00",
                  "category": "", "notes": ["1405-13-01"]},
        "tickets": [
            {"number": "100017", "token": "[MG#100017]", "subject": _BILLING_TICKET["subject"],
             "department": "Billing", "department_key": "billing", "category": "refund",
             "status": "in_progress", "created_at": "2026-11-13T09:41:00+03:30",
             "updated_at": "2026-11-14T08:00:00+00:00", "closed": False},
            {"number": "100011", "token": "[MG#100011]", "subject": "Refund not received",
             "department": "Billing", "department_key": "billing", "category": "",
             "status": "closed", "created_at": "2026-11-02T10:00:00+00:00",
             "updated_at": "2026-11-05T16:20:00+00:00", "closed": True},
        ],
    },
}
