#!/usr/bin/env bash
# Builds a Go tool the benchmark runs beside Signet at a pinned version with `go install` from the
# Go module proxy, into the shared tool cache; does nothing when a binary of that version is
# already there. Go's module and build caches stay in $HOME. Prints the binary's path last.
#   install-go-tool.sh NAME MODULE VERSION PACKAGE [go install flags...]
set -euo pipefail
name=$1 module=$2 version=$3 package=$4
shift 4

CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/signet-tools"
dir="$CACHE/$name-$version"
binary="$dir/$name"

export GOPATH="${GOPATH:-$HOME/go}"
export GOMODCACHE="${GOMODCACHE:-$GOPATH/pkg/mod}"
export GOCACHE="${GOCACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/go-build}"

# The build's main-module version, from `go version -m`, tells a reusable binary.
built_at() { [ -x "$1" ] && go version -m "$1" 2>/dev/null | grep -qE "^[[:space:]]+mod[[:space:]]+$module[[:space:]]+$version([[:space:]]|\$)"; }

if built_at "$binary"; then
  echo "$name $version: reused" >&2
  echo "$binary"
  exit 0
fi

started=$SECONDS
mkdir -p "$dir"
GOBIN="$dir" go install "$@" "$package@$version"
built_at "$binary" || { echo "$name: $binary is not $module $version" >&2; exit 1; }
echo "$name $version: built ($((SECONDS - started)) s)" >&2
echo "$binary"
