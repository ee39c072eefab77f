"""Opaque page tokens and the small filter language of List methods."""

from __future__ import annotations

import base64
import json

from engine.errors import InvalidArgument

MAX_PAGE_SIZE = 1000


def page_bounds(page_size: int, page_token: str, default: int = 50, maximum: int = MAX_PAGE_SIZE) -> tuple[int, int]:
    """(offset, limit) for a list call."""
    if page_size < 0:
        raise InvalidArgument.field("page_size", f"must be >= 0, got {page_size}")
    limit = min(page_size or default, maximum)
    offset = 0
    if page_token:
        try:
            offset = int(json.loads(base64.urlsafe_b64decode(page_token.encode()))["o"])
        except (ValueError, KeyError, TypeError):
            raise InvalidArgument.field("page_token", "is not a token this server issued: pass next_page_token unchanged")
    return offset, limit


def next_token(offset: int, limit: int, returned: int, has_more: bool) -> str:
    if not has_more:
        return ""
    return base64.urlsafe_b64encode(json.dumps({"o": offset + returned}).encode()).decode()


def parse_filter(expression: str, allowed: set[str]) -> dict[str, str]:
    """`key=value AND key=value` -> {key: value}. Keys starting with `label.` are always allowed."""
    terms: dict[str, str] = {}
    if not expression.strip():
        return terms
    for term in expression.replace(" and ", " AND ").split(" AND "):
        key, sep, value = term.partition("=")
        key, value = key.strip(), value.strip().strip('"').strip("'")
        if not sep or not key or not value:
            raise InvalidArgument.field("filter", f"cannot read {term.strip()!r}: write key=value terms joined by AND")
        if key not in allowed and not key.startswith("label."):
            raise InvalidArgument.field(
                "filter", f"unknown filter key {key!r}: use one of {', '.join(sorted(allowed))} or label.<name>"
            )
        terms[key] = value
    return terms
