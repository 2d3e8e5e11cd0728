"""The console's message catalogue (dunning/console/messages.py): every key has its
English and its Chinese text, neither blank, with the same placeholders (a value one
language names and the other drops is a fact lost, or a KeyError, in that language)."""

from __future__ import annotations

import re

from dunning.console import messages
from dunning.console.sessions import LANGUAGES

PLACEHOLDER = re.compile(r"{(\w+)}")


def test_every_message_has_its_english_and_chinese_text_with_the_same_placeholders() -> None:
    catalogue = messages.entries()
    assert len(catalogue) > 100 and set(catalogue) == messages.keys()
    assert set(LANGUAGES) == {"en", "zh-CN"}
    for key, texts in catalogue.items():
        assert set(texts) == set(LANGUAGES), key  # a text in each language
        english, chinese = texts["en"], texts["zh-CN"]
        assert english.strip() and chinese.strip(), key
        assert set(PLACEHOLDER.findall(english)) == set(PLACEHOLDER.findall(chinese)), key
        values = dict.fromkeys(PLACEHOLDER.findall(english), "x")
        for language in LANGUAGES:  # and each formats with the values the pages pass
            messages.text(language, key, **values)
