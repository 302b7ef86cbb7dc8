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

// A client that keeps the cookie named `name` between its requests, as a browser does.
// req(method, path) → { status, body (parsed JSON, or null) }; sid() → the session id the
// signed cookie carries (express-session's `s:<sid>.<signature>`), or null.
function cookieClient(base, name = 'sid') {
  let cookie = null;
  return {
    async req(method, path) {
      const r = await fetch(`${base}${path}`, { method, headers: cookie === null ? {} : { cookie }, redirect: 'manual' });
      for (const c of r.headers.getSetCookie()) {
        if (c.startsWith(`${name}=`)) cookie = c.split(';')[0];
      }
      const text = await r.text();
      let body;
      try {
        body = JSON.parse(text);
      } catch {
        body = null;
      }
      return { status: r.status, body };
    },
    setCookie(value) {
      cookie = `${name}=${value}`;
    },
    sid() {
      if (cookie === null) return null;
      const v = decodeURIComponent(cookie.slice(name.length + 1));
      return v.startsWith('s:') ? v.slice(2, v.lastIndexOf('.')) : null;
    },
  };
}

module.exports = { serve, cookieClient };
