#!/usr/bin/env bash
# Ratify (the CNCF external-data provider the benchmark compares Signet with) at a pinned version.
# v1.4.6's go.mod has no replace directives, so `go install pkg@version` builds it as released,
# module versions checked against the checksum database — but one: a pseudo-version of
# github.com/open-policy-agent/frameworks/constraint the database does not hold (404), so that
# path alone is exempt from the lookup. The ldflags are the release's (Makefile: -w and the
# version tag, which `ratify version` prints).
set -euo pipefail
export GONOSUMDB="${GONOSUMDB:+$GONOSUMDB,}github.com/open-policy-agent/frameworks"
module=github.com/ratify-project/ratify
exec bash "$(dirname "$0")/install-go-tool.sh" ratify "$module" v1.4.6 "$module/cmd/ratify" \
  -ldflags "-w -X $module/internal/version.GitTag=v1.4.6"
