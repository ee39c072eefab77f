#!/bin/sh
# Installs, only when some are missing, the Debian 12 packages the Go SDK is generated and
# built with: the Go toolchain, protoc with its Go plugins, and the Go sources of the
# libraries the SDK imports (built offline by tools/offline-env.sh). Like .ci/postgres.sh,
# it runs apt-get only when needed, and needs root then.
set -eu

# golang-github-golang-protobuf-1-5-dev is named because golang-google-grpc-dev also accepts
# the 1.3 series, which apt picks by default: gRPC's codec marshals through that package, and
# 1.3 panics on the oneofs of messages generated for google.golang.org/protobuf (1.4 and later
# hand them to it).
PACKAGES="golang-go protobuf-compiler protoc-gen-go protoc-gen-go-grpc golang-google-grpc-dev
  golang-google-protobuf-dev golang-google-genproto-dev golang-github-golang-protobuf-1-5-dev"

missing=""
for package in $PACKAGES; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $package"
  fi
done
[ -z "$missing" ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "debian-packages.sh: needs Debian's packages:$missing (apt-get not found; see clients/go/README.md)" >&2
  exit 1
fi
if [ "$(id -u)" != 0 ]; then
  echo "debian-packages.sh: missing Debian packages; install them with:" >&2
  echo "  sudo apt-get install --no-install-recommends$missing" >&2
  exit 1
fi
echo "installing Debian packages for the Go SDK:$missing"
apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
