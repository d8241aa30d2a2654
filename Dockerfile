# tripline container image.
#
#   docker build -t tripline .
#   docker run -d -p 8080:8080 -v tripline-data:/var/lib/tripline tripline
#   docker logs <container>    # the first start prints the generated admin token once
#
# If the build needs a proxy to reach the Debian mirror, pass it at build time
# (docker accepts these build args without an ARG line, and apt reads them):
#   docker build --build-arg http_proxy=http://proxy:3128 -t tripline .
#
# Scaling Swarm services: tripline calls the Docker Engine API at TRIPLINE_DOCKER_HOST
# (default unix:///var/run/docker.sock). The container needs that socket mounted AND
# membership of the group owning it, because tripline runs as uid 10001, not root:
#   docker run ... -v /var/run/docker.sock:/var/run/docker.sock \
#                  --group-add "$(stat -c %g /var/run/docker.sock)" tripline
# As a Swarm service use --mount type=bind,src=/var/run/docker.sock,dst=/var/run/docker.sock,
# --group <gid> and --constraint node.role==manager (only managers can scale services).
# Access to that socket is equivalent to root on the host. See deploy/docker/README.md.

# ---- build ---------------------------------------------------------------------------------
FROM debian:bookworm-slim AS build
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      g++ cmake make pkg-config \
      libpistache-dev libssl-dev libcurl4-openssl-dev \
      libsqlite3-dev libsqlitecpp-dev nlohmann-json3-dev libldns-dev libre2-dev libyaml-cpp-dev \
      libcli11-dev libsimdjson-dev libpq-dev \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
# The whole tree minus what .dockerignore leaves out (tests, docs, bench, build dirs, ...), so new
# source directories need no change here. CMake embeds migrations/*.sql and everything under ui/
# into the binary.
COPY . .
RUN cmake -S . -B build -DTRIPLINE_TESTS=OFF -DCMAKE_BUILD_TYPE=Release \
 && cmake --build build --target tripline -j"$(nproc)" \
 && strip --strip-unneeded build/tripline \
 && build/tripline --version

# ---- runtime -------------------------------------------------------------------------------
FROM debian:bookworm-slim
ARG DEBIAN_FRONTEND=noninteractive
# Shared libraries the binary links (SQLiteCpp and nlohmann-json are compiled in):
#   libpistache0, libssl3 (libssl+libcrypto), libcurl4, libsqlite3-0, libldns3 (dns-update
#   driver), libre2-9, libyaml-cpp0.7 (scale-service's kubeconfig), libsimdjson14 (request bodies),
#   libpq5 (a PostgreSQL database, docs/postgres.md); libstdc++6 is in the base.
# ca-certificates: outgoing HTTPS calls made by actions verify peers against it.
# curl: for HEALTHCHECK only; it costs ~0.5 MB here because libcurl4 is needed anyway.
# apt-get clean: not every base image carries Docker's docker-clean apt hook; without it the
#   package cache (~80 MB) would stay in this layer.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libpistache0 libssl3 libcurl4 libsqlite3-0 libldns3 libre2-9 libyaml-cpp0.7 libsimdjson14 libpq5 ca-certificates curl \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/*

# Fixed uid/gid so a bind-mounted data dir can be chowned to 10001 on the host beforehand.
RUN groupadd --gid 10001 tripline \
 && useradd --uid 10001 --gid tripline --home-dir /var/lib/tripline --no-create-home \
      --shell /usr/sbin/nologin tripline \
 && install -d -o tripline -g tripline -m 0700 /var/lib/tripline

COPY --from=build /src/build/tripline /usr/local/bin/tripline

ENV TRIPLINE_LISTEN=0.0.0.0:8080 \
    TRIPLINE_DATA_DIR=/var/lib/tripline
# Declared after the chown above so a new named volume starts out owned by tripline.
VOLUME /var/lib/tripline
EXPOSE 8080
USER tripline

# Follows TRIPLINE_LISTEN, so configure it through the environment rather than the --listen flag,
# or the probe looks in the wrong place. A wildcard listen address is probed on loopback. The
# server speaks plain HTTP; HTTPS is a proxy's job (deploy/nginx).
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
  CMD host="${TRIPLINE_LISTEN%:*}"; port="${TRIPLINE_LISTEN##*:}"; \
      case "$host" in ""|0.0.0.0|::|"[::]") host=127.0.0.1 ;; esac; \
      curl -fsS --max-time 4 -o /dev/null "http://$host:$port/healthz" || exit 1

ENTRYPOINT ["tripline"]
CMD ["serve"]
