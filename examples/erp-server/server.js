'use strict';
// `npm start`: the example ERP on 127.0.0.1:$PORT (default 3000), on memory:// unless REDIS_URL
// is set. SIGINT/SIGTERM close the server and the cache.
const { createApp } = require('./app');

const { app, cache, backend } = createApp();
const port = process.env.PORT === undefined ? 3000 : Number(process.env.PORT);
const server = app.listen(port, '127.0.0.1', () => {
  const { port: bound } = server.address();
  console.log(`erp-server listening on http://127.0.0.1:${bound} (cache: ${backend})`);
});

server.on('error', (err) => {
  console.error(`erp-server: ${err.message}`);
  process.exitCode = 1;
});

let closing = false;
function close(signal) {
  if (closing) return;
  closing = true;
  console.log(`erp-server: ${signal}, shutting down`);
  server.close(() => cache.shutdown().then(() => console.log('erp-server: closed')));
  server.closeAllConnections();
}
process.on('SIGINT', close);
process.on('SIGTERM', close);
