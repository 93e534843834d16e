"""Errors of the rules language, each pointing at the source.

In: a file path (as given), a 1-based line and column, a message, an optional hint and the
source line. Out: ``RulesError``, rendered as CONTRACT.md §4 says::

    rules/onboarding.yaml:14:9: error: unknown template 'welcom'
          - send welcom
                 ^
    hint: did you mean 'welcome'?

``TextError`` is the parser's error: an offset inside one piece of text (a YAML scalar);
the compiler maps it to file coordinates and turns it into a ``RulesError``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class RulesError(Exception):
    """A problem in a rules (or template) file at ``file:line:col`` (1-based)."""

    def __init__(
        self,
        file: str,
        line: int,
        col: int,
        message: str,
        hint: str | None = None,
        source_line: str | None = None,
    ) -> None:
        super().__init__(message)
        self.file = file
        self.line = line
        self.col = col
        self.message = message
        self.hint = hint
        self.source_line = source_line

    def sort_key(self) -> tuple[str, int, int, str]:
        return (self.file, self.line, self.col, self.message)

    def render(self) -> str:
        out = [f"{self.file}:{self.line}:{self.col}: error: {self.message}"]
        if self.source_line is not None:
            src = self.source_line.rstrip("\r\n")
            out.append(src)
            out.append(caret_line(src, self.col))
        if self.hint:
            out.append(f"hint: {self.hint}")
        return "\n".join(out)

    def __str__(self) -> str:
        return self.render()

    def __repr__(self) -> str:
        return f"RulesError({self.file!r}, {self.line}, {self.col}, {self.message!r})"


class TextError(Exception):
    """A problem at ``offset`` (0-based) inside one piece of text, such as a step line."""

    def __init__(self, offset: int, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.offset = offset
        self.message = message
        self.hint = hint


def caret_line(source_line: str, col: int) -> str:
    """Spaces (tabs where the source has tabs, so the caret lines up) then ``^`` at ``col``."""
    prefix = source_line[: max(col - 1, 0)]
    pad = "".join(ch if ch == "\t" else " " for ch in prefix)
    pad += " " * max(col - 1 - len(prefix), 0)
    return pad + "^"


def did_you_mean(word: str, candidates: Iterable[str]) -> str | None:
    """``did you mean 'x'?`` for the closest candidate, or None when nothing is close."""
    matches = difflib.get_close_matches(word, sorted(set(candidates)), n=1, cutoff=0.6)
    return f"did you mean '{matches[0]}'?" if matches else None
