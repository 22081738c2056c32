#!/usr/bin/env bash
# Installs the test tools, idempotently: Debian's docker-registry and redis-server, and cosign at
# pinned versions built with `go install` into .tools/ (Go's module and build caches stay in $HOME,
# so a fresh clone rebuilds in seconds once they are warm).
set -euo pipefail
cd "$(dirname "$0")/.."

COSIGN_VERSIONS=(v2.5.0 v2.6.5 v3.1.3)
OPA_VERSION=v1.22.2
GATOR_VERSION=v3.23.1
HELM_VERSION=v3.22.0
GATEKEEPER_VERSION=v3.23.1
# The private keyless Sigstore stack of the tests (tests/support/keyless/). timestamp-authority
# v2.1.4 and later need Go >= 1.27; v2.1.3 is the newest that builds with Go 1.26.
FULCIO_VERSION=v1.8.8
TIMESTAMP_AUTHORITY_VERSION=v2.1.3
KUBE_VERSION=v1.34.4
PROMETHEUS_OPERATOR_VERSION=v0.85.0
# Built binaries are also kept here, so a fresh clone on the same machine copies instead of relinking.
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/signet-tools"

if ! command -v docker-registry >/dev/null 2>&1 && [ ! -x /usr/bin/docker-registry ]; then
  started=$SECONDS
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends docker-registry >/dev/null
  echo "docker-registry: installed ($((SECONDS - started)) s)"
else
  echo "docker-registry: present"
fi

# The shared verdict cache's tests start their own redis-server (tests/support/redis.py); the
# package's service is not started (a policy-rc.d says so where none is).
if ! command -v redis-server >/dev/null 2>&1 && [ ! -x /usr/bin/redis-server ]; then
  started=$SECONDS
  export DEBIAN_FRONTEND=noninteractive
  policy_rc_d=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    policy_rc_d=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' > "$policy_rc_d"; chmod 755 "$policy_rc_d"
  fi
  apt-get install -y -qq --no-install-recommends redis-server >/dev/null || { apt-get update -qq && apt-get install -y -qq --no-install-recommends redis-server >/dev/null; }
  [ -z "$policy_rc_d" ] || rm -f "$policy_rc_d"
  echo "redis-server: installed ($((SECONDS - started)) s)"
else
  echo "redis-server: present"
fi

# SoftHSM2, the PKCS#11 token the hardware-key tests sign with (tests/support/softhsm.py).
if ! command -v softhsm2-util >/dev/null 2>&1 || [ ! -f /usr/lib/softhsm/libsofthsm2.so ]; then
  started=$SECONDS
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends softhsm2 >/dev/null || { apt-get update -qq && apt-get install -y -qq --no-install-recommends softhsm2 >/dev/null; }
  echo "softhsm2: installed ($((SECONDS - started)) s)"
else
  echo "softhsm2: present"
fi

# Debian's Chromium and its chromedriver: the console's browser test drives them with Selenium
# (tests/support/browser.py names both, so nothing is downloaded).
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  started=$SECONDS
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null || { apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null; }
  echo "chromium, chromium-driver: installed ($((SECONDS - started)) s)"
else
  echo "chromium, chromium-driver: present"
fi

for version in "${COSIGN_VERSIONS[@]}"; do
  dir=".tools/cosign-$version"
  if [ -x "$dir/cosign" ] && "$dir/cosign" version 2>/dev/null | grep -q "GitVersion: *$version\$"; then
    echo "cosign $version: reused"
    continue
  fi
  started=$SECONDS
  mkdir -p "$dir" "$CACHE/cosign-$version"
  if [ -x "$CACHE/cosign-$version/cosign" ] && "$CACHE/cosign-$version/cosign" version 2>/dev/null | grep -q "GitVersion: *$version\$"; then
    cp "$CACHE/cosign-$version/cosign" "$dir/cosign"
    echo "cosign $version: copied from $CACHE"
    continue
  fi
  major=${version%%.*}
  GOBIN="$PWD/$dir" go install "github.com/sigstore/cosign/$major/cmd/cosign@$version"
  cp "$dir/cosign" "$CACHE/cosign-$version/cosign"
  echo "cosign $version: built ($((SECONDS - started)) s)"
