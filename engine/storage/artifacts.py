"""Artifact storage: where exported models and saved models live, behind one interface.

Four backends, chosen by StorageConfig.type as the seed's StorageConfig describes:
  local  a directory (default: the server's data dir); writes are atomic renames with fsync.
  s3     a bucket and prefix through s3fs; any S3-compatible endpoint (endpoint_url). An
         object appears whole or not at all (a PUT is atomic), so no rename is needed.
  gcs    a bucket and prefix through gcsfs; endpoint_url for an emulator.
  azure  a Blob Storage container and prefix through adlfs.
Credentials never pass through the configuration, so they are never logged or stored:
s3fs/botocore read AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN (or a
profile) from the environment, gcsfs reads GOOGLE_APPLICATION_CREDENTIALS, adlfs reads
AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_ACCOUNT_KEY / AZURE_STORAGE_SAS_TOKEN (or
a service principal) with the account name. A connection string also names a non-default
endpoint, such as the Azurite emulator's.

An artifact is recorded as {"uri", "sha256", "size_bytes"}; every read verifies them.
Records written before storage backends existed carry "path" instead of "uri": `location`
reads both. Local URIs are plain absolute paths.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from engine.errors import DataLoss, FailedPrecondition, InvalidArgument, PermissionDenied
from engine.storage.files import CHUNK, write_atomic, write_atomic_hashed

log = logging.getLogger("forge.engine.storage")

STORAGE_TYPES = ("local", "s3", "gcs", "azure")
_SCHEMES = {"s3": "s3", "gcs": "gs", "azure": "az"}
# The optional package each remote store needs (pyproject.toml's extras of the same name).
_PACKAGES = {"s3": "s3fs", "gcs": "gcsfs", "azure": "adlfs"}


@dataclass(frozen=True)
class StorageConfig:
    type: str = "local"
    #: local: the base directory (default: the data dir).
    base_path: str = ""
    #: s3 / gcs: the bucket (azure: the container), and a key prefix inside it.
    bucket: str = ""
    prefix: str = ""
    #: s3: the region; s3 / gcs: an endpoint for compatible stores and emulators (MinIO, moto).
    region: str = ""
    endpoint_url: str = ""
    #: gcs: the project that owns the bucket.
    project: str = ""
    #: azure: the storage account (not needed with AZURE_STORAGE_CONNECTION_STRING).
    account: str = ""

    def validate(self) -> None:
        if self.type not in STORAGE_TYPES:
            raise ValueError(f"storage type {self.type!r} is not one of {', '.join(STORAGE_TYPES)}")
        if self.type != "local" and not self.bucket:
            what = "container" if self.type == "azure" else "bucket"
            raise ValueError(f"{self.type} storage needs a {what} (--storage-bucket)")
        if self.type == "azure" and self.endpoint_url:
            raise ValueError("azure storage takes its endpoint from AZURE_STORAGE_CONNECTION_STRING "
                             "(BlobEndpoint=...), not --storage-endpoint-url: leave it out")
        if (self.type == "azure" and not self.account and not os.environ.get("AZURE_STORAGE_CONNECTION_STRING")
                and not os.environ.get("AZURE_STORAGE_ACCOUNT_NAME")):
            raise ValueError("azure storage needs the storage account (--storage-account), or "
                             "AZURE_STORAGE_CONNECTION_STRING in the environment")

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, str]) -> "StorageConfig":
        return cls(**data)

    @property
    def scheme(self) -> str:
        return _SCHEMES[self.type]

    def describe(self) -> str:
        """For the startup log: where artifacts go (nothing here is a secret)."""
        if self.type == "local":
            return f"local directory {self.base_path}"
        extra = f" via {masked_url(self.endpoint_url)}" if self.endpoint_url else ""
        account = f" (account {self.account})" if self.account else ""
        return f"{self.type} {self.scheme}://{self.bucket}/{self.prefix.strip('/')}{extra}{account}"


_SECRET_QUERY_KEYS = ("password", "passwd", "secret", "token", "sig", "key", "credential")


def masked_url(url: str) -> str:
    """`url` safe to log or show: a password in its user part and the values of query
    parameters that look like secrets (password, token, sig, ...) replaced by ****."""
    from urllib.parse import parse_qsl, urlencode, urlsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return "****"
    masked = url  # edited in place: rebuilding would rewrite sqlite:////abs/path as sqlite://abs/path
    if parts.password:
        masked = masked.replace(f":{parts.password}@", ":****@", 1)
    if parts.query:
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        if any(any(s in k.lower() for s in _SECRET_QUERY_KEYS) for k, _ in pairs):
            query = urlencode([(k, "****" if any(s in k.lower() for s in _SECRET_QUERY_KEYS) else v)
                               for k, v in pairs], safe="*")
            masked = masked.replace("?" + parts.query, "?" + query, 1)
    return masked


def location(info: dict[str, Any]) -> str:
    """Where a recorded artifact lives: its URI, or the local path of an older record."""
    return info.get("uri") or info["path"]


# Local files remembered as verified (ArtifactStore.verified_before), the most recently verified.
MAX_REMEMBERED_VERIFICATIONS = 4096
# How long a file must have been unchanged (by its ctime) when it is hashed to be remembered.
UNCHANGED_FOR_NS = 1_000_000_000


class ArtifactStore:
    def __init__(self, config: StorageConfig, data_dir: Path | str | None = None):
        config.validate()
        if config.type == "local" and not config.base_path:
            if data_dir is None:
                raise ValueError("local storage needs a base path or a data dir")
            config = StorageConfig(**{**config.to_dict(), "base_path": str(Path(data_dir).resolve())})
        self.config = config
        self._fs = None
        # uri -> (sha256, fingerprint) of local files whose bytes were hashed whole and matched.
        self._verified: OrderedDict[str, tuple[str, tuple]] = OrderedDict()
        self._verified_lock = threading.Lock()

    # ----- naming

    @property
    def local(self) -> bool:
        return self.config.type == "local"

    @property
    def root(self) -> str:
        """The URI every key is relative to."""
        if self.local:
            return str(Path(self.config.base_path).resolve())
        prefix = self.config.prefix.strip("/")
        return f"{_SCHEMES[self.config.type]}://{self.config.bucket}" + (f"/{prefix}" if prefix else "")

    def uri(self, key: str) -> str:
        return f"{self.root}/{key.lstrip('/')}"

    def contains(self, uri: str, under: str = "") -> bool:
        """Whether `uri` lies inside the store (inside key prefix `under`, when given)."""
        return _under(uri, self.uri(under) if under else self.root)

    def key_of(self, uri: str) -> str:
        return uri[len(self.root):].lstrip("/") if not self.local else \
            str(Path(uri).resolve().relative_to(Path(self.root)))

    # ----- the filesystem behind a remote store

    def _filesystem(self):
        if self._fs is None:
            import fsspec

            config = self.config
            options: dict[str, Any] = {"skip_instance_cache": True}
            if config.type == "s3":
                client = {k: v for k, v in (("endpoint_url", config.endpoint_url),
                                            ("region_name", config.region)) if v}
                if client:
                    options["client_kwargs"] = client
            elif config.type == "gcs":
                if config.project:
                    options["project"] = config.project
                if config.endpoint_url:  # an emulator: no Google credentials to look for
                    options.update(endpoint_url=config.endpoint_url, token="anon")
            elif config.type == "azure" and config.account:
                options["account_name"] = config.account
            try:
                if config.type == "gcs" and config.endpoint_url:
                    # gcsfs's default class asks Google's storage-control API (over TLS gRPC to
                    # the endpoint) for each bucket's layout; an emulator has no such API, and
                    # the lookup stalls for a minute per bucket. The plain class goes straight to JSON.
                    from gcsfs.core import GCSFileSystem

                    self._fs = GCSFileSystem(**options)
                else:
                    self._fs = fsspec.filesystem(config.scheme, **options)
            except ImportError as exc:
                raise RuntimeError(f"{config.type} storage needs {_PACKAGES[config.type]}, which this server lacks "
                                   f"({exc}): pip install {_PACKAGES[config.type]}") from None
        return self._fs

    # ----- writing

    def put_file(self, local_path: str | os.PathLike, key: str, size: int, sha256: str) -> dict[str, Any]:
        """Store a file already written (and hashed) locally under `key`. A local store whose
        target is the file itself records it in place; a remote one uploads and checks the size."""
        target = self.uri(key)
        if self.local:
            if Path(local_path).resolve() != Path(target):
                write_atomic(target, lambda tmp: shutil.copyfile(local_path, tmp))
        else:
            fs = self._filesystem()
            fs.put_file(str(local_path), target)
            stored = fs.size(target)
            if stored != size:
                raise DataLoss(f"uploaded {key} has {stored} bytes, {size} written")
        return {"uri": target, "sha256": sha256, "size_bytes": size}

    def copy(self, info: dict[str, Any], key: str) -> dict[str, Any]:
        """A verified copy of a stored artifact under `key` (SaveModel)."""
        target = self.uri(key)
        if self.local:
            size, digest = write_atomic(target, lambda tmp: shutil.copyfile(location(info), tmp))
        else:
            fs = self._filesystem()
            fs.copy(location(info), target)
            size, digest = self.hash(target)
        if digest != info["sha256"]:
            self.delete(target)
            raise DataLoss(f"the copy at {key} does not match the recorded sha256 {info['sha256']}")
        return {"uri": target, "sha256": digest, "size_bytes": size}

    def exported(self, artifacts: dict[str, Any], fmt: str, owner: str, check: bool = True) -> dict[str, Any]:
        """The record of `owner`'s artifact in export format `fmt`, verified unless `check` is False
        (a streaming reader that hashes as it goes verifies for itself)."""
        info = (artifacts or {}).get(fmt)
        if info is None:
            offered = ", ".join(k for k in (artifacts or {}) if k != "state")
            raise FailedPrecondition(f"{owner} has no {fmt} export: its framework offers {offered}")
        if check:
            self.verify(info)
        return info

    def delete(self, uri: str) -> None:
        """Remove a file or a whole directory / prefix; missing is fine."""
        if self.local:
            path = Path(uri)
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            return
        fs = self._filesystem()
        try:
            fs.rm(uri, recursive=True)
        except FileNotFoundError:
            pass

    # ----- reading

    def open(self, uri: str) -> IO[bytes]:
        if self.local:
            return open(uri, "rb")
        return self._filesystem().open(uri, "rb")

    def exists(self, uri: str) -> bool:
        if self.local:
            return Path(uri).is_file()
        return self._filesystem().isfile(uri)

    def is_dir(self, uri: str) -> bool:
        if self.local:
            return Path(uri).is_dir()
        return self._filesystem().isdir(uri)

    def hash(self, uri: str) -> tuple[int, str]:
        """(size, sha256) of the stored bytes, streamed."""
        digest = hashlib.sha256()
        size = 0
        with self.open(uri) as f:
            for block in iter(lambda: f.read(CHUNK), b""):
                digest.update(block)
                size += len(block)
        return size, digest.hexdigest()

    # ----- what was verified
    # Hashing a large artifact on every export or load costs a core for seconds (sha256 runs at
    # about 1 GB/s). A local file whose bytes were hashed whole and matched is trusted again
    # while its fingerprint is unchanged: any write to it, or a file put in its place, changes
    # its ctime or inode, which nobody can set back. Objects in object stores are always hashed.

    def fingerprint(self, uri: str) -> tuple | None:
        """(device, inode, size, mtime, ctime) of a local file; None for object stores or a file
        that cannot be read."""
        if not self.local:
            return None
        try:
            st = os.stat(uri)
        except OSError:
            return None
        return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns

    def verified_before(self, uri: str, sha256: str, fingerprint: tuple | None) -> bool:
        """Whether the file was hashed whole and matched `sha256` when it had this fingerprint."""
        if fingerprint is None:
            return False
        with self._verified_lock:
            return self._verified.get(uri) == (sha256, fingerprint)

    def remember_verified(self, uri: str, sha256: str, fingerprint: tuple | None) -> None:
        """Record that the bytes hashed whole matched `sha256`; `fingerprint`: the file's before
        the hash began (a file that changed meanwhile is not remembered)."""
        if fingerprint is None or self.fingerprint(uri) != fingerprint:
            return
        if time.time_ns() - fingerprint[4] < UNCHANGED_FOR_NS:
            # File times move on at the kernel's clock tick (a few ms): a write within the same tick
            # as this hash could leave the fingerprint as it was. Only a file that has been left
            # alone a while is remembered.
            return
        with self._verified_lock:
            self._verified[uri] = (sha256, fingerprint)
            self._verified.move_to_end(uri)
            while len(self._verified) > MAX_REMEMBERED_VERIFICATIONS:
                self._verified.popitem(last=False)

    def verify(self, info: dict[str, Any]) -> None:
        """DataLoss unless the stored bytes still match the record (see verified_before)."""
        uri = location(info)
        if not self.exists(uri):
            raise DataLoss(f"stored artifact {uri.rsplit('/', 1)[-1]} is missing")
        before = self.fingerprint(uri)
        if self.verified_before(uri, info["sha256"], before) and before[2] == info.get("size_bytes", before[2]):
            return
        size, digest = self.hash(uri)
        if digest != info["sha256"]:
            raise DataLoss(f"stored artifact {uri.rsplit('/', 1)[-1]} is corrupted: sha256 {digest} != "
                           f"recorded {info['sha256']}")
        if "size_bytes" in info and size != info["size_bytes"]:
            raise DataLoss(f"stored artifact {uri.rsplit('/', 1)[-1]} has {size} bytes, {info['size_bytes']} recorded")
        self.remember_verified(uri, info["sha256"], before)

    def fetch(self, info: dict[str, Any], dest: str | os.PathLike) -> Path:
        """A verified local copy of a stored artifact (for worker processes that need a file);
        a local artifact is verified and used where it is."""
        if self.local:
            self.verify(info)
            return Path(location(info))
        return self.download(info, dest)

    def download(self, info: dict[str, Any], dest: str | os.PathLike) -> Path:
        """A copy of a stored artifact at `dest`, hashed as it is written and checked before it
        takes the name: `dest` never holds bytes that do not match the record (a reader that
        finds the file there may use it), and a file already there stays as it was. DataLoss
        when they do not match."""

        def copy(out) -> None:
            with self.open(location(info)) as src:
                shutil.copyfileobj(src, out, CHUNK)
            if out.hexdigest() != info["sha256"]:
                raise DataLoss(f"stored artifact {location(info).rsplit('/', 1)[-1]} is corrupted: sha256 "
                               f"{out.hexdigest()} != recorded {info['sha256']}")

        write_atomic_hashed(dest, copy)
        return Path(dest)

    def discard(self, uri: str) -> bool:
        """delete(uri) for clean-up that must not fail what it follows (pruning old checkpoints,
        a deleted dataset's copy): a store that refuses is logged, not raised. Whether it went."""
        try:
            self.delete(uri)
            return True
        except Exception as exc:  # a store outage: the object stays, as an orphan the log names
            log.warning("could not delete %s from %s: %s", uri, self.config.describe(), exc)
            return False

    def restore(self, info: dict[str, Any] | None, local_path: str | os.PathLike) -> Path:
        """`local_path`, fetched from this store and verified first when the file is missing
        there and `info` records a stored copy (a data dir lost or never shared, e.g. a new
        server or another Ray node, with the metadata database and the object store intact).
        A file that is there is returned as it is: its reader verifies what it reads."""
        path = Path(local_path)
        if path.is_file() or self.local or not info or not info.get("uri"):
            return path
        return self.fetch(info, path)

    def iter_chunks(self, uri: str, offset: int = 0, chunk_size: int = CHUNK) -> Iterator[bytes]:
        with self.open(uri) as f:
            if offset:
                f.seek(offset)
            for block in iter(lambda: f.read(chunk_size), b""):
                yield block


def resolve_model_path(store: ArtifactStore, path: str, field: str, extra_roots: tuple[str, ...] = ()) -> str:
    """The URI of a user-given model path: a relative path lands under the store's models/
    directory; a full path or URI must lie under models/ or one of `extra_roots`."""
    if not path:
        raise InvalidArgument.field(field, "is required: a relative path such as 'churn/model.pkl'", "REQUIRED")
    if "\x00" in path:
        raise InvalidArgument.field(field, "contains a NUL character")
    is_uri = "://" in path or path.startswith("/")
    candidate = path if is_uri else store.uri(f"models/{path}")
    if not is_uri and ".." in Path(path).parts:
        raise InvalidArgument.field(field, f"{path!r} leaves the model directory: give a relative path without '..'")
    if store.contains(candidate, "models") and candidate.rstrip("/") != store.uri("models"):
        return str(Path(candidate).resolve()) if store.local else candidate
    for root in extra_roots:
        if _under(candidate, root):
            return str(Path(candidate).resolve()) if "://" not in candidate else candidate
    allowed = ", ".join([store.uri("models"), *extra_roots])
    raise PermissionDenied(f"{field} {path!r} is outside the allowed model roots ({allowed}); "
                           "give a path relative to the model directory or start the server with --model-root")


def _under(uri: str, root: str) -> bool:
    """Whether `uri` lies inside `root`: a resolved local path, or an object URI with no "."
    or ".." segments that would let it climb out of the prefix."""
    if "://" in root or "://" in uri:
        parts = uri.split("/")
        return ".." not in parts and "." not in parts[3:] and uri.startswith(root.rstrip("/") + "/")
    try:
        return Path(uri).resolve().is_relative_to(Path(root).resolve())
    except (OSError, ValueError):
        return False
