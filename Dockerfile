# syntax=docker/dockerfile:1

# Build a static binary. The Go release is pinned to a patch version (a
# security fix in Go is a change of this line); the runtime image is pinned
# to its Debian release.
FROM golang:1.26.8 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY . .
ARG VERSION=dev
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" \
        -o /out/tollgate ./cmd/tollgate \
 && mkdir -p /out/data

# Run it as nonroot (uid 65532) on a distroless base: no shell, no package
# manager, nothing but the binary and CA certificates.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/tollgate /tollgate
COPY --from=build --chown=65532:65532 /out/data /data
# Listen on all interfaces inside the container; the defaults (127.0.0.1)
# would be unreachable through published ports. The embedded default keeps
# its SQLite file and generated keys in /data.
ENV TOLLGATE_DATA_DIR=/data \
    TOLLGATE_HTTP_ADDR=0.0.0.0:8080 \
    TOLLGATE_OPS_ADDR=0.0.0.0:9090
VOLUME ["/data"]
USER nonroot:nonroot
EXPOSE 8080 9090
ENTRYPOINT ["/tollgate"]
CMD ["serve"]
