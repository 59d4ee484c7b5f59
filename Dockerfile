# orgsync container: a static-ish Rust binary on distroless (glibc, no shell), running as
# a non-root user, with the default config and a volume for the SQLite file.
#   docker build -t orgsync .
#   docker run -p 8080:8080 -p 127.0.0.1:9090:9090 -v orgsync-data:/var/lib/orgsync \
#     -e STRIPE_WEBHOOK_SECRET=whsec_… -e SCALEKIT_ENVIRONMENT_URL=https://… \
#     -e SCALEKIT_CLIENT_ID=… -e SCALEKIT_CLIENT_SECRET=… \
#     -e ORGSYNC_ADMIN_TOKEN="$(openssl rand -hex 32)" orgsync
# Webhooks are served on 8080 (publish it, behind your TLS proxy); /metrics and the admin
# API only on 9090 (ORGSYNC_ADMIN_LISTEN): keep that port on a private network.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin orgsync \
 && mkdir -p /out/data \
 && cp target/release/orgsync /out/orgsync

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/orgsync /usr/local/bin/orgsync
COPY config/orgsync.toml /etc/orgsync/orgsync.toml
COPY --from=build --chown=65532:65532 /out/data /var/lib/orgsync
ENV ORGSYNC_CONFIG=/etc/orgsync/orgsync.toml \
    ORGSYNC_LISTEN=0.0.0.0:8080 \
    ORGSYNC_ADMIN_LISTEN=0.0.0.0:9090 \
    ORGSYNC_DATABASE_URL=sqlite:///var/lib/orgsync/orgsync.db \
    ORGSYNC_LOG_FORMAT=json
VOLUME ["/var/lib/orgsync"]
EXPOSE 8080 9090
USER 65532:65532
# `orgsync healthcheck` GETs /healthz on the configured listen address (0.0.0.0 → 127.0.0.1).
HEALTHCHECK --interval=10s --timeout=5s --start-period=5s --retries=3 \
  CMD ["/usr/local/bin/orgsync", "healthcheck"]
# SIGTERM drains in-flight work within [worker] shutdown_grace_seconds (8 s, under Docker's
# 10 s stop timeout).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/orgsync"]
CMD ["serve"]
