"""Text for a terminal: names from the disk never reach it as they are.

File and folder names, disk labels and the reasons that quote them can hold anything a
terminal acts on (ESC sequences that clear the screen, set the title or write the clipboard;
``\\r`` and newlines that fake or hide lines; bidi overrides).  Every printer of the command
line passes them through ``shown`` first, as ``ls -b`` does.
"""

from __future__ import annotations

import unicodedata

_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}


def shown(text: str | None) -> str:
    """``text`` safe to print: control, format and unassigned characters escaped; an
    undecodable byte of a file name (a lone surrogate) as ``\\xNN``."""
    if text is None:
        return "-"
    out = []
    for c in text:
        if c in _ESCAPES:
            out.append(_ESCAPES[c])
        elif 0xDC80 <= ord(c) <= 0xDCFF:
            out.append(f"\\x{ord(c) - 0xDC00:02x}")
        elif unicodedata.category(c)[0] == "C":
            out.append(f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}")
        else:
            out.append(c)
    return "".join(out)


def plural(n: int, word: str) -> str:
    """``1 video``, ``2 videos``, ``12,000 videos``: the count the terminal says of a thing."""
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"
