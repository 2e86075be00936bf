# syntax=docker/dockerfile:1
# tofu-oci-mirror as a container image: a static binary on a small base with
# git (module sources) and CA certificates, running as a non-root user.
# Not built in CI (no container engine there); deploy/ tests check that the
# Kubernetes manifests use this image's user.
#   docker build -t tofu-oci-mirror --build-arg VERSION=$(git describe --tags --always) .

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" \
      -o /out/tofu-oci-mirror ./cmd/tofu-oci-mirror

FROM alpine:3.21
RUN apk add --no-cache git ca-certificates \
 && adduser -D -H -u 65532 -g "tofu-oci-mirror" mirror
COPY --from=build /out/tofu-oci-mirror /usr/local/bin/tofu-oci-mirror
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/tofu-oci-mirror"]
CMD ["--help"]
