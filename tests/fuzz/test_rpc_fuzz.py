"""Every RPC of the three forge services fed generated, mutated and undecodable requests
(hypothesis), on a server of its own.

Each answer must be OK or a status that tells the client what it did wrong: never UNKNOWN or
INTERNAL (a client mistake must not look like a server fault), never DATA_LOSS (nothing here
corrupts stored bytes), never a unary call hanging past its deadline, and INVALID_ARGUMENT always
names the field (or the header, for bad call metadata: request id, project, authorization, which
are fuzzed too). Server streams are read for a few messages and cancelled halfway; uploads are
sent whole, cut short or cancelled halfway. Meanwhile a canary thread keeps calling the server
on resources of a project the fuzzer never names: none of its calls may fail. At the end health
still says SERVING, nothing was logged as an error, no cancelled stream or upload keeps a file
open, and no upload leaves its temporary file behind. Inputs that once broke the server are sent
on every run (rpc_seeds.Seeds.regressions).

Inputs are derandomized (the same examples every run, so a failure always reproduces). To hunt
further: FORGE_FUZZ_EXAMPLES=500 tries more per RPC, FORGE_FUZZ_SEED=7 other random ones.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import traceback
import time
from collections import Counter
from pathlib import Path

import grpc
import psutil
import pytest
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status
from hypothesis import HealthCheck, example, given, seed, settings
from hypothesis import strategies as st

from forge.training import Client, ForgeTrainingError, common_pb2
from forge.training.v1 import data_service_pb2, pipeline_service_pb2, trainer_service_pb2

# Sibling modules: the suite imports test files by path (--import-mode=importlib), not as a package.
sys.path.insert(0, str(Path(__file__).resolve().parent))
import rpc_messages  # noqa: E402
from rpc_seeds import CANARY_PROJECT, SERVICES, Seeds, echo  # noqa: E402

# Destructive methods go last, so the resources the mutated requests start from live through
# the other methods' runs.
_LAST = ("Delete", "Cancel")
METHODS = sorted(((s, m) for s in SERVICES for m in s.methods), key=lambda sm: sm[1].name.startswith(_LAST))

EXAMPLES = int(os.environ.get("FORGE_FUZZ_EXAMPLES", "25"))
SEED = os.environ.get("FORGE_FUZZ_SEED", "")
_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,  # the server shares two cores with the rest of the suite: time is no verdict
    derandomize=not SEED,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    print_blob=False,
)


# Each EvaluateModel that gets past validation runs the model in a freshly spawned process (seconds
# here), and about half of its inputs do: fewer of them keep the whole run near a minute.
FEWER = {"EvaluateModel": max(1, EXAMPLES // 4)}


def _with_settings(test, method: str):
    test = seed(int(SEED))(test) if SEED else test
    return settings(_SETTINGS, max_examples=FEWER.get(method, EXAMPLES))(test)


# A unary call still going after this long is a hang, not a slow answer.
UNARY_DEADLINE = 20.0
# A followed stream gets this long to send what it will before the client cancels it.
STREAM_PATIENCE = 0.2
# UNIMPLEMENTED stays allowed: it is the proper answer to a feature a framework lacks (fine-tuning
# a scikit-learn model), and tests/integration/test_api_surface.py keeps every method implemented.
NEVER = {grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL, grpc.StatusCode.DATA_LOSS, grpc.StatusCode.UNAVAILABLE}
FINAL = (common_pb2.JOB_STATE_COMPLETED, common_pb2.JOB_STATE_FAILED, common_pb2.JOB_STATE_CANCELLED)


@pytest.fixture(scope="module")
def fuzz_server(module_server):
    # One job at a time: what the fuzzer starts waits in the queue instead of loading the machine.
    return module_server(max_concurrent_jobs=1, pipeline_functions={"echo": echo})


@pytest.fixture(scope="module")
def fuzz_client(fuzz_server):
    with Client(fuzz_server.target, timeout=60) as c:
        yield c


@pytest.fixture(scope="module")
def seeds(fuzz_server, fuzz_client, tmp_path_factory):
    return Seeds(fuzz_client, tmp_path_factory.mktemp("fuzz-seeds"))


class Canary(threading.Thread):
    """Calls the server on the canary project's resources, over and over, until stopped."""

    def __init__(self, target: str, dataset: str, job: str):
        super().__init__(daemon=True)
        self.target, self.dataset, self.job = target, dataset, job
        self.calls = 0
        self.failures: list[str] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        with Client(self.target, timeout=UNARY_DEADLINE) as client:
            checks = [
                lambda: client.trainer.GetTrainingJob(trainer_service_pb2.GetTrainingJobRequest(name=self.job),
                                                      timeout=UNARY_DEADLINE).training_job.name == self.job,
                lambda: self.dataset in {d.name for d in client.data.ListDatasets(
                    data_service_pb2.ListDatasetsRequest(parent=f"projects/{CANARY_PROJECT}"),
                    timeout=UNARY_DEADLINE).datasets},
                lambda: len(client.data.GetRecords(data_service_pb2.GetRecordsRequest(
                    name=self.dataset, limit=3), timeout=UNARY_DEADLINE).records) == 3,
                # A stream, to the end: cancelled streams around it must not starve it.
                lambda: sum(len(r.records) for r in client.data.StreamRecords(data_service_pb2.StreamRecordsRequest(
                    name=self.dataset, batch_size=50), timeout=UNARY_DEADLINE)) == 150,
            ]
            while not self.stopped.is_set():
                for check in checks:
                    started = time.monotonic()
                    try:
                        ok = check()
                    except grpc.RpcError as err:
                        ok = False
                        self.failures.append(f"{err.code().name}: {err.details()}")
                    else:
                        if not ok:
                            self.failures.append(f"wrong answer from check {checks.index(check)}")
                    self.calls += 1
                    if ok and time.monotonic() - started > UNARY_DEADLINE / 2:
                        self.failures.append(f"check {checks.index(check)} took {time.monotonic() - started:.1f} s")
                self.stopped.wait(0.05)


