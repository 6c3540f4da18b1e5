# Switchyard: build with the Rust toolchain, run on a slim Debian as a non-root user.
# librdkafka is built from source by the rdkafka crate (needs gcc, g++, make: in the rust image).

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock rustfmt.toml ./
COPY src ./src
COPY samples ./samples
# Cargo.toml names the benchmark and bench tool targets; their sources must be present to parse it.
COPY benches ./benches
COPY bench ./bench
RUN cargo build --release --locked --bin switchyard

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin switchyard
WORKDIR /etc/switchyard
COPY --from=build /src/target/release/switchyard /usr/local/bin/switchyard
COPY routes.yaml ./
COPY schemas ./schemas
USER 10001
ENV SWITCHYARD_LISTEN=0.0.0.0:8080
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 CMD ["switchyard", "health"]
ENTRYPOINT ["switchyard"]
CMD ["serve", "-c", "routes.yaml"]
