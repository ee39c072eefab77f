"""Generate docs/api/ (the API reference) from the comments in proto/forge/training/v1.

    .venv/bin/python tools/gen_api_docs.py            # rewrite docs/api/
    .venv/bin/python tools/gen_api_docs.py --check    # exit 1 when docs/api/ is stale

The protos are compiled with the protoc that grpcio-tools ships (a dev dependency, so no
Node or buf is needed) into a FileDescriptorSet with source info, which holds every
comment next to the path of the element it documents. Each .proto file becomes one
markdown page: its services (every RPC with its request, response and streaming), its
messages (a table of fields) and its enums (a table of values), in declaration order, so
the output depends on the protos alone and is byte-for-byte reproducible.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from google.protobuf import descriptor_pb2

ROOT = Path(__file__).resolve().parents[1]
PROTO_ROOT = ROOT / "proto"
PACKAGE_DIR = Path("forge/training/v1")
OUT_DIR = ROOT / "docs" / "api"
PACKAGE = "forge.training.v1"

# Field numbers of the descriptor messages, as SourceCodeInfo.Location.path uses them.
FILE_MESSAGE, FILE_ENUM, FILE_SERVICE = 4, 5, 6
MESSAGE_FIELD, MESSAGE_NESTED, MESSAGE_ENUM = 2, 3, 4
ENUM_VALUE = 2
SERVICE_METHOD = 2

FieldType = descriptor_pb2.FieldDescriptorProto
SCALARS = {
    FieldType.TYPE_DOUBLE: "double", FieldType.TYPE_FLOAT: "float", FieldType.TYPE_INT64: "int64",
    FieldType.TYPE_UINT64: "uint64", FieldType.TYPE_INT32: "int32", FieldType.TYPE_FIXED64: "fixed64",
    FieldType.TYPE_FIXED32: "fixed32", FieldType.TYPE_BOOL: "bool", FieldType.TYPE_STRING: "string",
    FieldType.TYPE_BYTES: "bytes", FieldType.TYPE_UINT32: "uint32", FieldType.TYPE_SFIXED32: "sfixed32",
    FieldType.TYPE_SFIXED64: "sfixed64", FieldType.TYPE_SINT32: "sint32", FieldType.TYPE_SINT64: "sint64",
}


def compile_protos() -> descriptor_pb2.FileDescriptorSet:
    """Our .proto files (with their imports) as a FileDescriptorSet carrying source info.

    protoc runs in a process of its own: grpc_tools' compiler inside a process that has loaded
    other protobuf-linked libraries (the test suite's) crashed it with a segmentation fault."""
    well_known = str(resources.files("grpc_tools") / "_proto")
    sources = sorted(str(p.relative_to(PROTO_ROOT)) for p in (PROTO_ROOT / PACKAGE_DIR).glob("*.proto"))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "api.binpb"
        done = subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTO_ROOT}",
                               f"-I{ROOT / 'third_party' / 'googleapis'}", f"-I{well_known}", "--include_imports",
                               "--include_source_info", f"--descriptor_set_out={out}", *sources],
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"protoc failed ({done.returncode}) compiling {', '.join(sources)}: {done.stderr}")
        return descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())


# ----- comments


def _comment(location: descriptor_pb2.SourceCodeInfo.Location | None) -> list[str]:
    """The element's comment as paragraphs (lists of lines), leading comment then trailing."""
    if location is None:
        return []
    text = "\n\n".join(c for c in (location.leading_comments, location.trailing_comments) if c.strip())
    paragraphs, current = [], []
    for raw in text.splitlines():
        line = raw[1:] if raw.startswith(" ") else raw  # protoc keeps the space after "//"
        if line.strip():
            current.append(_escape(line.rstrip()))
        elif current:
            paragraphs.append(current)
            current = []
    if current:
        paragraphs.append(current)
    return ["\n".join(p) for p in paragraphs]


def _escape(line: str) -> str:
    """Keep a comment line literal in markdown: `<word` outside code spans would open an HTML tag."""
    parts = line.split("`")
    for i in range(0, len(parts), 2):  # even parts lie outside code spans
        parts[i] = re.sub(r"<(?=[A-Za-z/!])", "&lt;", parts[i])
    return "`".join(parts)


def _cell(paragraphs: list[str]) -> str:
    """Paragraphs in one table cell: one line, paragraphs apart, pipes escaped."""
    return "<br><br>".join(" ".join(p.split("\n")) for p in paragraphs).replace("|", "\\|")


def _block(paragraphs: list[str]) -> list[str]:
    lines: list[str] = []
    for paragraph in paragraphs:
        lines += [paragraph, ""]
    return lines


# ----- names and links


