"""Which projects the code running now may touch.

Every resource name carries its project (`projects/{project}/...`, engine/names.py), and every
reference a caller sends is turned into a full name by engine/names.py. That is where the scope
is enforced: a name in a project outside the scope is reported as not found, exactly like a
name that does not exist, so a caller learns nothing about other projects.

The scope lives in a contextvar. The server sets it per call from the caller's API key;
asyncio.to_thread copies it into the worker thread that runs the engine call. Threads the
engine starts itself (job supervisors, schedulers) start with the unrestricted default scope;
those that act for one resource (a pipeline execution, a tuning controller) enter
`acting_for(project)` so references in what they run are checked against its project too.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

DEFAULT_PROJECT = "default"


@dataclass(frozen=True)
class Scope:
    # None: every project (no authentication configured, or the service itself).
    projects: frozenset[str] | None = None
    # The project a bare id or an empty parent means; "" when the caller must name one.
    default_project: str = DEFAULT_PROJECT
    # Projects the caller can see but not act in with this call (its role there is too low),
    # and the role the call needs: those get "permission denied" rather than "not found".
    visible: frozenset[str] = frozenset()
    needs: str = ""

    def allows(self, project: str) -> bool:
        return self.projects is None or project in self.projects


_scope: contextvars.ContextVar[Scope] = contextvars.ContextVar("forge_scope", default=Scope())


def current() -> Scope:
    return _scope.get()


def enter(scope: Scope) -> contextvars.Token:
    """Set the scope for the rest of the current context (one RPC's task)."""
    return _scope.set(scope)


@contextmanager
def acting_for(project: str) -> Iterator[None]:
    """Run the block as the owner of a resource in `project` would: bare ids mean `project`,
    and nothing outside it can be named."""
    token = _scope.set(Scope(frozenset({project}), project))
    try:
        yield
    finally:
        _scope.reset(token)
