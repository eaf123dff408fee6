# zeropool API and worker image (one image, two commands; see docker-compose.yml).
FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
# Dev dependencies included: the services run TypeScript through tsx, as `npm start` does.
RUN npm ci --include=dev && npm cache clean --force
COPY tsconfig.json ./
COPY src ./src
COPY temporal ./temporal
EXPOSE 8080
CMD ["node", "--import", "tsx", "src/api-main.ts"]