done

# cached_tool NAME VERSION CHECK BUILD [ARG...]: .tools/NAME-VERSION/NAME, reused when `CHECK PATH
# VERSION` accepts it, else copied from the user cache when CHECK accepts that copy, else made by
# `BUILD OUT [ARG...]` (which writes OUT), checked, and kept in the user cache.
cached_tool() {
  local name=$1 version=$2 check=$3 build=$4
  shift 4
  local dir=".tools/$name-$version" cached="$CACHE/$name-$version"
  if "$check" "$dir/$name" "$version"; then
    echo "$name $version: reused"
    return
  fi
  mkdir -p "$dir" "$cached"
  if "$check" "$cached/$name" "$version"; then
    cp "$cached/$name" "$dir/$name"
    echo "$name $version: copied from $CACHE"
    return
  fi
  local started=$SECONDS
  "$build" "$PWD/$dir/$name" "$@"
  "$check" "$dir/$name" "$version" || { echo "$name: the build is not $name $version" >&2; exit 1; }
  cp "$dir/$name" "$cached/$name"
  echo "$name $version: built ($((SECONDS - started)) s)"
}

# A `go install`ed binary's main-module version, from `go version -m`, tells a reusable one.
built_at() { [ -x "$1" ] && go version -m "$1" 2>/dev/null | grep -qE "^[[:space:]]+mod[[:space:]]+[^[:space:]]+[[:space:]]+$2([[:space:]]|\$)"; }
# go_install OUT PACKAGE@VERSION [FLAGS...]: `go install` into OUT's folder (OUT is named as the package).
go_install() { local out=$1 package=$2; shift 2; GOBIN="$(dirname "$out")" go install "$@" "$package"; }
# go_tool NAME VERSION PACKAGE: .tools/NAME-VERSION/NAME, built by `go install` at the pinned version.
go_tool() { cached_tool "$1" "$2" built_at go_install "$3@$2"; }

go_tool opa "$OPA_VERSION" github.com/open-policy-agent/opa
go_tool gator "$GATOR_VERSION" github.com/open-policy-agent/gatekeeper/v3/cmd/gator
go_tool helm "$HELM_VERSION" helm.sh/helm/v3/cmd/helm
go_tool gatekeeper "$GATEKEEPER_VERSION" github.com/open-policy-agent/gatekeeper/v3
go_tool fulcio "$FULCIO_VERSION" github.com/sigstore/fulcio
go_tool timestamp-server "$TIMESTAMP_AUTHORITY_VERSION" github.com/sigstore/timestamp-authority/v2/cmd/timestamp-server

# promtool, which checks and unit-tests the chart's PrometheusRule (tests/integration/
# test_prometheus_rules.py). Prometheus 3.x's module versions are v0.3xx.y (v0.316.0 is 3.16).
# Built with Prometheus's own remove_all_sd tag: without the optional service discoveries (cloud
# SDKs that rules never touch) it compiles in half the CPU time; `check rules` and `test rules`
# are the same code either way.
PROMTOOL_VERSION=v0.316.0
PROMTOOL_TAGS=remove_all_sd
promtool_built() { built_at "$1" "$2" && go version -m "$1" | grep -qE "^[[:space:]]+build[[:space:]]+-tags=$PROMTOOL_TAGS\$"; }
cached_tool promtool "$PROMTOOL_VERSION" promtool_built go_install \
  "github.com/prometheus/prometheus/cmd/promtool@$PROMTOOL_VERSION" -tags "$PROMTOOL_TAGS"

# module_source MODULE@VERSION: a writable copy of a module's source, in a new temporary folder.
module_source() {
  (cd /tmp && go mod download "$1")
  local work
  work="$(mktemp -d)"
  cp -r "$(go env GOMODCACHE)/$1/." "$work"
  chmod -R u+w "$work"
  echo "$work"
}

