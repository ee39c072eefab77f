# Source this (from clients/go) to build and test the Go SDK without the Go module proxy,
# against the Go sources Debian's golang-*-dev packages install (tools/debian-packages.sh):
#
#     cd clients/go && . tools/offline-env.sh && go test ./...
#
# go.mod stays the ordinary one a user with network access builds with. This writes a copy,
# .offline/go.mod, that replaces every module go.mod requires by Debian's source directory
# of it, and points the go command at the copy (-modfile). go.mod lists every module that
# provides a package (Go >= 1.17 lazy loading), so the go command never needs the go.mod
# files of the wider module graph, which Debian does not have either.

FORGE_GOCODE=${FORGE_GOCODE:-/usr/share/gocode/src}

forge_offline_modfile() {
  mkdir -p .offline || return 1
  cp go.mod .offline/go.mod || return 1
  # Module paths of both require forms: `require x v1` and the lines of `require ( ... )`.
  modules=$(awk '
    /^require \(/ { block = 1; next }
    block && /^\)/ { block = 0; next }
    block && NF >= 2 { print $1; next }
    /^require [^(]/ { print $2 }
  ' go.mod) || return 1
  missing=""
  for module in $modules; do
    if [ -f "$FORGE_GOCODE/$module/go.mod" ]; then
      GOFLAGS= go mod edit -replace="$module=$FORGE_GOCODE/$module" .offline/go.mod || return 1
    else
      missing="$missing $module"
    fi
  done
  if [ -n "$missing" ]; then
    echo "offline-env.sh: no Debian sources for:$missing under $FORGE_GOCODE;" \
      "run tools/debian-packages.sh (or set FORGE_GOCODE to a GOPATH src tree that has them)" >&2
    return 1
  fi
}

if forge_offline_modfile; then
  # GOFLAGS -modfile: the replacing copy; GOPROXY=off: a module missing from go.mod fails at
  # once, naming it, instead of hanging on a proxy this machine cannot reach; GOTOOLCHAIN=local:
  # Go >= 1.21 would otherwise try to download the toolchain a go.mod asks for.
  export GOFLAGS="-modfile=$PWD/.offline/go.mod" GOPROXY=off GOSUMDB=off GOTOOLCHAIN=local
else
  return 1 2>/dev/null || exit 1
fi
