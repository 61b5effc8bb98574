# syntax=docker/dockerfile:1
# knestd image: static binaries (CGO_ENABLED=0: nothing in knestd needs cgo)
# on a minimal, non-root base: knestd, the entrypoint, and knest-supervisor,
# which the chart runs in front of knestd when sleep.enabled (README "Sleep
# and wake"; it finds knestd next to itself). The chart runs it as UID/GID 65532 with a
# read-only root filesystem; knestd writes only to its data volume and /tmp.
#
# Multi-arch without emulation: the build stage runs on the build machine's
# platform and cross-compiles for the target's.
#   docker build -t ghcr.io/knest-dev/knestd:v0.1.0 .       (hack/e2e-kind.sh does this)
#   docker buildx build --platform linux/amd64,linux/arm64 -t ghcr.io/knest-dev/knestd:v0.1.0 --push .
FROM --platform=$BUILDPLATFORM golang:1.26 AS build
ARG TARGETOS=linux
ARG TARGETARCH
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# .git is not in the build context (.dockerignore): the version stamp
# carries knest's version (the chart's) and the Kubernetes version, with
# commit "unknown".
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    export CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH && \
    ldflags="-s -w $(bash hack/ldflags.sh)" && \
    go build -trimpath -ldflags "${ldflags}" -o /out/knestd ./cmd/knestd && \
    go build -trimpath -ldflags "${ldflags}" -o /out/knest-supervisor ./cmd/knest-supervisor

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/knestd /out/knest-supervisor /usr/local/bin/
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/knestd"]