# Alertmanager, the real receiver the alerts' integration tests deliver to (tests/support/
# alertmanager.py, tests/integration/test_alerts.py). Its module embeds the web UI's built assets
# (ui/app/dist), which the module zip leaves out, so `go install` cannot build it: it is built
# from a copy of the module source with a placeholder UI (the tests use only the API), its
# version stamped in as Alertmanager's own release build does (checked by `--version`).
ALERTMANAGER_VERSION=v0.35.0
alertmanager_built() { [ -x "$1" ] && "$1" --version 2>/dev/null | grep -q "^alertmanager, version ${2#v} "; }
build_alertmanager() {
  local work
  work="$(module_source "github.com/prometheus/alertmanager@$ALERTMANAGER_VERSION")"
  for ui in elm mantine; do
    mkdir -p "$work/ui/app/dist/$ui"
    echo "<!doctype html><title>Alertmanager</title><p>Built without the web UI." > "$work/ui/app/dist/$ui/index.html"
  done
  (cd "$work" && go build -o "$1" -ldflags "-X github.com/prometheus/common/version.Version=${ALERTMANAGER_VERSION#v}" ./cmd/alertmanager)
  rm -rf "$work"
}
cached_tool alertmanager "$ALERTMANAGER_VERSION" alertmanager_built build_alertmanager

