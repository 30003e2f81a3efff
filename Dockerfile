# Sigil: multi-stage build. Only crates.io is needed at build time (Swagger UI is vendored).
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY openapi ./openapi
RUN cargo build --release --locked --bin sigil \
 && strip target/release/sigil

FROM debian:bookworm-slim
# No packages needed at run time: TLS is rustls, time zones are bundled in the binary.
RUN useradd --system --uid 10001 --no-create-home --home-dir /data sigil \
 && mkdir -p /data && chown 10001:10001 /data && chmod 0700 /data
COPY --from=build /src/target/release/sigil /usr/local/bin/sigil
USER 10001:10001
VOLUME ["/data"]
ENV SIGIL_DATA=/data \
    SIGIL_LISTEN=0.0.0.0:8443 \
    SIGIL_LOG_FORMAT=json
EXPOSE 8443
# Liveness: the listener accepts connections (bash's /dev/tcp; the image has no curl).
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8443"]
ENTRYPOINT ["/usr/local/bin/sigil"]
CMD ["serve"]
