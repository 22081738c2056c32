"""HTML built from code, escaped by construction.

Every string becomes text unless it is already `Html` (markup this module made), so an image
reference, an identity or an error message can only ever be text. Attribute values are always
double-quoted and escaped; attribute and tag names come from code, never from data. There are no
scripts and no inline event handlers to escape into.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlencode

__all__ = ["Child", "Html", "join", "tag", "text", "url"]

_NAME: Final = re.compile(r"[a-z][a-z0-9-]*")
_VOID: Final = frozenset({"br", "hr", "input", "link", "meta"})


@dataclass(frozen=True, slots=True)
class Html:
    markup: str

    def __str__(self) -> str:
        return self.markup


Child = Html | str | int | None | Iterable["Child"]


def text(value: object) -> Html:
    return Html(html.escape(str(value), quote=True))


def join(children: Iterable[Child]) -> Html:
    return Html("".join(_render(child) for child in children))


def tag(name: str, /, *children: Child, **attrs: str | int | bool | None) -> Html:
    """`<name attrs>children</name>`. A trailing `_` is dropped from attribute names (`class_`,
    `for_`), `_` elsewhere becomes `-` (`aria_label`); True is a bare attribute, False and None
    leave it out."""
    if not _NAME.fullmatch(name):
        raise ValueError(f"not a tag name: {name!r}")
    rendered = []
    for key, value in attrs.items():
        attribute = key.rstrip("_").replace("_", "-")
        if not _NAME.fullmatch(attribute):
            raise ValueError(f"not an attribute name: {attribute!r}")
        if value is None or value is False:
            continue
        if value is True:
            rendered.append(f" {attribute}")
        else:
            rendered.append(f' {attribute}="{html.escape(str(value), quote=True)}"')
    opening = f"<{name}{''.join(rendered)}>"
    if name in _VOID:
        if children:
            raise ValueError(f"<{name}> has no content")
        return Html(opening)
    return Html(f"{opening}{join(children)}</{name}>")


def url(path: str, query: Mapping[str, str] | None = None) -> str:
    """A same-site URL: a fixed path from code, with every query value percent-encoded."""
    if not path.startswith("/") or path.startswith("//"):
        raise ValueError(f"not a local path: {path!r}")
    pairs = {k: v for k, v in (query or {}).items() if v}
    return f"{path}?{urlencode(pairs)}" if pairs else path


def _render(child: Child) -> str:
    if child is None:
        return ""
    if isinstance(child, Html):
        return child.markup
    if isinstance(child, str | int):
        return html.escape(str(child), quote=True)
    return "".join(_render(item) for item in child)