@pytest.fixture(scope="module")
def canary(fuzz_server, seeds):
    thread = Canary(fuzz_server.target, seeds.canary_dataset, seeds.canary_job)
    thread.start()
    yield thread
    thread.stopped.set()
    thread.join(UNARY_DEADLINE * 2)


@pytest.fixture(scope="module")
def memory_ceiling():
    """While the fuzzer runs, this process (the server is a thread of it) may map at most 4 GiB more
    than it has: a request that makes the server allocate without bound then fails that request
    with MemoryError, which the fuzzer reports with the request, instead of the kernel's OOM killer
    ending this process and others on the machine."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    ceiling = psutil.Process().memory_info().vms + 4 * 2**30
    if hard != resource.RLIM_INFINITY:
        ceiling = min(ceiling, hard)
    resource.setrlimit(resource.RLIMIT_AS, (ceiling, hard))
    yield
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


class ServerErrors(logging.Handler):
    """Errors the process logged, and exceptions that ended a thread, while the fuzzer ran: a
    request answered properly may still have broken something in the background."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        cause = ""
        if record.exc_info and record.exc_info[1] is not None:  # what to fix, not only where
            cause = " | " + "".join(traceback.format_exception(*record.exc_info)[-3:]).strip()
        self.seen.append(f"{record.name}: {record.getMessage()}{cause}")

    def thread_died(self, args) -> None:
        self.seen.append(f"thread {getattr(args.thread, 'name', '?')}: {args.exc_type.__name__}: {args.exc_value}")


@pytest.fixture(scope="module")
def server_errors():
    errors = ServerErrors()
    logging.getLogger().addHandler(errors)
    previous, threading.excepthook = threading.excepthook, errors.thread_died
    yield errors
    threading.excepthook = previous
    logging.getLogger().removeHandler(errors)


class Tally:
    """Inputs sent per RPC, and the status codes they got."""

    def __init__(self):
        self.inputs: Counter = Counter()
        self.codes: Counter = Counter()

    def record(self, rpc: str, code: grpc.StatusCode) -> None:
        self.inputs[rpc] += 1
        self.codes[code.name] += 1

    def __str__(self) -> str:
        codes = ", ".join(f"{name} {n}" for name, n in self.codes.most_common())
        return f"fuzz: {sum(self.inputs.values())} inputs tried across {len(self.inputs)} RPCs ({codes})"


@pytest.fixture(scope="module")
def tally() -> Tally:
    return Tally()


@pytest.fixture(scope="module")
def channel(fuzz_server):
    with grpc.insecure_channel(fuzz_server.target) as ch:
        yield ch


