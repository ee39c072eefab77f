"""Resource names: `projects/{project}/{collection}/{id}`.

Callers may pass a full name or a bare id; a bare id means the caller's project.
"""

from __future__ import annotations

import re
import uuid

from engine.errors import InvalidArgument

DEFAULT_PROJECT = "default"
_ID = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
_PROJECT_PARENT = re.compile(r"^projects/([a-z][a-z0-9-]{0,62})$")


def validate_id(value: str, field: str) -> str:
    if not _ID.match(value):
        raise InvalidArgument.field(
            field,
            f"{value!r} is not a valid id: use 1-63 characters of lowercase letters, digits "
            "and '-', starting with a letter",
        )
    return value


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def project_of_parent(parent: str, field: str = "parent") -> str:
    if not parent:
        return DEFAULT_PROJECT
    match = _PROJECT_PARENT.match(parent)
    if not match:
        raise InvalidArgument.field(field, f"{parent!r} is not a project: use 'projects/{{project}}'")
    return match.group(1)


def make(project: str, collection: str, resource_id: str) -> str:
    return f"projects/{project}/{collection}/{resource_id}"


def resolve(value: str, collection: str, field: str = "name", project: str = DEFAULT_PROJECT) -> str:
    """Full resource name for `value`, which is a full name of `collection` or a bare id."""
    if not value:
        raise InvalidArgument.field(field, f"is required: give a {collection} resource name or id")
    if "/" not in value:
        return make(project, collection, validate_id(value, field))
    parts = value.split("/")
    if len(parts) != 4 or parts[0] != "projects" or parts[2] != collection:
        raise InvalidArgument.field(
            field, f"{value!r} is not a {collection} name: use 'projects/{{project}}/{collection}/{{id}}' or a bare id"
        )
    validate_id(parts[1], field)
    validate_id(parts[3], field)
    return value


def project_of(name: str) -> str:
    return name.split("/")[1]


def short_id(name: str) -> str:
    return name.rsplit("/", 1)[-1]
