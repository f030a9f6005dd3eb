"""lvs.cf parser: token lines -> a tree of assignments and blocks (no meaning attached yet).

A block header is exactly ``KIND NAME {`` on one line (``virtual``, ``failover``, ``server``);
a block ends at a line whose only token is ``}``. Every other line is an assignment
``KEY = VALUE...``. As an extension the ``=`` may touch the key or the value (``port=80``).
Errors are collected; the parser recovers at the next line. A header that is wrong but clearly
opens a block (it has a ``{``) still opens one, detached from the tree, so that its body and its
``}`` cause no follow-on errors. ``KIND NAME`` without the ``{`` is reported and then read as if
the ``{`` were there (a ``{`` alone on the next line is taken as the missing one).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from piranha.config.lexer import Line, Token
from piranha.errors import ConfigError

Report = Callable[[Token, str], None]
BLOCK_KINDS = ("virtual", "failover", "server")
#: which block kinds may appear inside which (None = top level); a server block in a failover
#: block is parsed so that the builder can say why it is wrong
NESTING: dict[str | None, tuple[str, ...]] = {
    None: ("virtual", "failover"),
    "virtual": ("server",),
    "failover": ("server",),
    "server": (),
}


@dataclass(frozen=True)
class Assignment:
    """``key = values...``; ``key`` carries the location.

    ``broken`` marks a line with an unterminated quote: the key was given but its value is
    unusable (the lexer already reported why).
    """

    key: Token
    values: tuple[Token, ...]
    broken: bool = False


@dataclass
class Block:
    """``kind name { items }``; ``name`` is None for the file itself."""

    kind: Token | None
    name: Token | None
    items: list[Assignment | Block] = field(default_factory=list)

    @property
    def kind_text(self) -> str | None:
        return self.kind.text if self.kind else None

    def describe(self) -> str:
        """``virtual 'www'``, or ``virtual block`` when the header had no usable name."""
        kind = self.kind_text or "file"
        return f"{kind} '{self.name.text}'" if self.name is not None else f"{kind} block"


def parse(lines: list[Line], filename: str) -> tuple[Block, list[ConfigError]]:
    """The file as a root block of assignments and nested blocks, plus syntax errors."""
    parser = _Parser(filename)
    for line in lines:
        parser.feed(line)
    return parser.finish()


def end_of(token: Token) -> Token:
    """An empty token just after ``token`` (where "found end of line" points)."""
    width = len(token.text) + (2 if token.quote else 0)
    return Token("", token.line, token.column + width)


class _Parser:
    """The block stack and the errors of one file."""

    def __init__(self, filename: str):
        self.filename = filename
        self.root = Block(None, None)
        self.stack = [self.root]
        self.errors: list[ConfigError] = []
        #: the previous line was ``KIND NAME`` without '{': a lone '{' now is the missing one
        self.brace_missing = False

    def error(self, tok: Token, message: str) -> None:
        self.errors.append(ConfigError(self.filename, tok.line, tok.column, message))

    def feed(self, line: Line) -> None:
        brace_missing, self.brace_missing = self.brace_missing, False
        first = line.tokens[0]
        plain = first.quote == ""
        if plain and first.text == "{" and len(line.tokens) == 1 and brace_missing:
            return  # the '{' missing from the header line (reported there)
        if plain and first.text == "{":
            self.error(first, "unexpected '{': it belongs at the end of a block header "
                       "line ('virtual NAME {')")
        elif plain and first.text.startswith("}"):
            self.close(line)
        elif plain and first.text in BLOCK_KINDS:
            self.header(line)
        else:
            assignment = _assignment(line, self.error)
            if assignment is not None:
                self.stack[-1].items.append(assignment)

    def close(self, line: Line) -> None:
        first = line.tokens[0]
        if first.text != "}":
            self.error(first, f"expected '}}' followed by a blank or the end of the line, "
                       f"found '{first.text}'")
        elif len(line.tokens) > 1 and not line.broken:
            extra = line.tokens[1]
            self.error(extra, f"unexpected '{extra.text}' after '}}' (expected end of line "
                       "or a # comment)")
        for _ in range(len(first.text) - len(first.text.lstrip("}"))):
            if len(self.stack) == 1:
                if first.text == "}":
                    self.error(first, "unexpected '}': no block is open")
                return
            self.stack.pop()

    def header(self, line: Line) -> None:
        tokens = line.tokens
        header = None if line.broken else _block_header(line, self.error)
        if header is not None:
            kind, name, braced = header
            self.open(kind, name)  # without its '{' too: as if it were there
            self.brace_missing = not braced
        elif any(t.text.rstrip().endswith("{") for t in tokens[1:]):
            self.stack.append(Block(tokens[0], None))  # detached: swallow its body

    def open(self, kind: Token, name: Token) -> None:
        while kind.text not in NESTING[self.stack[-1].kind_text] and len(self.stack) > 1:
            open_block = self.stack.pop()
            assert open_block.kind is not None
            self.error(kind, f"{kind.text} block inside {open_block.describe()} "
                       f"(opened at line {open_block.kind.line}): expected '}}' before it")
        block = Block(kind, name)
        if kind.text in NESTING[self.stack[-1].kind_text]:
            self.stack[-1].items.append(block)
        else:  # left detached: its body is parsed, then dropped
            self.error(kind, f"{kind.text} block is not allowed at the top level "
                       "(expected inside a virtual block)")
        self.stack.append(block)

    def finish(self) -> tuple[Block, list[ConfigError]]:
        for open_block in self.stack[1:]:
            assert open_block.kind is not None
            self.error(open_block.kind, f"{open_block.describe()} is not closed: "
                       "expected '}' before the end of the file")
        return self.root, self.errors


def _block_header(line: Line, report: Report) -> tuple[Token, Token, bool] | None:
    """``(kind, name, has_brace)``, or None when the header is unusable (reported).

    ``KIND NAME`` without its ``{`` is reported but usable.
    """
    tokens = line.tokens
    kind = tokens[0]
    if len(tokens) > 1 and tokens[1].text in ("{", "=") and not tokens[1].quote:
        report(tokens[1], f"expected a {kind.text} name ('{kind.text}' starts a block: "
               f"'{kind.text} NAME {{'), found '{tokens[1].text}'")
    elif len(tokens) == 3 and tokens[2].text == "{" and tokens[2].quote == "":
        return _block_name(kind, tokens[1], True, report)
    elif len(tokens) == 1:
        report(end_of(kind), f"expected '{kind.text} NAME {{', found end of line after "
               f"'{kind.text}'")
    elif len(tokens) == 2 and tokens[1].text.endswith("{") and not tokens[1].quote:
        # Piranha needs the brace as a token of its own
        report(tokens[1], f"expected a blank between the {kind.text} name and '{{', "
               f"found '{tokens[1].text}'")
    elif len(tokens) == 2:
        report(end_of(tokens[1]), f"expected '{{' after {kind.text} name "
               f"'{tokens[1].text}' on the same line, found end of line")
        return _block_name(kind, tokens[1], False, report)
    elif tokens[2].text != "{" or tokens[2].quote:
        report(tokens[2], f"expected '{{' after {kind.text} name '{tokens[1].text}', "
               f"found '{tokens[2].text}' (quote a name that contains blanks)")
    else:
        report(tokens[3], f"unexpected '{tokens[3].text}' after '{{' "
               "(expected end of line)")
        return _block_name(kind, tokens[1], True, report)
    return None


def _block_name(kind: Token, name: Token, braced: bool,
                report: Report) -> tuple[Token, Token, bool] | None:
    if name.text == "":
        report(name, f"{kind.text} name must not be empty")
        return None
    for offset, char in enumerate(name.text):
        if ord(char) < 32 or char == "\x7f":
            column = name.column + offset + (1 if name.quote else 0)
            report(Token(name.text, name.line, column), f"expected a printable {kind.text} "
                   f"name, found the control character {char!r}")
            return None
    return kind, name, braced


def _assignment(line: Line, report: Report) -> Assignment | None:
    tokens = _split_equals(list(line.tokens), report)
    if tokens is None:
        return None
    key = tokens[0]
    if key.quote:
        if not line.broken:
            report(key, f"expected a keyword, found quoted text '{key.text}'")
        return None
    if key.text == "=":
        report(key, "expected a keyword before '=', found '='")
        return None
    if len(tokens) == 1:
        report(end_of(key), f"expected '=' after '{key.text}', found end of line")
        return None
    if tokens[1].text != "=" or tokens[1].quote:
        report(tokens[1], f"expected '=' after '{key.text}', "
               f"found '{tokens[1].text}'")
        return None
    if len(tokens) == 2:
        report(end_of(tokens[1]), f"expected a value after '{key.text} =', "
               "found end of line")
        return None
    if tokens[2].text == "=" and not tokens[2].quote:
        report(tokens[2], f"expected a value after '{key.text} =', found another '='")
        return None
    return Assignment(key, tuple(tokens[2:]), line.broken)


def _split_equals(tokens: list[Token], report: Report) -> list[Token] | None:
    """Extension: ``port=80`` / ``port=`` glued to the key, ``=80`` glued to the value."""
    key = tokens[0]
    if not key.quote and "=" in key.text and key.text != "=":
        name, _, rest = key.text.partition("=")
        if name == "":
            report(key, f"expected a keyword before '=', found '{key.text}'")
            return None
        key = Token(name, key.line, key.column)
        eq = Token("=", key.line, key.column + len(name))
        glued = [Token(rest, key.line, eq.column + 1)] if rest else []
        return [key, eq, *glued, *tokens[1:]]
    if len(tokens) > 1 and not tokens[1].quote and tokens[1].text.startswith("=") \
            and len(tokens[1].text) > 1:
        second = tokens[1]
        return [key, Token("=", second.line, second.column),
                Token(second.text[1:], second.line, second.column + 1), *tokens[2:]]
    return tokens
