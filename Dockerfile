# Roster: a multi-stage build. The build stage compiles TypeScript to dist/; the runtime stage
# holds production dependencies and dist/ only, runs as the unprivileged `node` user, and
# starts `node dist/cli/main.js` (no tsx, no compiler at run time).
#   docker build -t roster .
#   docker run -p 8761:8761 -p 8762:8762 roster                      # one node
#   docker run roster agent --server roster:8761 --app orders ...    # the sidecar agent

FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` builds dist/, which needs the sources copied below.
RUN npm ci --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY src ./src
RUN npm run build

FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force
COPY --from=build /app/dist ./dist
# bin/roster.js runs dist/ (no src/ here) with the start-up V8 settings that keep an idle node ~13 MiB smaller.
COPY bin ./bin
USER node
EXPOSE 8761 8762 8763
# The node's /healthz (set ROSTER_HEALTH_URL for the agent: http://127.0.0.1:8763/healthz).
# Kubernetes ignores HEALTHCHECK and uses the manifests' probes instead.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch(process.env.ROSTER_HEALTH_URL || 'http://127.0.0.1:8762/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "bin/roster.js"]
CMD ["serve", "--host", "0.0.0.0"]
