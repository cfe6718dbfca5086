# A minimal image of the spate CLI and daemons, for the kubernetes-*
# targets (docs/kubernetes.md):
#
#   docker build -t spate:latest .
#
# The spate binary is static (CGO_ENABLED=0), so the image needs no libc:
# distroless/static adds CA certificates, /etc/passwd with a non-root user
# and a /tmp. A user program's image builds FROM this one and adds the
# program (docs/kubernetes.md, "A program's image").
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/spate ./cmd/spate

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/spate /opt/spate/bin/spate
ENV SPATE_HOME=/tmp/spate
USER nonroot
ENTRYPOINT ["/opt/spate/bin/spate"]
