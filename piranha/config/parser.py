"""lvs.cf parser: token lines -> a tree of assignments and blocks (no meaning attached yet).

A block header is exactly ``KIND NAME {`` on one line (``virtual``, ``failover``, ``server``);
a block ends at a line whose only token is ``}``. Every other line is an assignment
``KEY = VALUE...``. As an extension the ``=`` may touch the key or the value (``port=80``).
Errors are collected; the parser recovers at the next line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from piranha.config.lexer import Line, Token
from piranha.errors import ConfigError

Report = Callable[[Token, str], None]
BLOCK_KINDS = ("virtual", "failover", "server")
#: which block kinds may appear inside which (None = top level)
NESTING: dict[str | None, tuple[str, ...]] = {
    None: ("virtual", "failover"),
    "virtual": ("server",),
    "failover": (),
    "server": (),
}


@dataclass(frozen=True)
class Assignment:
    """``key = values...``; ``key`` carries the location."""

    key: Token
    values: tuple[Token, ...]


@dataclass
class Block:
    """``kind name { items }``; ``name`` is None for the file itself."""

    kind: Token | None
    name: Token | None
    items: list[Assignment | Block] = field(default_factory=list)

    @property
    def kind_text(self) -> str | None:
        return self.kind.text if self.kind else None


def parse(lines: list[Line], filename: str) -> tuple[Block, list[ConfigError]]:
    """The file as a root block of assignments and nested blocks, plus syntax errors."""
    root = Block(None, None)
    stack = [root]
    errors: list[ConfigError] = []

    def error(tok: Token, message: str) -> None:
        errors.append(ConfigError(filename, tok.line, tok.column, message))

    for line in lines:
        first = line.tokens[0]
        if first.quote == "" and first.text == "}":
            if len(stack) == 1:
                error(first, "unexpected '}': no block is open")
            else:
                stack.pop()
            if len(line.tokens) > 1:
                extra = line.tokens[1]
                error(extra, f"unexpected '{extra.text}' after '}}' (expected end of line)")
            continue
        if first.quote == "" and first.text in BLOCK_KINDS:
            header = _block_header(line, error)
            if header is None:
                continue
            kind, name = header
            while kind.text not in NESTING[stack[-1].kind_text]:
                if len(stack) == 1:
                    break
                open_block = stack.pop()
                assert open_block.kind and open_block.name
                error(kind, f"{kind.text} block inside {open_block.kind.text} "
                      f"'{open_block.name.text}' (opened at line {open_block.kind.line}): "
                      "expected '}' before it")
            else:
                block = Block(kind, name)
                stack[-1].items.append(block)
                stack.append(block)
                continue
            error(kind, f"{kind.text} block is not allowed at the top level "
                  "(expected inside a virtual block)")
            stack.append(Block(kind, name))  # parse its body, then drop it
            continue
        assignment = _assignment(line, error)
        if assignment is not None:
            stack[-1].items.append(assignment)
    for open_block in stack[1:]:
        assert open_block.kind and open_block.name
        error(open_block.kind, f"{open_block.kind.text} '{open_block.name.text}' is not closed: "
              "expected '}' before the end of the file")
    return root, errors


def _block_header(line: Line, report: Report) -> tuple[Token, Token] | None:
    tokens = line.tokens
    kind = tokens[0]
    if len(tokens) == 3 and tokens[2].text == "{" and tokens[2].quote == "":
        if tokens[1].text == "":
            report(tokens[1], f"{kind.text} name must not be empty")
            return None
        return kind, tokens[1]
    if len(tokens) == 1:
        report(kind, f"expected '{kind.text} NAME {{', found end of line after "
               f"'{kind.text}'")
    elif len(tokens) == 2:
        found = tokens[1]
        if found.text.endswith("{") and not found.quote and len(found.text) > 1:
            # extension-free hint: Piranha needs the brace as a token of its own
            report(found, f"expected a blank between the {kind.text} name and '{{', "
                   f"found '{found.text}'")
        else:
            report(found, f"expected '{{' after {kind.text} name '{found.text}', "
                   "found end of line")
    elif tokens[2].text != "{" or tokens[2].quote:
        report(tokens[2], f"expected '{{' after {kind.text} name '{tokens[1].text}', "
               f"found '{tokens[2].text}'")
    else:
        report(tokens[3], f"unexpected '{tokens[3].text}' after '{{' "
               "(expected end of line)")
    return None


def _assignment(line: Line, report: Report) -> Assignment | None:
    tokens = list(line.tokens)
    key = tokens[0]
    if not key.quote and "=" in key.text and key.text != "=":
        # extension: "port=80" / "port=" / "=80" glued to the key
        name, _, rest = key.text.partition("=")
        if name == "":
            report(key, f"expected a keyword, found '{key.text}'")
            return None
        key = Token(name, key.line, key.column)
        eq = Token("=", key.line, key.column + len(name))
        glued = [Token(rest, key.line, eq.column + 1)] if rest else []
        tokens = [key, eq, *glued, *tokens[1:]]
    elif len(tokens) > 1 and not tokens[1].quote and tokens[1].text.startswith("=") \
            and len(tokens[1].text) > 1:
        second = tokens[1]
        tokens = [key, Token("=", second.line, second.column),
                  Token(second.text[1:], second.line, second.column + 1), *tokens[2:]]
    if key.quote:
        report(key, f"expected a keyword, found quoted text '{key.text}'")
        return None
    if len(tokens) == 1:
        report(key, f"expected '=' after '{key.text}', found end of line")
        return None
    if tokens[1].text != "=" or tokens[1].quote:
        report(tokens[1], f"expected '=' after '{key.text}', "
               f"found '{tokens[1].text}'")
        return None
    if len(tokens) == 2:
        report(tokens[1], f"expected a value after '{key.text} =', "
               "found end of line")
        return None
    return Assignment(key, tuple(tokens[2:]))
