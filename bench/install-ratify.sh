#!/usr/bin/env bash
# Builds Ratify (the CNCF external-data provider the benchmark compares Signet with) at a pinned
# version with `go install` from the Go module proxy, into the shared tool cache; does nothing
# when a binary of that version is already there. Go's module and build caches stay in $HOME.
# Prints the binary's path on its last line.
set -euo pipefail

RATIFY_VERSION=v1.4.6
RATIFY_MODULE=github.com/ratify-project/ratify
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/signet-tools"
dir="$CACHE/ratify-$RATIFY_VERSION"
binary="$dir/ratify"

export GOPATH="${GOPATH:-$HOME/go}"
export GOMODCACHE="${GOMODCACHE:-$GOPATH/pkg/mod}"
export GOCACHE="${GOCACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/go-build}"

# The build's main-module version, from `go version -m`, tells a reusable binary.
built_at() { [ -x "$1" ] && go version -m "$1" 2>/dev/null | grep -qE "^[[:space:]]+mod[[:space:]]+$RATIFY_MODULE[[:space:]]+$RATIFY_VERSION([[:space:]]|\$)"; }

if built_at "$binary"; then
  echo "ratify $RATIFY_VERSION: reused" >&2
  echo "$binary"
  exit 0
fi

started=$SECONDS
mkdir -p "$dir"
# v1.4.6's go.mod has no replace directives, so `go install pkg@version` builds it as released
# (module versions checked against the checksum database). The ldflags are the release's
# (Makefile: -w and the version tag, which `ratify version` prints).
GOBIN="$dir" go install \
  -ldflags "-w -X $RATIFY_MODULE/internal/version.GitTag=$RATIFY_VERSION" \
  "$RATIFY_MODULE/cmd/ratify@$RATIFY_VERSION"
built_at "$binary" || { echo "ratify: $binary is not $RATIFY_MODULE $RATIFY_VERSION" >&2; exit 1; }
echo "ratify $RATIFY_VERSION: built ($((SECONDS - started)) s)" >&2
echo "$binary"
