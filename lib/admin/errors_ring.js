'use strict';
// The recent back-end errors of the admin page: the last `max` 'error' events of a cache,
// each reduced to { at, service, code, message } (a message at most 300 characters). The
// library's messages never hold a token or a password; a URL's credentials are masked here
// as well, so that nothing an app adds to an error ends up on the page.

const MAX_MESSAGE_CHARS = 300;

class ErrorRing {
  constructor(max) {
    this.max = max;
    this.items = [];
    this.total = 0;
  }

  push(err, service) {
    const message = String(err && err.message !== undefined ? err.message : err)
      .replace(/\/\/[^@/\s]*@/g, '//***@')
      .slice(0, MAX_MESSAGE_CHARS);
    const code = err && typeof err.code === 'string' ? err.code : null;
    this.items.push({ at: Date.now(), service: typeof service === 'string' ? service : null, code, message });
    if (this.items.length > this.max) this.items.shift();
    this.total++;
  }

  // Newest first, with the count since the router was made.
  list() {
    return { total: this.total, recent: this.items.slice().reverse() };
  }
}

module.exports = { ErrorRing };
