"""Bytes to clean text: byte-order marks, encoding detection, NFC, invisible characters.

A byte-order mark (UTF-8, UTF-16, UTF-32) decides the encoding and is removed; otherwise
strict UTF-8 is tried, then charset-normalizer (the detector requests uses). Short texts in a
legacy Windows code page often tie between several code pages with no measurable "chaos";
the tie is broken towards the code pages most files are written in (cp1252 first), never by
the detector's arbitrary order. A file that nothing decodes with confidence raises
:class:`Undecodable`, so it is reported instead of being indexed as mojibake.

:func:`clean_text` normalises to NFC and removes format characters that split or hide words
(zero-width spaces, soft hyphens, BOMs inside the text, bidi controls), keeping the zero-width
joiner and non-joiner, which carry meaning in emoji and in Persian or Indic scripts.
"""

from __future__ import annotations

import codecs
import re
import unicodedata

#: Longest first: the UTF-32 LE mark starts with the UTF-16 LE one.
BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
#: Tie-break between equally plausible legacy encodings: the most used first.
PREFERRED = ("cp1252", "latin_1", "cp1251", "cp1250", "cp932", "gb18030", "big5", "euc_kr")
#: Above this share of "chaos" (charset-normalizer's mess ratio) a decoding is not trusted.
MAX_CHAOS = 0.2
KEEP_FORMAT = {"\u200c", "\u200d"}  # ZWNJ, ZWJ
#: Unicode's format characters (category Cf, Unicode 14) less ZWNJ and ZWJ (200C, 200D).
_FORMAT = re.compile(
    "[\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b\u200e\u200f"
    "\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\U000110bd\U000110cd"
    "\U00013430-\U00013438\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001"
    "\U000e0020-\U000e007f\x00]"
)
_NEWLINES = re.compile(r"\r\n?|\u2028|\u2029|\x0b|\x0c")
#: Bytes that never occur in text (NUL and most C0 controls other than tab/newlines/ESC).
_BINARY_BYTES = set(range(0, 8)) | {11, 14, 15} | set(range(16, 27)) | set(range(28, 32))


class Undecodable(ValueError):
    """The bytes are not text in any encoding that could be detected with confidence."""


def bom_encoding(raw: bytes) -> tuple[str, int] | None:
    """``(encoding, bom_length)`` when ``raw`` starts with a byte-order mark."""
    for bom, enc in BOMS:
        if raw.startswith(bom):
            return enc, len(bom)
    return None


def looks_binary(raw: bytes) -> bool:
    """True for bytes that are not text: NUL or control bytes and no UTF-16/32 BOM."""
    if bom_encoding(raw):
        return False
    head = raw[:8192]
    if not head:
        return False
    if b"\x00" in head:
        return True
    controls = sum(1 for b in head if b in _BINARY_BYTES)
    return controls / len(head) > 0.01


def decode_bytes(raw: bytes) -> tuple[str, str]:
    """``(text, encoding)``; raises :class:`Undecodable`. The text is not yet cleaned."""
    found = bom_encoding(raw)
    if found:
        enc, n = found
        try:
            return raw[n:].decode(enc), enc.replace("-le", "").replace("-be", "")
        except UnicodeDecodeError as exc:
            raise Undecodable(f"invalid {enc} after its byte-order mark") from exc
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    matches = [m for m in from_bytes(raw) if m.chaos <= MAX_CHAOS]
    if not matches:
        raise Undecodable("cannot detect the text encoding")
    best_chaos = min(m.chaos for m in matches)
    tied = [m for m in matches if m.chaos <= best_chaos + 0.01]
    best_coherence = max(m.coherence for m in tied)
    tied = [m for m in tied if m.coherence >= best_coherence - 0.01]

    def rank(m: object) -> int:
        enc = getattr(m, "encoding", "")
        return PREFERRED.index(enc) if enc in PREFERRED else len(PREFERRED)

    best = min(tied, key=rank)
    return str(best), best.encoding


def clean_text(text: str) -> str:
    """NFC, one newline convention, no invisible format characters, no NULs."""
    text = _NEWLINES.sub("\n", text)
    if not text.isascii():
        text = unicodedata.normalize("NFC", text)
        text = _FORMAT.sub("", text)
    return text.replace("\x00", "")


def read_text(raw: bytes) -> tuple[str, str]:
    """``(clean text, encoding)`` of a text file's bytes; raises :class:`Undecodable`."""
    text, enc = decode_bytes(raw)
    return clean_text(text), enc
