"""Who may call what: the role each RPC needs, and the scope a caller's API key gives a call.

Roles are ordered: viewer (read, watch, export) < trainer (create, train, run) < admin
(delete, promote to a registry stage). A key holds a role per project; a call may touch the
projects where the key's role is at least the call's. Everything else is "not found"
(engine/tenancy.py, enforced where names are resolved: engine/names.py).
"""

from __future__ import annotations

from engine import names, tenancy
from engine.apikeys import ApiKeys, Principal
from forge.training.v1 import data_service_pb2, pipeline_service_pb2, trainer_service_pb2

PROJECT_HEADER = "x-forge-project"

_VIEWER = {
    "DataService": {"GetDataset", "ListDatasets", "GetDataSource", "ListDataSources", "GetRecords", "StreamRecords",
                    "ValidateDataset"},
    "PipelineService": {"GetPipeline", "ListPipelines", "GetExecution", "ListExecutions", "WatchExecution",
                        "GetTemplate", "ListTemplates"},
    "TrainerService": {"GetTrainingJob", "ListTrainingJobs", "GetTrainingMetrics", "WatchTrainingMetrics",
                       "GetTrainingLogs", "StreamTrainingLogs", "ExportTrainingMetrics", "ListAlertDeliveries",
                       "ExportModel", "ListModels", "GetModel",
                       "GetTuningJob", "ListTuningJobs", "WatchTuningJob"},
}
_ADMIN = {
    "DataService": {"DeleteDataset"},
    "PipelineService": {"DeletePipeline"},
    # Moving a version into production changes what every consumer of the registry serves.
    "TrainerService": {"DeleteTrainingJob", "DeleteModel", "UpdateModelStage"},
}
_SERVICES = (data_service_pb2.DESCRIPTOR.services_by_name["DataService"],
             pipeline_service_pb2.DESCRIPTOR.services_by_name["PipelineService"],
             trainer_service_pb2.DESCRIPTOR.services_by_name["TrainerService"])


def _method_roles() -> dict[str, str]:
    """"/forge.training.v1.TrainerService/StartTraining" -> "trainer", for every RPC we serve."""
    roles: dict[str, str] = {}
    for service in _SERVICES:
        for method in service.methods:
            if method.name in _VIEWER.get(service.name, ()):
                role = "viewer"
            elif method.name in _ADMIN.get(service.name, ()):
                role = "admin"
            else:  # creating, training, running: what a trainer does
                role = "trainer"
            roles[f"/{service.full_name}/{method.name}"] = role
    return roles


METHOD_ROLES = _method_roles()


class AuthError(Exception):
    """Why a call is refused before it runs: `code` is a grpc.StatusCode name."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def bearer_key(metadata: dict[str, str]) -> str:
    value = metadata.get("authorization", "")
    scheme, _, key = value.partition(" ")
    if not value:
        raise AuthError("UNAUTHENTICATED", "this server needs an API key: send it as 'authorization: Bearer <key>' "
                                           "metadata (Client(api_key=...) or FORGE_TRAINING_API_KEY); the server's "
                                           "administrator creates keys with `forge-training keys create`")
    if scheme.lower() != "bearer" or not key.strip():
        raise AuthError("UNAUTHENTICATED", "the authorization metadata must read 'Bearer <key>'")
    return key.strip()


def header_project(metadata: dict[str, str]) -> str:
    """The project bare ids mean, from the x-forge-project metadata ("" when absent)."""
    project = metadata.get(PROJECT_HEADER, "")
    if project and not names.ID_PATTERN.match(project):
        raise AuthError("INVALID_ARGUMENT", f"{PROJECT_HEADER} metadata {project[:70]!r} is not a project id: use "
                                            "1-63 lowercase letters, digits and '-', starting with a letter")
    return project


def scope_for(principal: Principal, method: str, metadata: dict[str, str]) -> tenancy.Scope:
    """The scope of one call by `principal`, or AuthError."""
    needs = METHOD_ROLES[method]
    allowed = principal.projects_with(needs)
    short = method.rsplit("/", 1)[-1]
    if not allowed:
        held = ", ".join(f"{p}={r}" for p, r in sorted(principal.roles.items()))
        raise AuthError("PERMISSION_DENIED", f"API key {principal.name or principal.key_id!r} ({held}) may not call "
                                             f"{short}: it needs the {needs} role in a project")
    default = header_project(metadata)
    if not default:
        # A key of one project means that project; with several, bare ids and empty parents
        # need the header ("": engine/names.py says so, naming the key's projects).
        default = next(iter(principal.roles)) if len(principal.roles) == 1 else ""
    return tenancy.Scope(projects=allowed, default_project=default,
                         visible=frozenset(principal.roles), needs=needs)


class Authenticator:
    """Checks the API key of each call to the forge services."""

    def __init__(self, keys: ApiKeys):
        self.keys = keys

    def authenticate(self, method: str, metadata: dict[str, str]) -> tuple[Principal, tenancy.Scope]:
        key = bearer_key(metadata)
        principal = self.keys.verify(key)
        if principal is None:
            shown = key[:16] + "..." if len(key) > 16 else key
            raise AuthError("UNAUTHENTICATED", f"API key {shown!r} is not valid: it is unknown, malformed or revoked")
        return principal, scope_for(principal, method, metadata)
