"""Translations: English is strings.json, Chinese has every key, exceptions have messages."""

from __future__ import annotations

import json
from pathlib import Path

COMPONENT = Path(__file__).parents[2] / "custom_components" / "prepaid_meter"


def _keys(node: object, prefix: str = "") -> set[str]:
    if not isinstance(node, dict):
        return {prefix}
    return {k for key, value in node.items() for k in _keys(value, f"{prefix}/{key}")}


def test_english_is_strings_json() -> None:
    strings = (COMPONENT / "strings.json").read_text(encoding="utf-8")
    assert (COMPONENT / "translations" / "en.json").read_text(encoding="utf-8") == strings


def test_chinese_has_every_key_and_exceptions_have_messages() -> None:
    en = json.loads((COMPONENT / "strings.json").read_text(encoding="utf-8"))
    zh = json.loads((COMPONENT / "translations" / "zh-Hans.json").read_text(encoding="utf-8"))
    assert _keys(zh) == _keys(en)
    for lang in (en, zh):
        for key, value in lang["exceptions"].items():
            assert isinstance(value, dict), key
            assert value["message"], key
