# syntax=docker/dockerfile:1
# Clarion Collector image: build with dev dependencies, run on a slim Node 24 image with production
# dependencies only, as the unprivileged `node` user, the collector itself as PID 1 (it handles SIGTERM,
# SIGINT and SIGHUP itself and starts no child processes, so no init is needed; `docker run --init` works too).
#   docker build -t clarion-collector .
#   docker run -p 2055:2055/udp -p 4739:4739/udp -p 6343:6343/udp -p 8081:8081 -v clarion-data:/data clarion-collector
ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /build/dist ./dist
COPY bin ./bin
RUN ln -s /app/bin/clarion-collector.js /usr/local/bin/clarion-collector \
 && mkdir -p /data && chown node:node /data && chmod 0700 /data

# Templates, sampling rates, the SQLite database and the HTTP outputs' spools: keep /data on a volume.
ENV CLARION_COLLECTOR_DATA_DIR=/data
VOLUME ["/data"]
WORKDIR /data
USER node

# UDP: NetFlow, IPFIX, sFlow (every port decodes every protocol). TCP: /health, /metrics, /templates, /exporters.
EXPOSE 2055/udp 4739/udp 6343/udp 8081/tcp

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.CLARION_COLLECTOR_HTTP_PORT || 8081) + '/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "/app/bin/clarion-collector.js"]
CMD []
