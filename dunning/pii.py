"""Masking personal data in log lines.

`mask_event` is a structlog processor run on every line, structlog's own and the
standard library's (Temporal's workflow and activity loggers, asyncpg) alike:

- values under keys that hold personal data (`name`, `borrower_name`, `address`,
  `email`, `phone`, `phones`, `recipient`, `body`, ...) are masked wherever they are
  nested;
- every other string (the message, exception text, extras) is scanned for e-mail
  addresses, replaced whole, and for phone numbers, international
  (`+86 138 0013 8000`, `+8613800138000`) or national (`138-0013-8000`,
  `(020) 7946 0958`), which keep their last two digits;
- pydantic's `input_value=...` in validation errors is cut out: it quotes the input.

Names and addresses in free text cannot be recognised; code must not put them there,
and the keys above catch them where they are passed as fields.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

MASK = "***"

# Keys whose values are personal data, masked whatever they hold.
NAME_KEYS = frozenset({"name", "borrower_name", "full_name", "first_name", "last_name"})
ADDRESS_KEYS = frozenset(
    {"address", "street", "postal_address", "email", "email_address", "mail_to", "rcpt"}
)
PHONE_KEYS = frozenset({"phone", "phones", "phone_number", "msisdn", "recipient", "to"})
TEXT_KEYS = frozenset({"body", "text", "message_body"})

# 7 to 15 digits (E.164's most), a leading +, single separators between digits
# (space, dash, dot, parentheses). Not inside a word, a uuid or a dotted/colon run, so
# ids, timestamps and addresses like 127.0.0.1:7233 are left alone.
_PHONE = re.compile(
    r"(?<![\w\-.:/+])"
    r"(?:\+|00)?\(?\d(?:[ \-.()]{0,2}\d){6,14}\)?"
    r"(?![\w+]|[\-:/]\w|\.\d)"
)
# local@domain.tld, as found in free text (an SMTP error, a quoted input).
_EMAIL = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")
_DECIMAL = re.compile(r"^\d+\.\d{1,3}$")
# pydantic: "input_value='Wang Xiaoming', input_type=str" (value may hold commas, quotes)
_INPUT_VALUE = re.compile(r"input_value=.*?(?=, input_type=|\]$|\n|$)", re.S)


def mask_phone(text: str) -> str:
    digits = [c for c in text if c.isdigit()]
    return MASK + "".join(digits[-2:])


def mask_name(text: str) -> str:
    return f"{text.strip()[:1]}{MASK}" if text.strip() else MASK


def _phone_match(match: re.Match[str]) -> str:
    found = match.group(0)
    if _ISO_DATE.match(found) or _DECIMAL.match(found):
        return found
    return mask_phone(found)


def scrub(text: str) -> str:
    """A string with e-mail addresses and phone numbers masked and pydantic's quoted
    input removed."""
    if "input_value=" in text:
        text = _INPUT_VALUE.sub(f"input_value={MASK}", text)
    if "@" in text:
        text = _EMAIL.sub(MASK, text)
    return _PHONE.sub(_phone_match, text)


def _mask_as(kind: str, value: Any) -> Any:
    if isinstance(value, list | tuple | set | frozenset):
        return [_mask_as(kind, v) for v in value]
    if isinstance(value, Mapping):
        return {k: _mask_as(kind, v) for k, v in value.items()}
    if value is None or isinstance(value, bool | int | float):
        return value
    text = str(value)
    if kind == "name":
        return mask_name(text)
    if kind == "phone":
        return mask_phone(text) if any(c.isdigit() for c in text) else MASK
    return MASK


def _kind(key: object) -> str | None:
    if not isinstance(key, str):
        return None
    lowered = key.lower()
    if lowered in NAME_KEYS:
        return "name"
    if lowered in PHONE_KEYS:
        return "phone"
    if lowered in ADDRESS_KEYS or lowered in TEXT_KEYS:
        return "redact"
    return None


def mask_value(value: Any, depth: int = 0) -> Any:
    """A copy of `value` with personal data masked (see the module's docstring)."""
    if depth > 8:
        return value
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, Mapping):
        masked: dict[Any, Any] = {}
        for key, item in value.items():
            kind = _kind(key)
            masked[key] = _mask_as(kind, item) if kind is not None else mask_value(item, depth + 1)
        return masked
    if isinstance(value, list | tuple):
        return [mask_value(v, depth + 1) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    # Anything else is rendered with str() or repr() by the renderer: scrub that text.
    return scrub(str(value))


# Keys structlog and its stdlib bridge own; left as they are.
_INTERNAL = frozenset({"_record", "_from_structlog", "timestamp", "level", "logger"})


def mask_event(_logger: object, _name: str, event: Any) -> Any:
    """structlog processor: mask personal data in every value of the event dict."""
    for key in list(event):
        if key in _INTERNAL:
            continue
        value = event[key]
        kind = _kind(key)
        event[key] = _mask_as(kind, value) if kind is not None else mask_value(value)
    return event
