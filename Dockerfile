# knestd image: a static binary on a minimal, non-root base.
# Build: docker build -t knest/knestd:dev .   (hack/e2e-kind.sh does this)
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w $(bash hack/ldflags.sh)" -o /out/knestd ./cmd/knestd

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/knestd /usr/local/bin/knestd
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/knestd"]
