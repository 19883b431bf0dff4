"""The command lines of README.md and docs/*.md, with the file and line they come from.

A command is a line of a fenced code block, or an inline code span, that starts with a
program this project documents (`python -m ...`, `make`, `npx cdk`, `aws`, ...). Comments,
`$ ` prompts, `\\` continuations, `VAR=value` prefixes, `$(...)` substitutions and
`|`/`&&`/`;` are handled; `<placeholders>` become a sample value of their kind, so the
line parses as a user would type it with their own values.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))

# The programs whose lines are commands (the first word after VAR=value prefixes).
PROGRAMS = (
    "python",
    "python3",
    ".venv/bin/python",
    ".venv/bin/pytest",
    "make",
    "npx",
    "cdk",
    "aws",
    "curl",
    "git",
)
_SKIPPED_FENCES = ("mermaid", "json", "text", "yaml", "csv", "jsonl")

# What a user puts where the docs write <...>: a value of the right shape.
PLACEHOLDERS = {
    "batch id": "20261125-132557-3a16300e9d82",
    "job": "grocery-train-3f0c9a1b2c3d4e5f",
    "min": "1",
    "name": "/grocery/approved-model/model-name",
    "value": "none",
}
_DEFAULT_PLACEHOLDER = "example"
_PLACEHOLDER = re.compile(r"<([^<>\n]{1,40})>")
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_SUBSTITUTION = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=\$\((.*)\)$", re.S)
_OPERATORS = {"|", "||", "&&", ";"}


@dataclass(frozen=True)
class Command:
    """One command: `argv` as the shell would pass it, and where it is written."""

    path: Path
    line: int
    text: str
    argv: tuple[str, ...]
    inline: bool  # a code span in prose, not a line of a code block

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    def __str__(self) -> str:
        return f"{self.where}: {self.text}"


def _fill_placeholders(text: str) -> str:
    def sample(match: re.Match) -> str:
        key = match.group(1).strip().lower()
        return PLACEHOLDERS.get(key, _DEFAULT_PLACEHOLDER)

    return _PLACEHOLDER.sub(sample, text)


def _split(text: str) -> list[list[str]]:
    """The simple commands of one shell line (split at |, &&, ;), placeholders filled."""
    text = _fill_placeholders(text.strip())
    if text.startswith("$ "):
        text = text[2:]
    substitution = _SUBSTITUTION.match(text)
    if substitution:
        text = substitution.group(1)
    tokens = shlex.split(text, comments=True)
    commands: list[list[str]] = [[]]
    for token in tokens:
        if token in _OPERATORS:
            commands.append([])
        else:
            commands[-1].append(token)
    result = []
    for words in commands:
        start = 0
        while start < len(words) and _ASSIGNMENT.match(words[start]):  # AWS_PROFILE=x ...
            start += 1
        if words[start:] and words[start] in PROGRAMS:
            result.append(words[start:])
    return result


def _block_lines(text: str) -> list[tuple[int, str]]:
    """(line number, logical line) of the fenced blocks, continuations joined."""
    lines = text.splitlines()
    out: list[tuple[int, str]] = []
    fence: str | None = None
    pending: tuple[int, str] | None = None
    for number, raw in enumerate(lines, start=1):
        stripped = raw.strip()
        if stripped.startswith("```"):
            fence = None if fence is not None else stripped[3:].strip().lower()
            continue
        if fence is None or fence in _SKIPPED_FENCES:
            continue
        if pending is not None:
            pending = (pending[0], pending[1] + " " + stripped)
        else:
            pending = (number, stripped)
        if pending[1].endswith("\\"):
            pending = (pending[0], pending[1][:-1].rstrip())
            continue
        out.append(pending)
        pending = None
    return out


def _inline_spans(text: str) -> list[tuple[int, str]]:
    """(line number, content) of the inline code spans outside fenced blocks."""
    masked = re.sub(r"```.*?```", lambda m: re.sub(r"[^\n]", " ", m.group(0)), text, flags=re.S)
    spans = []
    for match in re.finditer(r"(?<!`)`([^`]+)`(?!`)", masked):
        line = masked.count("\n", 0, match.start()) + 1
        spans.append((line, " ".join(match.group(1).split())))
    return spans


def commands_of(path: Path) -> list[Command]:
    text = path.read_text(encoding="utf-8")
    found = []
    spans = [(line, content, False) for line, content in _block_lines(text)]
    spans += [(line, content, True) for line, content in _inline_spans(text)]
    for line, content, inline in spans:
        if inline and content.endswith("..."):  # a mention: `python -m grocery ...`
            continue
        first = content.split(" ", 1)[0] if content else ""
        if first not in PROGRAMS and not _ASSIGNMENT.match(first) and first != "$":
            continue
        try:
            simple = _split(content)
        except ValueError as error:  # unbalanced quotes: not a command a shell would take
            found.append(Command(path, line, content, ("<unparsable>", str(error)), inline))
            continue
        found.extend(Command(path, line, content, tuple(argv), inline) for argv in simple)
    return found


def all_commands() -> list[Command]:
    return [command for path in DOCS for command in commands_of(path)]


def context_values(argv: tuple[str, ...]) -> list[tuple[str, str]]:
    """The `-c key=value` / `--context key=value` pairs of one command."""
    pairs = []
    for index, token in enumerate(argv):
        value = None
        if token in ("-c", "--context") and index + 1 < len(argv):
            value = argv[index + 1]
        elif token.startswith("--context="):
            value = token.split("=", 1)[1]
        if value is not None:
            key, _, raw = value.partition("=")
            pairs.append((key, raw))
    return pairs
