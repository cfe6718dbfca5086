# A minimal image of the spate CLI and daemons, for the kubernetes-*
# targets (docs/kubernetes.md):
#
#   docker build -t spate:latest .
#
# The spate binary is static (CGO_ENABLED=0), so the image needs no libc:
# distroless/static adds CA certificates, /etc/passwd and a /tmp. A user
# program's image builds FROM this one and adds the program
# (docs/kubernetes.md, "A program's image").
#
# It runs as root: the kubelet writes the files of a pod's TLS Secret
# (/opt/spate/tls, mode 0600, which the keystore check requires) owned by
# root, so a non-root user could not open them and no cluster would start
# (an fsGroup would make them group-readable, which is refused too).
# TestImageReadsItsKeystore (internal/provider/kubernetes) checks it.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/spate ./cmd/spate

FROM gcr.io/distroless/static-debian12
COPY --from=build /out/spate /opt/spate/bin/spate
ENV SPATE_HOME=/tmp/spate
ENTRYPOINT ["/opt/spate/bin/spate"]
