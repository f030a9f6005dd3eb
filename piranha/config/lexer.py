"""lvs.cf lexer: physical lines -> tokens with line and column.

Rules (Piranha 0.8.6's ``lvsconfig.c``, with the fixes listed in the README):
- lines end at ``\\n``, ``\\r\\n`` or a lone ``\\r``; numbering counts every physical line;
- blanks (space, tab) separate tokens; a line whose first non-blank is ``#`` is a comment;
- extension: an unquoted token starting with ``#`` starts a trailing comment;
- a token that starts with ``"`` or ``'`` runs to the next same quote that is followed by a blank
  or the end of the line; the quotes are removed (no escapes: backslashes are nanny's business).
  A quote that is never closed is an error; the line is kept, marked ``broken``, with the rest of
  the line as its last token, so that the parser can recover without follow-on errors.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from piranha.errors import ConfigError

BLANKS = " \t"
QUOTES = "\"'"
_LINE_END = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class Token:
    """One word of a line; ``quote`` is the quote character it was written with, if any."""

    text: str
    line: int
    column: int
    quote: str = ""


@dataclass(frozen=True)
class Line:
    """The tokens of one non-blank, non-comment physical line."""

    number: int
    tokens: tuple[Token, ...]
    #: True when the line has an unterminated quote (already reported by the lexer)
    broken: bool = False


def split_lines(text: str) -> list[str]:
    """Physical lines of ``text``; a final terminator does not start an extra line."""
    lines = _LINE_END.split(text)
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def tokenize(text: str, filename: str) -> tuple[list[Line], list[ConfigError]]:
    """Every meaningful line of ``text`` with its tokens, and the lexical errors found."""
    lines: list[Line] = []
    errors: list[ConfigError] = []
    for number, raw in enumerate(split_lines(text), start=1):
        tokens, error = _tokenize_line(raw, number)
        if error is not None:
            errors.append(ConfigError(filename, number, error[0], error[1]))
        if tokens:
            lines.append(Line(number, tuple(tokens), broken=error is not None))
    return lines, errors


def _tokenize_line(raw: str, number: int) -> tuple[list[Token], tuple[int, str] | None]:
    tokens: list[Token] = []
    i, n = 0, len(raw)
    while True:
        while i < n and raw[i] in BLANKS:
            i += 1
        if i >= n or raw[i] == "#":
            return tokens, None
        start = i
        if raw[i] in QUOTES:
            end = _closing_quote(raw, i)
            if end < 0:
                tokens.append(Token(raw[i + 1 :], number, start + 1, raw[i]))
                return tokens, (start + 1, _unterminated(raw, i))
            tokens.append(Token(raw[i + 1 : end], number, start + 1, raw[i]))
            i = end + 1
        else:
            while i < n and raw[i] not in BLANKS:
                i += 1
            tokens.append(Token(raw[start:i], number, start + 1))


def _unterminated(raw: str, opening: int) -> str:
    quote = raw[opening]
    message = f"missing closing {quote} for the quote opened here"
    if raw.find(quote, opening + 1) >= 0:
        message += f" (a closing {quote} must be followed by a blank or the end of the line)"
    return message


def _closing_quote(raw: str, opening: int) -> int:
    quote = raw[opening]
    j = raw.find(quote, opening + 1)
    while j >= 0:
        if j + 1 == len(raw) or raw[j + 1] in BLANKS:
            return j
        j = raw.find(quote, j + 1)
    return -1
