"""Bytes to text the way mail clients read them: charset labels, supersets, detection.

A declared charset is looked up by the labels mail really carries, and read as
the superset its senders meant (GB2312 as GB18030, Shift_JIS as CP932,
KS_C_5601 and EUC-KR as CP949, ISO-8859-1 and US-ASCII as Windows-1252,
ISO-8859-8-I as ISO-8859-8; see `ALIASES`). Bytes that do not fit the declared
charset, or that come with none, are tried as UTF-8, then given to
charset-normalizer, bounded per message in calls and bytes (`Reader`), then read
as Windows-1252, whose five unassigned bytes become the C1 controls of the same
number: the last step cannot fail, so no text ever gets U+FFFD from us.
Pure; no I/O.
"""
from __future__ import annotations

import codecs
import email.message
import re
from dataclasses import dataclass, field

from charset_normalizer import from_bytes

# label (lower case, as found after `charset=`) -> Python codec name
ALIASES = {
    # Chinese: GB2312 mail is GBK or GB18030 in practice
    **dict.fromkeys(("gb2312", "gb_2312", "gb_2312-80", "gb2312-80", "csgb2312", "euc-cn",
                     "euccn", "x-euc-cn", "gbk", "x-gbk", "cp936", "ms936", "windows-936",
                     "chinese", "iso-ir-58", "csiso58gb231280", "gb18030", "hz-gb-2312"),
                    "gb18030"),
    **dict.fromkeys(("big5", "big-5", "cn-big5", "x-x-big5", "csbig5", "cp950", "ms950",
                     "windows-950"), "cp950"),
    **dict.fromkeys(("big5-hkscs", "big5hkscs"), "big5hkscs"),
    # Japanese
    **dict.fromkeys(("shift_jis", "shift-jis", "sjis", "x-sjis", "ms_kanji", "csshiftjis",
                     "windows-31j", "cp932", "ms932", "x-ms-cp932"), "cp932"),
    **dict.fromkeys(("iso-2022-jp", "csiso2022jp", "iso-2022-jp-1", "iso-2022-jp-2",
                     "iso-2022-jp-3", "iso-2022-jp-2004", "cp50220", "cp50221", "cp50222"),
                    "iso2022_jp_2"),
    **dict.fromkeys(("euc-jp", "eucjp", "x-euc-jp", "cseucpkdfmtjapanese", "ujis"), "euc_jp"),
    # Korean
    **dict.fromkeys(("ks_c_5601-1987", "ks_c_5601", "ks_c_5601-1989", "ksc5601", "ksc_5601",
                     "ks_c_5601_1987", "euc-kr", "euckr", "x-euc-kr", "cseuckr", "korean",
                     "iso-ir-149", "csksc56011987", "windows-949", "cp949", "uhc"), "cp949"),
    # US-ASCII says nothing about 8-bit bytes: they are read as if unlabelled
    **dict.fromkeys(("us-ascii", "ascii", "ansi_x3.4-1968", "iso646-us", "us", "cp367"),
                    "ascii"),
    # Latin-1 labels: senders write Windows-1252 under them
    **dict.fromkeys(("iso-8859-1", "iso8859-1", "iso_8859-1", "latin1", "latin-1", "l1",
                     "iso-ir-100", "cp819", "csisolatin1", "ibm819", "windows-1252", "cp1252",
                     "x-cp1252", "ansi"), "cp1252"),
    **dict.fromkeys(("iso-8859-9", "iso8859-9", "latin5", "l5", "iso-ir-148"), "cp1254"),
    **dict.fromkeys(("iso-8859-11", "tis-620", "tis620", "windows-874", "cp874"), "cp874"),
    # Hebrew and Arabic with the RFC 1556 direction suffixes
    **dict.fromkeys(("iso-8859-8-i", "iso-8859-8-e", "iso_8859-8-i", "iso_8859-8-e",
                     "csiso88598i", "csiso88598e", "logical", "visual"), "iso8859_8"),
    **dict.fromkeys(("iso-8859-6-i", "iso-8859-6-e", "csiso88596i", "csiso88596e"),
                    "iso8859_6"),
    **dict.fromkeys(("utf8", "utf-8", "unicode-1-1-utf-8", "x-unicode20utf8",
                     "unicode-2-0-utf-8"), "utf-8"),
    "koi8": "koi8_r", "koi8r": "koi8_r", "koi8-ru": "koi8_u", "x-mac-roman": "mac_roman",
    "macintosh": "mac_roman", "x-mac-cyrillic": "mac_cyrillic", "x-user-defined": "cp1252",
}
# windows-1251, win-1251, cp-1251, x-cp1251, windows1251, ms-1251 ...
_WINDOWS = re.compile(r"(?:x-)?(?:windows|win|cp|ms|ms-ansi)[-_]?(125[0-8])")
# labels that say nothing: read the bytes as if none was given
UNKNOWN = {"", "unknown", "unknown-8bit", "x-unknown", "default", "charset", "none", "8bit",
           "binary", "us-askey", "unspecified"}
# charset-normalizer chooses among these; ties go to the earlier one
DETECTABLE = ("cp1252", "utf_8", "cp1250", "cp1251", "koi8_r", "koi8_u", "cp1253", "cp1254",
              "cp1255", "cp1256", "cp1257", "cp1258", "iso8859_2", "iso8859_5", "iso8859_7",
              "iso8859_15", "gb18030", "cp950", "big5hkscs", "cp932", "euc_jp", "cp949",
              "cp874")  # not mac_roman: charset-normalizer 3.5 prefers it for Latin-1 German
                        # ("Frˆsche"); Mac mail declares its charset anyway
