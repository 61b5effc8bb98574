# syntax=docker/dockerfile:1
# knestd image: a static binary (CGO_ENABLED=0: nothing in knestd needs cgo)
# on a minimal, non-root base. The chart runs it as UID/GID 65532 with a
# read-only root filesystem; knestd writes only to its data volume and /tmp.
# Build: docker build -t knest/knestd:dev .   (hack/e2e-kind.sh does this)
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# .git is not in the build context (.dockerignore): the version stamp
# carries the Kubernetes version, with commit "unknown".
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w $(bash hack/ldflags.sh)" -o /out/knestd ./cmd/knestd

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/knestd /usr/local/bin/knestd
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/knestd"]
