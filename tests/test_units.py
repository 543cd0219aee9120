"""Pure helpers: header cleaning, routing, HTML sanitizing, sniffing, attachment policy."""
import pytest

from mailgate.config import LimitSettings
from mailgate.mail.headers import message_ids, normalize_address, one_line, safe_filename, split_plus
from mailgate.mail import route
from mailgate.mail.attachments import refusal
from mailgate.mail.parse import parse_message
from mailgate.mail.parsed import ParsedAttachment
from mailgate.mail.htmltext import html_to_text
from mailgate.mail.sanitize import sanitize_html
from mailgate.mail.sniff import examine
from tests.mails import make_mail


@pytest.mark.parametrize("value,expected", [
    ("Hello\r\nBcc: x@y", "Hello Bcc: x@y"),
    ("a\u2028b\u2029c\x85d", "a b c d"),
    ("tab\there  and   spaces", "tab here and spaces"),
    ("nul\x00byte", "nul byte"),
    (None, ""),
])
def test_one_line(value, expected):
    assert one_line(value) == expected


def test_one_line_truncates():
    assert len(one_line("x" * 3000, 500)) == 500


@pytest.mark.parametrize("name,expected", [
    ("../../etc/passwd", "passwd"),
    ("..\\..\\windows\\system.ini", "system.ini"),
    ("report\x00.pdf.exe", "report .pdf.exe"),
    ("line\r\nbreak.txt", "line break.txt"),
    (".htaccess", "htaccess"),
    ("", "attachment"),
    ("/", "attachment"),
    ("فاکتور.pdf", "فاکتور.pdf"),
])
def test_safe_filename(name, expected):
    assert safe_filename(name) == expected


def test_safe_filename_caps_length_and_keeps_extension():
    name = safe_filename("a" * 10_000 + ".pdf")
    assert len(name) <= 200 and name.endswith(".pdf")


def test_addresses_and_message_ids():
    assert normalize_address("<Support@Example.COM>") == "support@example.com"
    assert normalize_address("not an address") is None
    assert split_plus("support+billing@x.org") == ("support@x.org", "billing")
    assert message_ids("<a@b> junk <c@d>\r\n <e@f>") == ["<a@b>", "<c@d>", "<e@f>"]


def test_routing_order_and_plus_tags():
    msg = parse_message(make_mail(to="Other <other@x.org>, support+vip@example.com",
                                  cc="billing@example.com"))
    mapping = {"support@example.com": "support", "billing@example.com": "billing"}
    cands = route.candidates(msg, None)
    assert [a for a, _ in cands] == ["other@x.org", "support+vip@example.com",
                                     "billing@example.com"]
    assert route.route(cands, mapping) == route.Route("support", "support+vip@example.com",
                                                      "vip", "to")
    envelope = route.candidates(msg, ["Billing@Example.com"])
    assert route.route(envelope, mapping).department == "billing"
    assert route.route(route.candidates(msg, ["x@y.org"]), mapping) is None
    assert route.route([], mapping, catch_all="support").via == "catch-all"
    assert route.route([], mapping, "support", mailbox_default="billing").department == "billing"


HOSTILE_HTML = [
    '<script>alert(1)</script>',
    '<img src=x onerror=alert(1)>',
    '<svg><script>alert(1)</script></svg>',
    '<math><mi xlink:href="javascript:alert(1)">x</mi></math>',
    '<a href="javascript:alert(1)">x</a>',
    '<a href="JaVaScRiPt:alert(1)">x</a>',
    '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">x</a>',
    '<iframe src="https://evil.example"></iframe>',
    '<object data="https://evil.example/x.swf"></object>',
    '<embed src="https://evil.example/x.swf">',
    '<form action="https://evil.example"><input name=p><button formaction="x">go</button></form>',
    '<base href="https://evil.example/">',
    '<meta http-equiv="refresh" content="0;url=https://evil.example">',
    '<link rel=stylesheet href="https://evil.example/x.css">',
    '<style>body{background:url(https://evil.example/t.gif)}</style>',
    '<div style="background:url(https://evil.example/t.gif)">x</div>',
    '<img srcset="https://evil.example/a.png 1x">',
    '<img src="https://tracker.example/pixel.gif">',
    '<img src="//tracker.example/pixel.gif">',
    '<table background="https://evil.example/t.gif"><tr><td>x</td></tr></table>',
    '<p onmouseover="alert(1)">x</p>',
    '<a href="cid:part1@x">not a link target</a>',
]


@pytest.mark.parametrize("source", HOSTILE_HTML)
def test_sanitized_html_loads_nothing_and_runs_nothing(source):
    clean = sanitize_html(source).lower()
    for bad in ("<script", "<svg", "<math", "<iframe", "<object", "<embed", "<form", "<input",
                "<button", "<base", "<meta", "<link", "<style", "style=", "javascript:",
                "data:", "srcset", "formaction", "evil.example", "tracker.example",
                "background", "cid:part1"):
        assert bad not in clean, (source, clean)
    assert " on" not in clean.replace("noopener", "")


