"""What parsing gives: a `ParsedMessage` with its `ParsedAttachment`s and, for a
delivery report, the `DeliveryReport` it carries. Plain values: they cross a process
boundary (pickled) and every later step reads them."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ParsedAttachment:
    filename: str  # cleaned display name, as sent; metadata only
    content_type: str  # declared
    sniffed_type: str
    data: bytes
    sha256: str
    content_id: str | None = None
    inline: bool = False
    hazard: str = ""  # "" | bomb | macros | script (see sniff.examine)
    hazard_detail: str = ""

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass
class DeliveryReport:
    """What a DSN (multipart/report; report-type=delivery-status) says."""

    original_message_id: str | None
    recipients: list[str]
    action: str  # failed | delayed | delivered | relayed | expanded
    status: str  # e.g. 5.1.1
    diagnostic: str


@dataclass
class ParsedMessage:
    message_id: str | None
    in_reply_to: list[str]
    references: list[str]
    subject: str
    from_name: str
    from_addr: str | None
    reply_to: str | None
    to: list[str]
    cc: list[str]
    delivered_to: list[str]
    date: str
    content_type: str
    report_type: str
    text: str
    html: str | None
    attachments: list[ParsedAttachment] = field(default_factory=list)
    headers: dict[str, list[str]] = field(default_factory=dict)
    received_count: int = 0
    report: DeliveryReport | None = None
    mdn_original_id: str | None = None
    # how the sender was found when From alone did not give it (senders.py), for the
    # trace; "sender not verified" when only Reply-To named it
    sender_note: str = ""
    sender_via: str = "from"  # from | sender | return-path | reply-to
    sender_verified: bool = True
    notes: list[str] = field(default_factory=list)  # other repairs, for the trace

    def header(self, name: str) -> str:
        values = self.headers.get(name.lower())
        return values[0] if values else ""
