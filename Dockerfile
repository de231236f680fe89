# syntax=docker/dockerfile:1
# The orderflow binaries in one image: orderflow (ops CLI: topics, schema registration,
# lag exporter, dead-letter redrive), order-producer and order-consumer. Used by
# docker-compose.yml. Stages: `dashboard` (Node.js) builds the lag dashboard's chart
# library, `build` (Rust, no Node.js) builds the binaries with it embedded, `runtime`
# gets the binaries.
#
#   docker build -t orderflow:local .

ARG RUST_VERSION=1.95
ARG NODE_VERSION=22

# The lag dashboard's chart library (uPlot, pinned by its package-lock.json): Node.js
# stays out of the Rust build; this stage only fills crates/lag/dashboard/vendor/.
FROM node:${NODE_VERSION}-bookworm-slim AS dashboard
WORKDIR /src
COPY scripts/build-dashboard.sh scripts/
COPY crates/lag/dashboard/package.json crates/lag/dashboard/package-lock.json crates/lag/dashboard/
RUN scripts/build-dashboard.sh

FROM rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
COPY . .
# crates/lag/build.rs embeds these into the binaries.
COPY --from=dashboard /src/crates/lag/dashboard/vendor/ crates/lag/dashboard/vendor/
# Cache mounts keep the crates.io downloads and the target dir between builds.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bins \
    && mkdir -p /out \
    && cp target/release/orderflow target/release/order-producer target/release/order-consumer /out/

FROM debian:bookworm-slim AS runtime
# curl: the compose healthchecks call /healthz and /readyz.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin orderflow
COPY --from=build /out/ /usr/local/bin/
COPY topics.yaml /etc/orderflow/topics.yaml
COPY schemas/avro/ /etc/orderflow/schemas/
USER orderflow
ENV LOG_FORMAT=json
CMD ["orderflow", "--help"]