def test_sanitizer_keeps_formatting_and_cid_images():
    source = ('<h1 dir="rtl">سلام</h1><p><b>bold</b> <i>it</i> <a href="https://ok.example/">'
              'link</a> <img src="cid:logo@x" alt="logo"></p><ul><li>one</li></ul>'
              '<table><tr><td colspan="2">cell</td></tr></table><blockquote>q</blockquote>')
    clean = sanitize_html(source)
    for kept in ('<h1 dir="rtl">سلام</h1>', "<b>bold</b>", "<i>it</i>",
                 'href="https://ok.example/"', 'src="cid:logo@x"', "<li>one</li>",
                 'colspan="2"', "<blockquote>q</blockquote>"):
        assert kept in clean


def test_html_to_text():
    text = html_to_text("<p>Hello<br>world</p><script>x()</script><ul><li>a</li></ul>")
    assert text == "Hello\nworld\n\n  * a"


@pytest.mark.parametrize("data,declared,expected", [
    (b"%PDF-1.7\n...", "application/octet-stream", "application/pdf"),
    (b"\xff\xd8\xff\xe0JFIF", "image/jpeg", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n....", "", "image/png"),
    (b"GIF89a...", "", "image/gif"),
    (b"MZ\x90\x00", "application/pdf", "application/x-msdownload"),
    (b"\x7fELF\x02", "", "application/x-executable"),
    ("plain text, ÿ and فارسی".encode(), "", "text/plain"),
    (b"\x00\x01\x02\x03binary", "", "application/octet-stream"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 50, "application/msword",
     "application/msword"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 50, "", "application/x-ole-storage"),
])
def test_sniff(data, declared, expected):
    assert examine(data, declared).type == expected


def test_sniff_office_open_xml():
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<w:document/>")
    assert examine(buf.getvalue()).type == \
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def _att(name, declared, data):
    return ParsedAttachment(name, declared, examine(data, declared).type, data, "0" * 64)


@pytest.mark.parametrize("name,declared,data,refused", [
    ("a.pdf", "application/pdf", b"%PDF-1.4", None),
    ("a.pdf", "application/octet-stream", b"%PDF-1.4", None),
    ("notes.txt", "text/plain", b"hello", None),
    ("a.pdf", "application/pdf", b"MZ\x90", "content is application/x-msdownload"),
    ("page.html", "text/html", b"<script>", "declared as text/html"),
    ("page.html", "text/plain", b"<script>", "files named .html"),
    ("x.svg", "application/octet-stream", b"<svg onload=x>", "files named .svg"),
    # zip is accepted since issue 13 (a zip bomb is refused by its directory);
    # other archives are not
    ("a.zip", "application/zip", b"PK\x03\x04junk", None),
    ("a.rar", "application/vnd.rar", b"Rar!\x1a\x07\x00", "content is application/vnd.rar"),
])
def test_attachment_policy(name, declared, data, refused):
    reason = refusal(_att(name, declared, data), LimitSettings())
    assert (reason is None) if refused is None else (refused in reason)


def test_encoded_word_wrapped_message_ids_still_thread():
    long_id = "<mg.n.1.1.e9f9776f0b679d75.8d0e0ba2ddb169138a338e9977a073843311@mg.example.com>"
    raw = (b"From: a@example.org\r\nSubject: x\r\n"
           b"In-Reply-To: =?utf-8?q?=3Cmg=2En=2E1=2E1=2Ee9f9776f0b679d75=2E8d0e0ba2ddb169?=\r\n"
           b" =?utf-8?q?138a338e9977a073843311=40mg=2Eexample=2Ecom=3E?=\r\n\r\nbody\r\n")
    assert parse_message(raw).in_reply_to == [long_id]


@pytest.mark.parametrize("header,expected", [
    # RFC 6532 / what many mailers (and swaks) send: raw UTF-8 bytes in the header
    ("Subject: چاپگر کار نمی‌کند".encode(), "چاپگر کار نمی\u200cکند"),
    ("Subject: პრინტერი არ მუშაობს".encode(), "პრინტერი არ მუშაობს"),
    # raw 8-bit that is not UTF-8: read as Windows-1252, never as replacement marks
    ("Subject: Caf\xe9 cr\xe8me".encode("latin-1"), "Café crème"),
    # RFC 2047, adjacent encoded words joined, unknown charset read as UTF-8
    (b"Subject: =?utf-8?q?caf=C3=A9?= =?utf-8?q?_bar?= plain", "café bar plain"),
    (b"Subject: =?x-unknown?q?caf=C3=A9?=", "café"),
    (b"Subject: =?windows-1256?b?x+PH0Q==?=", "امار"),
])
def test_subject_charsets(header, expected):
    parsed = parse_message(header + b"\r\nFrom: a@example.org\r\n\r\nbody\r\n")
    assert parsed.subject == expected


def test_raw_utf8_display_name_and_filename():
    raw = ('From: "شیرین رحیمی" <shirin@example.ir>\r\nSubject: x\r\nMIME-Version: 1.0\r\n'
           'Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n'
           'Content-Type: text/plain; charset=utf-8\r\n\r\nسلام\r\n--b\r\n'
           'Content-Type: application/pdf\r\n'
           'Content-Disposition: attachment; filename="فاکتور.pdf"\r\n\r\n%PDF-1.4 x\r\n'
           '--b--\r\n').encode()
    parsed = parse_message(raw)
    assert parsed.from_name == "شیرین رحیمی"
    assert [a.filename for a in parsed.attachments] == ["فاکتور.pdf"]
