#!/usr/bin/env bash
# vegeta, the HTTP load generator the benchmark drives (it speaks mutual TLS), at a pinned version.
set -euo pipefail
exec bash "$(dirname "$0")/install-go-tool.sh" vegeta github.com/tsenart/vegeta/v12 v12.13.0 \
  github.com/tsenart/vegeta/v12
