/** /openapi.json (generated from the zod schemas) and interactive docs at /docs (Swagger UI, served locally). */
import path from 'node:path';
import express, { Router } from 'express';
import { openApiDocument } from './openapi';

const DOCS_PAGE = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>zeropool API</title>
  <link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/swagger-ui-bundle.js"></script>
  <script>window.ui = SwaggerUIBundle({ url: '/openapi.json', dom_id: '#swagger-ui', persistAuthorization: true });</script>
</body>
</html>`;

export function docsRoutes(): Router {
  const router = Router();
  const document = openApiDocument();
  router.get('/openapi.json', (_req, res) => {
    res.json(document);
  });
  router.get(['/docs', '/docs/'], (_req, res) => {
    res.type('html').send(DOCS_PAGE);
  });
  // The asset folder only: requiring the package itself would load the whole UI bundle into the server.
  router.use('/docs', express.static(path.dirname(require.resolve('swagger-ui-dist/package.json')), { index: false }));
  return router;
}