# HashiCorp Vault, the real KMS behind `hashivault://` keys (tests/support/vault.py,
# tests/integration/test_vault.py: `vault server -dev -dev-tls` with its Transit engine). Its
# go.mod replaces api and sdk with folders the module zip leaves out (each is a module of its
# own), so `go install` cannot build it: it is built from a copy of the module source with those
# replaces dropped, taking the released api and sdk that v1.21.0's go.mod itself requires.
VAULT_VERSION=v1.21.0
vault_built() { [ -x "$1" ] && "$1" version 2>/dev/null | grep -q "^Vault $2,"; }
build_vault() {
  local work replaced
  work="$(module_source "github.com/hashicorp/vault@$VAULT_VERSION")"
  for replaced in $(sed -n 's|^replace \(github.com/hashicorp/vault/[^ ]*\) => \./.*|\1|p' "$work/go.mod"); do
    (cd "$work" && go mod edit -dropreplace="$replaced")
  done
  (cd "$work" && GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w" -o "$1" .)
  rm -rf "$work"
}
cached_tool vault "$VAULT_VERSION" vault_built build_vault

# The e2e tests apply Gatekeeper's CRDs from its module source (charts/gatekeeper/crds).
(cd /tmp && go mod download "github.com/open-policy-agent/gatekeeper/v3@$GATEKEEPER_VERSION")
# ... and the Prometheus operator's ServiceMonitor CRD, to dry-run the chart's ServiceMonitor.
(cd /tmp && go mod download "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION")

# kube-apiserver and kubectl, from the wrapper module in tools/kube (see tools/kube/tools.go), and
# the node's own binaries from the same module, for the tests' real node (tests/support/node/).
kube_dir=".tools/kube-$KUBE_VERSION"
kube_cached="$CACHE/kube-$KUBE_VERSION"
kube_built() { [ -x "$1" ] && go version -m "$1" 2>/dev/null | grep -qE "^[[:space:]]+(mod|dep)[[:space:]]+k8s.io/kubernetes[[:space:]]+$KUBE_VERSION"; }
for binary in kube-apiserver kubectl kubelet kube-controller-manager kube-scheduler kube-proxy; do
  if kube_built "$kube_dir/$binary"; then
    echo "$binary $KUBE_VERSION: reused"
    continue
  fi
  mkdir -p "$kube_dir" "$kube_cached"
  if kube_built "$kube_cached/$binary"; then
    cp "$kube_cached/$binary" "$kube_dir/$binary"
    echo "$binary $KUBE_VERSION: copied from $CACHE"
    continue
  fi
  started=$SECONDS
  minor=${KUBE_VERSION#v1.}; minor=${minor%%.*}
  (cd tools/kube && go build -o "../../$kube_dir/$binary" -ldflags "-X k8s.io/component-base/version.gitVersion=$KUBE_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor" "k8s.io/kubernetes/cmd/$binary")
  cp "$kube_dir/$binary" "$kube_cached/$binary"
  echo "$binary $KUBE_VERSION: built ($((SECONDS - started)) s)"
done

# An OCI registry with the OCI 1.1 referrers API: go-containerregistry's in-memory registry, served
# by the wrapper in tools/referrers-registry (its own cmd/registry leaves the API off). The
# version here must match that module's go.mod.
referrers_version=v0.22.1
referrers_dir=".tools/referrers-registry-$referrers_version"
referrers_cached="$CACHE/referrers-registry-$referrers_version"
referrers_built() { [ -x "$1" ] && go version -m "$1" 2>/dev/null | grep -qE "^[[:space:]]+dep[[:space:]]+github.com/google/go-containerregistry[[:space:]]+$referrers_version([[:space:]]|\$)"; }
if referrers_built "$referrers_dir/referrers-registry"; then
  echo "referrers-registry $referrers_version: reused"
else
  mkdir -p "$referrers_dir" "$referrers_cached"
  if referrers_built "$referrers_cached/referrers-registry"; then
    cp "$referrers_cached/referrers-registry" "$referrers_dir/referrers-registry"
    echo "referrers-registry $referrers_version: copied from $CACHE"
  else
    started=$SECONDS
    (cd tools/referrers-registry && go build -o "../../$referrers_dir/referrers-registry" .)
    referrers_built "$referrers_dir/referrers-registry" || { echo "referrers-registry: tools/referrers-registry/go.mod does not pin go-containerregistry $referrers_version" >&2; exit 1; }
    cp "$referrers_dir/referrers-registry" "$referrers_cached/referrers-registry"
    echo "referrers-registry $referrers_version: built ($((SECONDS - started)) s)"
  fi
fi

if ! command -v etcd >/dev/null 2>&1; then
  started=$SECONDS
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends etcd-server >/dev/null || { apt-get update -qq && apt-get install -y -qq --no-install-recommends etcd-server >/dev/null; }
  echo "etcd-server: installed ($((SECONDS - started)) s)"
else
  echo "etcd: present"
fi

# The tests' real node (tests/support/node/): containerd + runc + the CNI plugins run Pods, iptables
# and conntrack serve kube-proxy, buildah and mmdebstrap build the provider image without a
# registry (gcc and a static libc compile pause, below). No init system runs here, so nothing
# starts; a policy-rc.d says so where none is.
node_packages=(containerd runc containernetworking-plugins iptables conntrack buildah mmdebstrap gcc libc6-dev)
missing=()
for package in "${node_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  started=$SECONDS
  export DEBIAN_FRONTEND=noninteractive
  policy_rc_d=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    policy_rc_d=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' > "$policy_rc_d"; chmod 755 "$policy_rc_d"
  fi
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }
  [ -z "$policy_rc_d" ] || rm -f "$policy_rc_d"
  echo "${missing[*]}: installed ($((SECONDS - started)) s)"
else
  echo "${node_packages[*]}: present"
fi

# The node's cluster DNS (as a process, no forwarding) and its sandbox image's binary, pause,
# compiled from Kubernetes' own pause.c in the module cache (the kube build above put it there).
COREDNS_VERSION=v1.12.4
go_tool coredns "$COREDNS_VERSION" github.com/coredns/coredns
pause_source="$(go env GOMODCACHE)/k8s.io/kubernetes@$KUBE_VERSION/build/pause"
pause_version="v$(sed -n 's/^TAG ?= //p' "$pause_source/Makefile")-kubernetes-$KUBE_VERSION"
pause_dir=".tools/pause-$KUBE_VERSION"
pause_cached="$CACHE/pause-$KUBE_VERSION"
pause_built() { [ -x "$1" ] && [ "$("$1" -v 2>/dev/null)" = "pause.c $pause_version" ]; }
if pause_built "$pause_dir/pause"; then
  echo "pause $pause_version: reused"
else
  mkdir -p "$pause_dir" "$pause_cached"
  if pause_built "$pause_cached/pause"; then
    cp "$pause_cached/pause" "$pause_dir/pause"
    echo "pause $pause_version: copied from $CACHE"
  else
    (cd tools/kube && go mod download "k8s.io/kubernetes@$KUBE_VERSION")
    gcc -Os -Wall -Werror -static -DVERSION="$pause_version" -o "$pause_dir/pause" "$pause_source/linux/pause.c"
    strip "$pause_dir/pause"
    cp "$pause_dir/pause" "$pause_cached/pause"
    echo "pause $pause_version: built"
  fi
fi