DETECT_BYTES = 16 * 1024  # sample given to the detector
DETECT_CALLS = 8  # per message; past that, Windows-1252
DETECT_FROM = 4  # 8-bit bytes; fewer say too little to tell a charset (`r\xe1pido`)


def _c1_for_undefined(error: UnicodeDecodeError) -> tuple[str, int]:
    """Windows-1252's five unassigned bytes (0x81, 0x8D, 0x8F, 0x90, 0x9D) read as the
    C1 controls of the same number, as browsers do: the fallback never fails."""
    return error.object[error.start:error.end].decode("latin-1"), error.end


codecs.register_error("mailgate-c1", _c1_for_undefined)


def codec_for(label: object) -> str | None:
    """The Python codec for a charset label, or None when the label names none we know
    (or names nothing: `unknown-8bit`, `x-unknown`)."""
    name = str(label or "").strip().strip("\"'").lower()
    if name.startswith("3d") and codec_for(name[2:]):  # charset=3Dutf-8: QP left in a header
        name = name[2:]
    if name in UNKNOWN or len(name) > 40:
        return None
    if name in ALIASES:
        return ALIASES[name]
    windows = _WINDOWS.fullmatch(name)
    if windows:
        return f"cp{windows.group(1)}"
    try:
        codec = codecs.lookup(name).name
    except (LookupError, ValueError):
        return None
    # Python knows labels no mail client reads as text (rot13, hex, base64, zlib)
    return codec if _is_text_codec(codec) else None


def _is_text_codec(codec: str) -> bool:
    try:
        return codecs.lookup(codec)._is_text_encoding  # type: ignore[attr-defined]
    except (LookupError, AttributeError):
        return False


def _strict(data: bytes, codec: str) -> str | None:
    try:
        return data.decode(codec)
    except (UnicodeDecodeError, LookupError):
        return None
    except Exception:  # a codec's own bug (utf-7 on odd input): not this codec
        return None


_HIGH = re.compile(rb"[\x80-\xff]")
_HIGH_BYTES = bytes(range(0x80, 0x100))


def _sample(data: bytes) -> bytes:
    """What the detector reads: DETECT_BYTES from just before the first 8-bit byte (a
    long English mail may quote its Cyrillic at the end)."""
    first = _HIGH.search(data)
    start = max(0, first.start() - 256) if first else 0
    return data[start:start + DETECT_BYTES]


@dataclass
class Reader:
    """Decodes the text of one message; holds the detector's budget for that message."""

    calls_left: int = DETECT_CALLS
    notes: list[str] = field(default_factory=list)

    def text(self, data: bytes, declared: object = None, hint: str | None = None) -> str:
        """`data` as text: the declared charset, UTF-8, `hint` (the charset another part
        declared), the detector, Windows-1252. Never raises, never inserts U+FFFD."""
        if not data:
            return ""
        codec = codec_for(declared)
        for candidate in (codec, "utf-8", hint):
            if candidate and (text := _strict(data, candidate)) is not None:
                return text
        if codec and codec.startswith("iso2022_jp"):
            for variant in ("iso2022_jp_ext", "iso2022_jp_2004", "iso2022_jp_3"):
                if (text := _strict(data, variant)) is not None:
                    return text
        sample = _sample(data)
        if len(sample) - len(sample.translate(None, _HIGH_BYTES)) >= DETECT_FROM:
            guess = self.detect(sample)
            if guess and (text := _strict(data, guess)) is not None:
                if declared:
                    self.notes.append(f"text declared {str(declared)[:40]} read as {guess}")
                return text
        return data.decode("cp1252", "mailgate-c1")

    def detect(self, sample: bytes) -> str | None:
        """charset-normalizer's reading of `sample`, within the budget."""
        if self.calls_left <= 0:
            return None
        self.calls_left -= 1
        return detect(sample[:DETECT_BYTES])


def detect(sample: bytes) -> str | None:
    """The likeliest charset of `sample` among `DETECTABLE`: charset-normalizer's matches
    that are no more chaotic than the best one, the most coherent first (the language
    the text reads as), then in `DETECTABLE` order."""
    try:
        matches = list(from_bytes(sample, cp_isolation=list(DETECTABLE)))
    except Exception:  # the detector's own failure: no guess
        return None
    if not matches:
        return None
    least_chaos = min(m.chaos for m in matches)
    ranked = []
    for match in matches:
        if match.chaos > least_chaos + 0.1:
            continue
        for codec in [match.encoding, *match.could_be_from_charset]:
            if codec in DETECTABLE:
                ranked.append((-round(match.coherence - match.chaos, 2),
                               DETECTABLE.index(codec), codec))
    return min(ranked)[2] if ranked else None


def declared_charset(msg: email.message.Message) -> str | None:
    """The first charset a text part declares that we can read and that says more than
    ASCII: the hint for raw 8-bit headers and parts without a charset."""
    for part in msg.walk():
        if part.get_content_maintype() == "text":
            codec = codec_for(part.get_content_charset(None))
            if codec and codec not in ("ascii", "utf-8"):
                return codec
    return None
