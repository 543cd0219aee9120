"""The words of the status pages in en, fa and ka, and how the pages show values
in a locale (dates in its calendar, digits, status names from `status_labels.py`)."""
from __future__ import annotations

import datetime as dt

from ..config import Settings
from ..localdates import format_date, format_datetime, language, to_persian_digits
from ..status_labels import status_label

LOCALES = {"en": "English", "fa": "فارسی", "ka": "ქართული"}
RTL = {"fa"}

WORDS = {
    "en": {
        "ticket": "Ticket {number}", "your_tickets": "Your tickets",
        "all_tickets": "All your tickets", "number": "Number", "subject": "Subject",
        "status": "Status", "department": "Department", "topic": "Topic",
        "created": "Opened", "updated": "Last update", "closed": "Closed",
        "conversation": "Conversation", "you": "You", "attachments": "Attachments",
        "no_text": "(no text)", "language": "Language", "details": "Details",
        "filters": "Filter your tickets", "from": "From date", "to": "To date",
        "date_hint": "year-month-day, e.g. 2026-11-22", "any": "Any",
        "open_all": "Every open ticket", "apply": "Show", "none_found": "No tickets match.",
        "not_a_date": "This is not a date: {value}", "no_messages": "No messages yet.",
        "expired": "This link has expired", "invalid": "This link does not work",
        "fresh_offer": "We can send a fresh link to the email address we have on file for you.",
        "fresh_button": "Send me a fresh link",
        "sent": "Check your mail",
        "sent_text": "If this link was ours, a fresh one is on its way to the email address "
                     "we have on file. It may take a few minutes.",
        "reply_hint": "To add anything, reply to our last email about this ticket.",
    },
    "fa": {
        "ticket": "تیکت {number}", "your_tickets": "تیکت‌های شما",
        "all_tickets": "همه‌ی تیکت‌های شما", "number": "شماره", "subject": "موضوع",
        "status": "وضعیت", "department": "بخش", "topic": "نوع درخواست",
        "created": "تاریخ ثبت", "updated": "آخرین به‌روزرسانی", "closed": "تاریخ بسته شدن",
        "conversation": "گفتگو", "you": "شما", "attachments": "پیوست‌ها",
        "no_text": "(بدون متن)", "language": "زبان", "details": "جزئیات",
        "filters": "جستجو در تیکت‌ها", "from": "از تاریخ", "to": "تا تاریخ",
        "date_hint": "سال-ماه-روز، مثلاً ۱۴۰۵-۰۹-۰۱", "any": "همه",
        "open_all": "همه‌ی تیکت‌های باز", "apply": "نمایش",
        "none_found": "تیکتی با این مشخصات پیدا نشد.",
        "not_a_date": "این تاریخ معتبر نیست: {value}", "no_messages": "هنوز پیامی نیست.",
        "expired": "مهلت این پیوند تمام شده است", "invalid": "این پیوند معتبر نیست",
        "fresh_offer": "می‌توانیم پیوند تازه‌ای به نشانی ایمیلی که از شما داریم بفرستیم.",
        "fresh_button": "پیوند تازه بفرستید",
        "sent": "ایمیل خود را ببینید",
        "sent_text": "اگر این پیوند از ما بوده باشد، پیوند تازه‌ای به نشانی ایمیلی که از شما "
                     "داریم فرستاده می‌شود. ممکن است چند دقیقه طول بکشد.",
        "reply_hint": "برای افزودن مطلب، به آخرین ایمیل ما درباره‌ی این تیکت پاسخ دهید.",
    },
    "ka": {
        "ticket": "ბილეთი {number}", "your_tickets": "თქვენი ბილეთები",
        "all_tickets": "ყველა თქვენი ბილეთი", "number": "ნომერი", "subject": "თემა",
        "status": "სტატუსი", "department": "განყოფილება", "topic": "კატეგორია",
        "created": "გახსნილია", "updated": "ბოლო განახლება", "closed": "დახურულია",
        "conversation": "მიმოწერა", "you": "თქვენ", "attachments": "დანართები",
        "no_text": "(ტექსტი არ არის)", "language": "ენა", "details": "დეტალები",
        "filters": "ბილეთების ფილტრი", "from": "თარიღიდან", "to": "თარიღამდე",
        "date_hint": "წელი-თვე-დღე, მაგ. 2026-11-22", "any": "ყველა",
        "open_all": "ყველა ღია ბილეთი", "apply": "ჩვენება",
        "none_found": "შესაბამისი ბილეთი ვერ მოიძებნა.",
        "not_a_date": "ეს არ არის თარიღი: {value}", "no_messages": "შეტყობინებები ჯერ არ არის.",
        "expired": "ბმულს ვადა გაუვიდა", "invalid": "ეს ბმული არ მუშაობს",
        "fresh_offer": "შეგვიძლია ახალი ბმული გამოგიგზავნოთ ელფოსტის მისამართზე, "
                       "რომელიც ჩვენთან გაქვთ მითითებული.",
        "fresh_button": "გამომიგზავნეთ ახალი ბმული",
        "sent": "შეამოწმეთ ელფოსტა",
        "sent_text": "თუ ეს ბმული ჩვენია, ახალი ბმული გაიგზავნება თქვენს ელფოსტის "
                     "მისამართზე. ამას შეიძლება რამდენიმე წუთი დასჭირდეს.",
        "reply_hint": "დასამატებლად უპასუხეთ ჩვენს ბოლო წერილს ამ ბილეთის შესახებ.",
    },
}

class Speaker:
    """The page's words and values in one locale: `t("subject")`, `when(moment)`."""

    def __init__(self, settings: Settings, locale: str):
        self.settings = settings
        self.lang = language(locale)
        self.dir = "rtl" if self.lang in RTL else "ltr"

    def t(self, name: str, **values) -> str:
        text = WORDS[self.lang][name]
        return text.format(**{k: self.digits(v) for k, v in values.items()}) if values else text

    def digits(self, value) -> str:
        return to_persian_digits(str(value)) if self.lang == "fa" else str(value)

    def when(self, moment: dt.datetime | str | None, tz: str) -> str:
        """A moment (or its ISO 8601 text) as a date and time on the wall clock of `tz`."""
        return format_datetime(_moment(moment), self.lang, tz) if moment else ""

    def day(self, moment: dt.datetime | str | None, tz: str) -> str:
        return format_date(_moment(moment), self.lang, tz) if moment else ""

    def status(self, status: str, department: str | None = None) -> str:
        """A status as `[statuses]` names it in this locale (for `department`, a key)."""
        return status_label(self.settings, status, self.lang, department)

    def size(self, value: int) -> str:
        text = (f"{value / 1048576:.1f} MB" if value >= 1048576 else
                f"{value / 1024:.0f} KB" if value >= 1024 else f"{value} B")
        return self.digits(text)


def _moment(value: dt.datetime | str) -> dt.datetime:
    return dt.datetime.fromisoformat(value) if isinstance(value, str) else value
