"""Resource names: `projects/{project}/{collection}/{id}`.

Callers may pass a full name or a bare id; a bare id means the caller's project.
Every name a caller sends passes through here, so this is also where the caller's scope
(engine/tenancy.py) is enforced: a name in a project outside it is "not found".
"""

from __future__ import annotations

import re
import uuid

from engine import tenancy
from engine.errors import InvalidArgument, NotFound, PermissionDenied
from engine.tenancy import DEFAULT_PROJECT
ID_PATTERN = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
_PROJECT_PARENT = re.compile(r"^projects/([a-z][a-z0-9-]{0,62})$")


_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def snake_case(key: object) -> str:
    """A field name as the engine reads it: "earlyStopping" (the proto's JSON mapping) and
    "early_stopping" are both early_stopping."""
    text = str(key)
    return text if text.islower() else _CAMEL.sub("_", text).lower()


def validate_id(value: str, field: str) -> str:
    if not ID_PATTERN.match(value):
        raise InvalidArgument.field(
            field,
            f"{value!r} is not a valid id: use 1-63 characters of lowercase letters, digits "
            "and '-', starting with a letter",
        )
    return value


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def check_access(project: str, name: str) -> None:
    """NotFound for `name` when its project is outside the caller's scope: the same answer as
    for a name that does not exist, so nothing about other projects leaks."""
    scope = tenancy.current()
    if scope.allows(project):
        return
    if project in scope.visible:
        raise PermissionDenied(f"{name}: the caller's role in project {project} does not allow this call "
                               f"(it needs {scope.needs})")
    raise NotFound(f"{name} not found")


def caller_project(field: str) -> str:
    """The project a bare id or an empty parent means for this caller."""
    scope = tenancy.current()
    if not scope.default_project:  # a key of several projects that named none
        held = ", ".join(sorted(scope.visible))
        raise InvalidArgument.field(field, f"names no project, and the API key holds roles in several ({held}): "
                                           "choose one with the x-forge-project metadata (the SDKs' project "
                                           "option) or send full 'projects/{project}/...' names")
    return scope.default_project


def project_of_parent(parent: str, field: str = "parent") -> str:
    if not parent:
        # The caller's project, checked like a named one: a viewer may not create in it.
        project = caller_project(field)
        check_access(project, f"projects/{project}")
        return project
    match = _PROJECT_PARENT.match(parent)
    if not match:
        raise InvalidArgument.field(field, f"{parent!r} is not a project: use 'projects/{{project}}'")
    check_access(match.group(1), parent)
    return match.group(1)


def make(project: str, collection: str, resource_id: str) -> str:
    return f"projects/{project}/{collection}/{resource_id}"


def resolve(value: str, collection: str, field: str = "name", project: str | None = None) -> str:
    """Full resource name for `value`, which is a full name of `collection` or a bare id
    (of `project`, by default the caller's)."""
    if not value:
        raise InvalidArgument.field(field, f"is required: give a {collection} resource name or id")
    if "/" not in value:
        project = project or caller_project(field)
        name = make(project, collection, validate_id(value, field))
        check_access(project, name)
        return name
    parts = value.split("/")
    if len(parts) != 4 or parts[0] != "projects" or parts[2] != collection:
        raise InvalidArgument.field(
            field, f"{value!r} is not a {collection} name: use 'projects/{{project}}/{collection}/{{id}}' or a bare id"
        )
    validate_id(parts[1], field)
    validate_id(parts[3], field)
    check_access(parts[1], value)
    return value


def project_of(name: str) -> str:
    return name.split("/")[1]


def short_id(name: str) -> str:
    return name.rsplit("/", 1)[-1]
