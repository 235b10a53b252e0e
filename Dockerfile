# syntax=docker/dockerfile:1
# FedSeg aggregation server. Build: `docker build -t fedseg-server .`; run: docs/DEPLOY.md, "The server
# in a container". The image runs the compiled server (dist/) under plain node as an unprivileged user;
# its state (SQLite database, checkpoints) lives in the /var/lib/fedseg volume.

FROM node:20-bookworm-slim AS build
# better-sqlite3 compiles from source where its prebuilt binary cannot be downloaded.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /build
COPY package.json package-lock.json ./
# Packages without their install scripts: Electron and tfjs-node would download large binaries that the
# server never uses (the native conv addon is left out for the same reason: the server trains nothing).
RUN npm ci --ignore-scripts --no-audit --no-fund \
 && npm rebuild better-sqlite3
COPY tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY bin ./bin
COPY core ./core
COPY cli ./cli
COPY server ./server
COPY site ./site
COPY demo ./demo
COPY experiment ./experiment
COPY bench ./bench
# What `npm ci` would have run for this package (see package.json "install"), less the native addon;
# then only the runtime packages stay.
RUN node scripts/build-gradients.js \
 && node scripts/build-dist.js \
 && npm prune --omit=dev --omit=optional --no-audit --no-fund

FROM node:20-bookworm-slim
ENV NODE_ENV=production
RUN groupadd --system --gid 10001 fedseg \
 && useradd --system --uid 10001 --gid fedseg --home-dir /var/lib/fedseg --no-create-home --shell /usr/sbin/nologin fedseg \
 && install -d -o fedseg -g fedseg -m 0700 /var/lib/fedseg
WORKDIR /opt/fedseg
# Owned by root: the server cannot change its own code.
COPY --from=build /build/package.json ./
COPY --from=build /build/node_modules ./node_modules
COPY --from=build /build/bin ./bin
COPY --from=build /build/dist ./dist
COPY deploy/healthcheck.js ./deploy/healthcheck.js
USER fedseg
VOLUME ["/var/lib/fedseg"]
EXPOSE 8443
HEALTHCHECK --interval=30s --timeout=6s --start-period=60s --retries=3 CMD ["node", "/opt/fedseg/deploy/healthcheck.js"]
# Mount the federation config at /etc/fedseg/federation.json and the TLS pair at /etc/fedseg/tls/; give the
# admin token as a mounted file named by FEDSEG_ADMIN_TOKEN_FILE (or in FEDSEG_ADMIN_TOKEN). Site
# management runs the same entrypoint: `docker exec CONTAINER node /opt/fedseg/bin/fedseg.js server add-site ...`.
ENTRYPOINT ["node", "/opt/fedseg/bin/fedseg.js", "server"]
CMD ["start", "--config", "/etc/fedseg/federation.json", "--db", "/var/lib/fedseg/server.db", "--host", "0.0.0.0", "--port", "8443", "--cert", "/etc/fedseg/tls/server.pem", "--key", "/etc/fedseg/tls/server.key"]
