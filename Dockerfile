# Switchyard: build with the Rust toolchain, run on a slim Debian as a non-root user.
# librdkafka is built from source, vendor/rdkafka-sys (the published crate plus one fix; needs
# gcc, g++, make, and libssl-dev for TLS to the brokers: all in the rust image).
# The binary is built with profile-guided optimisation (bench/build-pgo: an instrumented build is
# trained on loopback with benchkit's broker, load and sink, then rebuilt with the profile;
# about 25 min on 2 cores). `--build-arg PGO=0` builds the plain release binary instead.

FROM rust:1.95-bookworm AS build
ARG PGO=1
WORKDIR /src
COPY Cargo.toml Cargo.lock rustfmt.toml routes.yaml ./
COPY src ./src
COPY schemas ./schemas
COPY samples ./samples
# Cargo.toml names the benchmark and bench tool targets; their sources must be present to parse it.
COPY benches ./benches
COPY bench ./bench
# librdkafka with the fix Switchyard carries (vendor/README.md).
COPY vendor ./vendor
RUN if [ "$PGO" = 1 ]; then \
      bench/build-pgo switchyard && cp target/pgo/switchyard /usr/local/bin/switchyard; \
    else \
      cargo build --release --locked --bin switchyard && cp target/release/switchyard /usr/local/bin/switchyard; \
    fi

FROM debian:bookworm-slim
# libssl3: librdkafka's TLS to the brokers (`security.protocol: SSL` / `SASL_SSL`).
# ca-certificates: the roots that HTTPS calls to downstream services and brokers are checked
# against. Not pinned: their security updates should reach the image on every rebuild.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 \
 && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin switchyard
WORKDIR /etc/switchyard
COPY --from=build /usr/local/bin/switchyard /usr/local/bin/switchyard
COPY routes.yaml ./
COPY schemas ./schemas
# The payloads routes.yaml's `tests:` read, so `switchyard test` runs in the image too.
COPY samples ./samples
USER 10001
ENV SWITCHYARD_LISTEN=0.0.0.0:8080
# HTTPS: mount a certificate and key and set SWITCHYARD_TLS_CERT and SWITCHYARD_TLS_KEY to them
# (both are read again when they change); the HEALTHCHECK then probes over TLS.
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 CMD ["switchyard", "health"]
ENTRYPOINT ["switchyard"]
CMD ["serve", "-c", "routes.yaml"]
