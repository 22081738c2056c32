"""Reading a POSTed form: urlencoded only, size-bounded, one value per field."""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.requests import Request

__all__ = ["FormTooLarge", "read_form"]


class FormTooLarge(Exception):
    pass


async def read_form(request: Request, max_bytes: int) -> dict[str, str]:
    """The form's fields (the last value of a repeated one); FormTooLarge past `max_bytes`."""
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > max_bytes:
            raise FormTooLarge
        chunks.append(chunk)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        return {}
    body = b"".join(chunks).decode("utf-8", errors="replace")
    return dict(parse_qsl(body, keep_blank_values=True, max_num_fields=64))
