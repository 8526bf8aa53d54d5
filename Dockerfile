# syntax=docker/dockerfile:1
#
# coinsaga in a container: `coinsaga serve --sandbox` with its data under
# the /data volume, as `make run` does with ./data.
#
#   docker build -t coinsaga .
#   docker run --rm --name coinsaga -v coinsaga-data:/data \
#     -p 127.0.0.1:4222:4222 -p 127.0.0.1:8080:8080 -p 127.0.0.1:9311:9311 coinsaga
#
# The build stage runs the Makefile's own `make build`, so the image holds
# what `make build` makes on a workstation, flags and all;
# cmd/coinsaga/dockerfile_test.go keeps this file and the Makefile together.
# SQLite is mattn/go-sqlite3, a cgo driver: the build needs gcc, and the
# binary links glibc, so the runtime is the same Debian release.

FROM golang:1.26-bookworm AS build
# The golang image brings gcc, libc6-dev and make; fail here, not in the
# middle of a cgo build, if a base without them is ever swapped in.
RUN command -v gcc && command -v make
ENV CGO_ENABLED=1
WORKDIR /src
# The modules first, so that a change to the code does not fetch them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN make build

FROM debian:bookworm-slim
# ca-certificates: the real SUD, MOGS and Midas are https.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 coinsaga \
 && useradd --system --uid 10001 --gid coinsaga --home-dir /data --no-create-home --shell /usr/sbin/nologin coinsaga \
 && mkdir -p /data \
 && chown coinsaga:coinsaga /data
COPY --from=build /src/bin/coinsaga /usr/local/bin/coinsaga
# Numeric, so that a runtime checking "not root" (Kubernetes runAsNonRoot)
# can tell without reading /etc/passwd.
USER 10001:10001
WORKDIR /data
# SQLite (coinsaga.db), the embedded JetStream files and the sandbox's
# ledger (sandbox.json): the state a restart must find again.
VOLUME /data
# JetStream (NATS clients), /metrics /healthz /readyz and SUD's notify
# path, the sandbox providers.
EXPOSE 4222 8080 9311
# docker stop sends SIGTERM: serve drains, then the sandbox saves its
# ledger. Give it time with `docker stop -t 30` (the default is 10 s).
STOPSIGNAL SIGTERM
ENTRYPOINT ["coinsaga"]
# Every interface of the container, which is the only way a published port
# (-p) reaches a process in it; the host decides who reaches the port, so
# publish on 127.0.0.1 as above: the embedded NATS takes anyone's intents.
# The sandbox's admin API still answers loopback peers (inside the
# container) only. For real providers, replace the command:
# serve --config /etc/coinsaga/config.yaml --data-dir /data ...
# The operator console (/) is off: beyond loopback it needs a token. To
# have it, mount one and replace --console=false with
# --console-token-file /run/secrets/console-token (docs/operations.md).
CMD ["serve", "--sandbox", "--data-dir", "/data", "--nats-listen", "0.0.0.0:4222", "--http-listen", "0.0.0.0:8080", "--sandbox-listen", "0.0.0.0:9311", "--console=false"]