@dataclass(frozen=True)
class Target:
    page: str    # the markdown file, e.g. "training_job.md"
    anchor: str  # the heading's slug on that page
    label: str   # the name shown, relative to the package


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lowercase, punctuation dropped, spaces as dashes."""
    return re.sub(r"[^a-z0-9 _-]", "", heading.lower()).replace(" ", "-")


def page_of(proto_file: str) -> str:
    return Path(proto_file).stem + ".md"


def collect_targets(files: list[descriptor_pb2.FileDescriptorProto]) -> dict[str, Target]:
    """Every message and enum of our package: full name (".forge.training.v1.X") -> where it is documented."""
    targets: dict[str, Target] = {}

    def visit(prefix: str, page: str, messages, enums) -> None:
        for enum in enums:
            label = f"{prefix}{enum.name}"
            targets[f".{PACKAGE}.{label}"] = Target(page, slug(label), label)
        for message in messages:
            if message.options.map_entry:
                continue
            label = f"{prefix}{message.name}"
            targets[f".{PACKAGE}.{label}"] = Target(page, slug(label), label)
            visit(label + ".", page, message.nested_type, message.enum_type)

    for proto in files:
        visit("", page_of(proto.name), proto.message_type, proto.enum_type)
    return targets


class Renderer:
    def __init__(self, files: list[descriptor_pb2.FileDescriptorProto], all_files):
        self.files = files
        self.targets = collect_targets(files)
        # Map entries' key and value types, wherever they are declared.
        self.maps: dict[str, descriptor_pb2.DescriptorProto] = {}
        for proto in all_files:
            self._index_maps(f".{proto.package}", proto.message_type)

    def _index_maps(self, prefix: str, messages) -> None:
        for message in messages:
            name = f"{prefix}.{message.name}"
            if message.options.map_entry:
                self.maps[name] = message
            self._index_maps(name, message.nested_type)

    def link(self, type_name: str, page: str) -> str:
        target = self.targets.get(type_name)
        if target is None:  # a well-known or vendored type (google.protobuf.Struct, google.rpc.Status)
            return f"`{type_name.lstrip('.')}`"
        href = f"#{target.anchor}" if target.page == page else f"{target.page}#{target.anchor}"
        return f"[`{target.label}`]({href})"

    def field_type(self, field: descriptor_pb2.FieldDescriptorProto, page: str) -> str:
        if field.type_name in self.maps:
            entry = self.maps[field.type_name]
            key, value = entry.field[0], entry.field[1]
            return f"map&lt;{self.field_type(key, page)}, {self.field_type(value, page)}&gt;"
        base = self.link(field.type_name, page) if field.type_name else f"`{SCALARS[field.type]}`"
        if field.label == FieldType.LABEL_REPEATED:
            return f"repeated {base}"
        if field.proto3_optional:
            return f"optional {base}"
        return base

    # ----- pages

    def render_file(self, proto: descriptor_pb2.FileDescriptorProto) -> str:
        page = page_of(proto.name)
        locations = {tuple(loc.path): loc for loc in proto.source_code_info.location}
        lines = [f"# {Path(proto.name).name}", "",
                 f"`{proto.name}`, package `{proto.package}`. Generated by `tools/gen_api_docs.py` from the "
                 "proto comments; edit the `.proto` file, then run `make generate`.", ""]
        if proto.service:
            lines += ["## Services", ""]
            for i, service in enumerate(proto.service):
                lines += self.render_service(service, (FILE_SERVICE, i), locations, page)
        if proto.message_type:
            lines += ["## Messages", ""]
            for i, message in enumerate(proto.message_type):
                lines += self.render_message(message, "", (FILE_MESSAGE, i), locations, page)
        if proto.enum_type:
            lines += ["## Enums", ""]
            for i, enum in enumerate(proto.enum_type):
                lines += self.render_enum(enum, "", (FILE_ENUM, i), locations)
        return "\n".join(lines).rstrip("\n") + "\n"

    def render_service(self, service, path, locations, page) -> list[str]:
        lines = [f"### {service.name}", "", *_block(_comment(locations.get(path)))]
        lines += ["| Method | Request | Response |", "| --- | --- | --- |"]
        for method in service.method:
            lines.append(f"| [`{method.name}`](#{slug(method.name)}) | {self._end(method.input_type, method.client_streaming, page)} "
                         f"| {self._end(method.output_type, method.server_streaming, page)} |")
        lines.append("")
        for i, method in enumerate(service.method):
            lines += [f"#### {method.name}", "",
                      f"`rpc {method.name}({'stream ' if method.client_streaming else ''}"
                      f"{method.input_type.rsplit('.', 1)[-1]}) returns ("
                      f"{'stream ' if method.server_streaming else ''}{method.output_type.rsplit('.', 1)[-1]})`", "",
                      *_block(_comment(locations.get((*path, SERVICE_METHOD, i))))]
        return lines

    def _end(self, type_name: str, streaming: bool, page: str) -> str:
        return ("stream " if streaming else "") + self.link(type_name, page)

    def render_message(self, message, prefix, path, locations, page) -> list[str]:
        if message.options.map_entry:
            return []
        label = f"{prefix}{message.name}"
        lines = [f"### {label}", "", *_block(_comment(locations.get(path)))]
        if message.field:
            lines += ["| Field | Type | Description |", "| --- | --- | --- |"]
            for i, field in enumerate(message.field):
                notes = _comment(locations.get((*path, MESSAGE_FIELD, i)))
                if field.HasField("oneof_index") and not field.proto3_optional:
                    notes = [f"(oneof `{message.oneof_decl[field.oneof_index].name}`) " + " ".join(notes[:1]), *notes[1:]]
                lines.append(f"| `{field.name}` | {self.field_type(field, page)} | {_cell(notes)} |")
            lines.append("")
        else:
            lines += ["No fields.", ""]
        for i, nested in enumerate(message.nested_type):
            lines += self.render_message(nested, label + ".", (*path, MESSAGE_NESTED, i), locations, page)
        for i, enum in enumerate(message.enum_type):
            lines += self.render_enum(enum, label + ".", (*path, MESSAGE_ENUM, i), locations)
        return lines

    def render_enum(self, enum, prefix, path, locations) -> list[str]:
        lines = [f"### {prefix}{enum.name}", "", *_block(_comment(locations.get(path)))]
        lines += ["| Value | Number | Description |", "| --- | --- | --- |"]
        for i, value in enumerate(enum.value):
            lines.append(f"| `{value.name}` | {value.number} | {_cell(_comment(locations.get((*path, ENUM_VALUE, i))))} |")
        return [*lines, ""]

    def render_index(self) -> str:
        lines = ["# API reference", "",
                 f"The gRPC API of forge-training, package `{PACKAGE}`, generated by `tools/gen_api_docs.py` "
                 "from the comments in [proto/forge/training/v1](../../proto/forge/training/v1) (the contract; "
                 "these pages are regenerated from it by `make generate`). Resource names, bare ids and "
                 "projects are explained in [seed-mapping.md](../seed-mapping.md#conventions).", ""]
        for proto in self.files:
            page = page_of(proto.name)
            for service in proto.service:
                lines += [f"## [{service.name}]({page}#{slug(service.name)})", ""]
                locations = {tuple(loc.path): loc for loc in proto.source_code_info.location}
                index = list(proto.service).index(service)
                summary = _comment(locations.get((FILE_SERVICE, index)))
                lines += _block(summary[:1])
                lines += ["| Method | Summary |", "| --- | --- |"]
                for i, method in enumerate(service.method):
                    first = _comment(locations.get((FILE_SERVICE, index, SERVICE_METHOD, i)))[:1]
                    lines.append(f"| [`{method.name}`]({page}#{slug(method.name)}) | {_cell([_first_sentence(first)])} |")
                lines.append("")
        lines += ["## Files", "", "| File | Messages and enums |", "| --- | --- |"]
        rpc_types = {t for proto in self.files for service in proto.service for method in service.method
                     for t in (method.input_type, method.output_type)}
        for proto in self.files:
            names = [m.name for m in proto.message_type] + [e.name for e in proto.enum_type]
            shown = [n for n in names if f".{proto.package}.{n}" not in rpc_types]
            if len(shown) < len(names):
                shown.append("the requests and responses of its RPCs")
            lines.append(f"| [{Path(proto.name).name}]({page_of(proto.name)}) | {', '.join(shown)} |")
        return "\n".join(lines) + "\n"


def _first_sentence(paragraphs: list[str]) -> str:
    text = " ".join(paragraphs[0].split()) if paragraphs else ""
    match = re.match(r"(.+?\.)(\s|$)", text)
    return match.group(1) if match else text


def generate() -> dict[str, str]:
    """{file name under docs/api: content} for every page."""
    descriptors = compile_protos()
    ours = sorted((f for f in descriptors.file if f.package == PACKAGE), key=lambda f: f.name)
    renderer = Renderer(ours, descriptors.file)
    pages = {page_of(proto.name): renderer.render_file(proto) for proto in ours}
    pages["README.md"] = renderer.render_index()
    _check_anchors(ours, renderer)
    return pages


def _check_anchors(files, renderer: Renderer) -> None:
    """Two headings with the same slug on a page would make links land on the wrong one."""
    for proto in files:
        page = page_of(proto.name)
        seen: dict[str, str] = {}
        headings = [t.label for t in renderer.targets.values() if t.page == page]
        headings += [s.name for s in proto.service] + [m.name for s in proto.service for m in s.method]
        for heading in headings:
            if slug(heading) in seen:
                raise SystemExit(f"{page}: headings {seen[slug(heading)]!r} and {heading!r} share the anchor "
                                 f"#{slug(heading)}")
            seen[slug(heading)] = heading


def stale(pages: dict[str, str], out_dir: Path) -> list[str]:
    """Files under out_dir that differ from `pages`: changed, missing or left over."""
    present = {p.name for p in out_dir.glob("*.md")} if out_dir.is_dir() else set()
    differ = [n for n, text in pages.items() if n not in present or (out_dir / n).read_text() != text]
    return sorted(differ + [n for n in present - set(pages)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 when docs/api is stale")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="default %(default)s")
    args = parser.parse_args(argv)
    pages = generate()
    differ = stale(pages, args.out)
    if args.check:
        if differ:
            shown = args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out
            print(f"{shown} is stale ({', '.join(differ)}): run `.venv/bin/python tools/gen_api_docs.py`",
                  file=sys.stderr)
            return 1
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name in differ:
        if name in pages:
            (args.out / name).write_text(pages[name])
        else:
            (args.out / name).unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
