# syntax=docker/dockerfile:1
# sidekey: a static binary on a distroless, non-root base.
#
#   docker build --build-arg VERSION="$(git describe --tags --always --dirty)" -t sidekey .
#   docker run --rm -p 127.0.0.1:8080:8080 -v "$PWD/sidekey.yaml:/etc/sidekey/sidekey.yaml:ro" sidekey
#
# scripts/check-docker-build.sh runs the build command below (read from this
# file) without Docker and checks the binary is static and serves healthz.

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# VERSION is what `sidekey version` and /_sidekey/status print (the build
# context has no .git for Go to read it from).
ARG VERSION=devel
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/sidekey .

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/sidekey /sidekey
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/sidekey", "serve"]
CMD ["--config", "/etc/sidekey/sidekey.yaml"]