def _garbage(seeds: list) -> st.SearchStrategy[bytes]:
    """Bytes that may not decode as the request: random, or a working request with one byte changed
    (which often makes a string invalid UTF-8 or a length run past the end). grpc.aio alone answers
    those UNKNOWN (INTERNAL inside an upload); the server intercepts them (server/request_decoding.py)
    and answers INVALID_ARGUMENT, which is what a client that sends them deserves."""
    flipped = st.nothing()
    if seeds:
        @st.composite
        def flip(draw):
            data = bytearray(draw(st.sampled_from(seeds)).SerializeToString())
            if not data:
                return bytes(draw(st.binary(min_size=1, max_size=8)))
            index = draw(st.integers(0, len(data) - 1))
            data[index] = draw(st.sampled_from([0x00, 0x80, 0xFF, 0xC0, 0x0A, 0x7F, data[index] ^ 0x01]))
            return bytes(data)

        flipped = flip()
    return st.one_of(st.binary(max_size=40), flipped)


# Call metadata the server reads. Values stay printable ASCII and short: anything else is refused
# by the client library or the transport before our server sees it. "canary" is left out, so no
# fuzzed call acts on the canary's project by a bare id.
_METADATA_VALUES = st.one_of(
    st.sampled_from(["", "default", "Default", "projects/x", "x" * 64, "a b", "../..", "Bearer ", "Bearer x.y"]),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=80).filter(lambda v: v != "canary"))
METADATA = st.one_of(st.just(()), st.lists(st.tuples(
    st.sampled_from(["x-request-id", "x-forge-project", "authorization"]), _METADATA_VALUES), max_size=2))


def _payload(item) -> bytes:
    return item if isinstance(item, bytes) else item.SerializeToString()


def _decodes(cls, payload: bytes) -> bool:
    try:
        cls.FromString(payload)
    except DecodeError:
        return False
    return True


def _check(method: str, code: grpc.StatusCode, err: grpc.RpcError | None, streamed: bool, decodes: bool,
           metadata=()) -> None:
    details = err.details() if err is not None else ""
    assert code not in NEVER, f"{method} answered {code.name}: {details}"
    if not streamed:
        assert code not in (grpc.StatusCode.CANCELLED, grpc.StatusCode.DEADLINE_EXCEEDED), \
            f"{method} did not answer within {UNARY_DEADLINE} s ({code.name})"
    if code != grpc.StatusCode.INVALID_ARGUMENT or not decodes:
        return  # bytes that do not parse have no field to name
    status = rpc_status.from_call(err)
    fields = []
    for detail in status.details if status else ():
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            fields += [v.field for v in bad.field_violations]
    # A bad header is named in the message: it is no field of the request.
    header = any(key in details for key, _ in metadata)
    assert header or (fields and all(fields)), f"{method}: INVALID_ARGUMENT without the field it is about: {details}"


def _call_unary(channel, path: str, payload: bytes, metadata=()):
    try:
        channel.unary_unary(path)(payload, timeout=UNARY_DEADLINE, metadata=metadata)
    except grpc.RpcError as err:
        return err.code(), err
    return grpc.StatusCode.OK, None


def _call_server_stream(channel, path: str, payload: bytes, read: int, metadata=()):
    """Read `read` messages (or the whole stream, if shorter), then cancel it."""
    call = channel.unary_stream(path)(payload, timeout=UNARY_DEADLINE, metadata=metadata)
    patience = threading.Timer(STREAM_PATIENCE, call.cancel)  # a followed stream waits for news forever
    patience.start()
    try:
        if read == 0:
            call.cancel()
        for index, _ in enumerate(call):
            if index + 1 >= read:
                call.cancel()
                break
    except grpc.RpcError:
        pass
    finally:
        patience.cancel()
    err = call if call.code() != grpc.StatusCode.OK else None
    return call.code(), err


def _call_client_stream(channel, path: str, payloads: list[bytes], cancel_after: int | None, metadata=()):
    """Send `payloads`; with `cancel_after`, send that many and cancel the call (an upload given up halfway)."""
    gave_up = threading.Event()

    def messages():
        for index, payload in enumerate(payloads):
            if cancel_after is not None and index == cancel_after:
                gave_up.wait(UNARY_DEADLINE)
                return
            yield payload

    future = channel.stream_unary(path).future(messages(), timeout=UNARY_DEADLINE, metadata=metadata)
    if cancel_after is not None:
        time.sleep(STREAM_PATIENCE / 4)
        future.cancel()
        gave_up.set()
    try:
        future.result()
    except grpc.FutureCancelledError:
        return grpc.StatusCode.CANCELLED, None
    except grpc.RpcError as err:
        return err.code(), err
    return grpc.StatusCode.OK, None


