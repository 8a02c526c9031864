# syntax=docker/dockerfile:1.7
# One image for every QuickStore role: `quickstore serve --role …` picks
# the part (docker-compose.yml, deploy/helm/quickstore).
#
# Every RUN calls a script of deploy/docker/, and nothing else: the test
# suite runs the same scripts outside Docker (deploy/docker/test-image-steps.sh),
# so the build steps are tested on machines without a Docker engine.

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS build
WORKDIR /src
# Tools first (cached layer): cmake and a C++ compiler build librdkafka.
COPY deploy/docker/build-deps.sh deploy/docker/build-deps.sh
RUN deploy/docker/build-deps.sh
COPY . .
# The cargo registry and target dir are build caches, not image layers.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    deploy/docker/build.sh /out

FROM debian:${DEBIAN_RELEASE}-slim AS runtime
COPY deploy/docker/runtime-deps.sh /tmp/runtime-deps.sh
RUN /tmp/runtime-deps.sh && rm /tmp/runtime-deps.sh
COPY --from=build /out/usr/local/bin/quickstore /usr/local/bin/quickstore
COPY --from=build --chown=10001:10001 /out/var/lib/quickstore /var/lib/quickstore
# A numeric non-root user: no passwd entry needed, and Kubernetes'
# runAsNonRoot can verify it.
USER 10001:10001
ENV QS_DATA_DIR=/var/lib/quickstore \
    QS_COMMAND_API_LISTEN=0.0.0.0:8080 \
    QS_QUERY_API_LISTEN=0.0.0.0:8090
VOLUME ["/var/lib/quickstore"]
EXPOSE 8080 8090 9464
ENTRYPOINT ["/usr/local/bin/quickstore"]
CMD ["serve"]
