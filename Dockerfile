# zeropool API and worker image (one image, two commands; see docker-compose.yml and deploy/helm/zeropool).
# Node: the current LTS line. The services run TypeScript through tsx (a runtime dependency), as `npm start` does.
ARG NODE_IMAGE=node:26-slim

# Stage 1: production dependencies only (no test tools, no compilers left behind).
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# Stage 2: the runtime, as the unprivileged `node` user (uid 1000), with nothing writable but its data folder.
FROM ${NODE_IMAGE}
ENV NODE_ENV=production \
    ZEROPOOL_DATA_DIR=/var/lib/zeropool \
    HOST=0.0.0.0 \
    PORT=8080
WORKDIR /app
COPY --from=deps --chown=root:root /app/node_modules ./node_modules
COPY --chown=root:root package.json tsconfig.json ./
COPY --chown=root:root src ./src
COPY --chown=root:root temporal ./temporal
# The spool folder exists in the image so that a fresh volume mounted there takes the node user's ownership.
RUN mkdir -p /var/lib/zeropool/ledger-spool && chown -R node:node /var/lib/zeropool
USER node
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
CMD ["node", "--import", "tsx", "src/api-main.ts"]
