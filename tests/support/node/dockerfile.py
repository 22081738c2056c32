"""The project's Dockerfile, read as a builder reads it: stages of (instruction, arguments).

The node's image builder (images.py) follows these instructions instead of copying them, and
refuses instructions it does not carry out, so a Dockerfile change that it would silently ignore
fails the build instead.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
DOCKERFILE = ROOT / "Dockerfile"


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: FROM, COPY, RUN, USER, ...
    arguments: str  # the rest of the (joined) line, as written


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def last(self, keyword: str) -> Instruction | None:
        found = [i for i in self.instructions if i.keyword == keyword]
        return found[-1] if found else None


def _logical_lines(text: str) -> list[str]:
    """Lines with comments dropped and backslash continuations joined (comment lines inside a
    continued instruction are dropped too, as Docker does)."""
    lines: list[str] = []
    current = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not current):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        if current.strip():
            lines.append(current.strip())
        current = ""
    if current.strip():
        lines.append(current.strip())
    return lines


def parse(path: Path = DOCKERFILE) -> list[Stage]:
    stages: list[Stage] = []
    for line in _logical_lines(path.read_text()):
        keyword, _, arguments = line.partition(" ")
        keyword, arguments = keyword.upper(), arguments.strip()
        if keyword == "FROM":
            words = arguments.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(words[0], name))
        elif keyword == "ARG" and not stages:
            continue  # a global ARG (the base image's name): the node's rootfs stands in for it
        elif not stages:
            raise ValueError(f"{path}: {keyword} before the first FROM")
        else:
            stages[-1].instructions.append(Instruction(keyword, arguments))
    if not stages:
        raise ValueError(f"{path}: no FROM")
    return stages


def exec_form(instruction: Instruction | None) -> list[str]:
    """ENTRYPOINT/CMD in exec (JSON) form; the shell form would run under /bin/sh -c."""
    if instruction is None:
        return []
    value = json.loads(instruction.arguments)
    if not isinstance(value, list) or not all(isinstance(word, str) for word in value):
        raise ValueError(f"{instruction.keyword} is not in exec form: {instruction.arguments}")
    return value


def copy_arguments(instruction: Instruction) -> tuple[dict[str, str], list[str], str]:
    """COPY's --flags, sources and destination."""
    words = shlex.split(instruction.arguments)
    flags = {}
    while words and words[0].startswith("--"):
        key, _, value = words.pop(0)[2:].partition("=")
        flags[key] = value
    if len(words) < 2:
        raise ValueError(f"COPY needs a source and a destination: {instruction.arguments}")
    return flags, words[:-1], words[-1]
