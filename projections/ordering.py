"""Chinese lists in the order readers expect: by pinyin (长沙 before 湘潭 before 株洲), as official
forms and indexes sort place and institution names, not by code point."""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=4096)
def pinyin_key(text: str) -> tuple[tuple[str, ...], tuple[str, ...], str]:
    """Sort key: the syllables without tones, then with tone numbers, then the text itself, so
    that homophones keep a stable order and equal keys mean equal texts."""
    # Imported on first use: its phrase dictionary (which reads 长沙 as chang, 重庆 as chong) takes
    # a moment to load, and most commands never sort Chinese names.
    from pypinyin import Style, lazy_pinyin

    plain = tuple(s.lower() for s in lazy_pinyin(text))
    toned = tuple(s.lower() for s in lazy_pinyin(text, style=Style.TONE3, neutral_tone_with_five=True))
    return plain, toned, text