@pytest.mark.parametrize("service,method", METHODS, ids=[m.name for _, m in METHODS])
def test_every_answer_is_a_proper_status(service, method, channel, seeds, canary, tally, memory_ceiling,
                                         server_errors):
    path = f"/{service.full_name}/{method.name}"
    full = f"{service.name}.{method.name}"
    known = seeds.names

    request_cls = rpc_messages.message_class(method.input_type)
    if method.client_streaming:
        sequences = rpc_messages.request_streams(method.input_type, [seeds.upload], known)
        inputs = st.tuples(
            st.one_of(sequences, st.lists(_garbage(seeds.upload[:1]), min_size=1, max_size=3)),
            st.none() | st.integers(0, 2), METADATA)

        def fuzz_one(example):
            sequence, cancel_after, metadata = example
            payloads = [_payload(m) for m in sequence]
            code, err = _call_client_stream(channel, path, payloads, cancel_after, metadata)
            tally.record(full, code)
            _check(full, code, err, streamed=cancel_after is not None,
                   decodes=all(_decodes(request_cls, p) for p in payloads), metadata=metadata)

        regressions = [(sequence, None, ()) for sequence in seeds.regressions[method.name]]
    else:
        requests = rpc_messages.requests(method.input_type, seeds.requests[method.name], known)
        # How many messages of a server stream to read before cancelling it (unary answers come whole).
        reads = st.integers(0, 3) if method.server_streaming else st.just(1)
        inputs = st.tuples(st.one_of(requests, _garbage(seeds.requests[method.name])), reads, METADATA)

        def fuzz_one(example):
            request, read, metadata = example
            payload = _payload(request)
            if method.server_streaming:
                code, err = _call_server_stream(channel, path, payload, read, metadata)
            else:
                code, err = _call_unary(channel, path, payload, metadata)
            tally.record(full, code)
            decodes = _decodes(request_cls, payload)
            if not decodes and code not in (grpc.StatusCode.CANCELLED, grpc.StatusCode.INVALID_ARGUMENT):
                # A bad header may be refused first; otherwise bytes that do not parse are INVALID_ARGUMENT.
                assert metadata, f"{full} answered undecodable bytes with {code.name}"
            _check(full, code, err, streamed=method.server_streaming, decodes=decodes, metadata=metadata)

        regressions = [(request, 1, ()) for request in seeds.regressions[method.name]]

    fuzz = given(inputs)(fuzz_one)
    for regression in regressions:
        fuzz = example(regression)(fuzz)
    _with_settings(fuzz, method.name)()


def _cancel_leftovers(client: Client) -> None:
    """Cancel what the fuzzer started and is still going, so the server stops quickly."""
    going = [(client.cancel_tuning, t) for t in client.list_tuning_jobs()]
    going += [(client.cancel, j) for j in client.list_jobs()]
    for cancel, item in going:
        if item.state in FINAL or item.state == common_pb2.JOB_STATE_CANCELLING:
            continue
        try:
            cancel(item.name)
        except ForgeTrainingError as err:  # it finished since it was listed
            assert err.code == grpc.StatusCode.FAILED_PRECONDITION, err


def test_the_server_is_healthy_and_no_other_request_was_harmed(fuzz_server, fuzz_client, canary, tally, request,
                                                              server_errors):
    # Printed in pytest's closing summary (tests/conftest.py), also from an xdist worker.
    request.node.user_properties.append(("summary", str(tally)))
    canary.stopped.set()
    canary.join(UNARY_DEADLINE * 2)
    _cancel_leftovers(fuzz_client)
    assert canary.calls > 0 and not canary.failures, canary.failures[:10]
    assert not server_errors.seen, server_errors.seen[:10]
    with grpc.insecure_channel(fuzz_server.target) as ch:
        health = health_pb2_grpc.HealthStub(ch)
        for name in ("", *(s.full_name for s in SERVICES)):
            assert health.Check(health_pb2.HealthCheckRequest(service=name), timeout=10).status == \
                health_pb2.HealthCheckResponse.SERVING, name
    # Cancelled exports, record streams and uploads closed their files, and uploads left nothing behind.
    data_dir = Path(fuzz_server.config.data_dir).resolve()
    deadline = time.monotonic() + 10
    while True:
        held = [f.path for f in psutil.Process().open_files() if Path(f.path).is_relative_to(data_dir)
                and not f.path.endswith((".db", ".db-wal", ".db-shm", "-journal"))]
        leftovers = [p for p in fuzz_server.engine.data.uploads_dir.rglob("*") if p.is_file()]
        if not held and not leftovers or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert not held, held
    assert not leftovers, leftovers
