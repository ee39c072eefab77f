"""RPCs the contract declares that this server does not implement yet.

Each answers UNIMPLEMENTED with a message saying what is missing; tests/integration
checks this table against the server, so the list can only shrink.
"""

from __future__ import annotations

import grpc

# "Service.Method" -> what the method will do once implemented.
UNIMPLEMENTED: dict[str, str] = {
}


def _method(full_name: str, what: str):
    async def not_yet(self, request, context):
        await context.abort(
            grpc.StatusCode.UNIMPLEMENTED,
            f"{full_name} is not implemented yet ({what} is planned); see README's API status",
        )

    not_yet.__name__ = full_name.split(".")[1]
    return not_yet


def install(servicer_cls: type, service: str) -> type:
    """Give `servicer_cls` an UNIMPLEMENTED answer for each of `service`'s methods in the table."""
    for full_name, what in UNIMPLEMENTED.items():
        owner, method = full_name.split(".")
        if owner == service:
            setattr(servicer_cls, method, _method(full_name, what))
    return servicer_cls
