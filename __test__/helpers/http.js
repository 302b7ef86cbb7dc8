'use strict';
// An Express app listening on a free loopback port, for the suites that drive one over HTTP.

// → { base: 'http://127.0.0.1:port', close() } (close drops open connections, then waits).
async function serve(app) {
  const server = await new Promise((resolve, reject) => {
    const s = app.listen(0, '127.0.0.1', (err) => (err ? reject(err) : resolve(s)));
  });
  return {
    base: `http://127.0.0.1:${server.address().port}`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

module.exports = { serve };
