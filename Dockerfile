# The provider image. `make test` builds it from these very lines without a Docker engine or a
# registry (tests/support/node/: a Debian root filesystem, this RUN line under chroot, buildah)
# and runs it as a Pod on a real node.
# Pinned to an exact release. Pin the digest too where the pipeline can read it (this machine
# reaches no container registry, so none is written here):
#   docker build --build-arg BASE=python:3.11.7-slim-bookworm@sha256:<digest> .
ARG BASE=python:3.11.7-slim-bookworm

FROM ${BASE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY provider ./provider
# With the pkcs11 extra: trust keys and signing keys on a PKCS#11 token (an HSM's module is the
# vendor's: mount it, and name it in the pkcs11: URI's module-path).
RUN pip install --no-cache-dir --prefix=/install ".[pkcs11]"

FROM ${BASE}
COPY --from=build /install /usr/local
USER 65532:65532
EXPOSE 8443
# The entrypoint is the program; the command is what a Pod's `args` replace (Kubernetes keeps
# ENTRYPOINT and swaps CMD for `args`), so the chart's `args: [serve, …]` and a bare
# `docker run IMAGE` both serve. Mount the trust config at /etc/signet/trust, the serving
# certificate at /etc/signet/tls and Gatekeeper's CA (Secret gatekeeper-webhook-server-cert, key
# ca.crt) at /etc/signet/gatekeeper/ca.crt — the paths the chart mounts.
ENTRYPOINT ["signet"]
CMD ["serve", "--config", "/etc/signet/trust", \
     "--cert", "/etc/signet/tls/tls.crt", "--key", "/etc/signet/tls/tls.key", \
     "--client-ca", "/etc/signet/gatekeeper/ca.crt"]
