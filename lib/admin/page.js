'use strict';
/* global document, EventSource */
// The operator's page: live figures from the event stream, lookups (GET) and actions (POST with
// a JSON body; the server checks that they come from this page's origin). Every value from the
// server is written as text, never as HTML.
(function () {
  const base = document.body.dataset.base || '';
  const $ = (id) => document.getElementById(id);

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }

  function say(text) {
    $('message').textContent = text;
  }

  async function call(method, path, body) {
    const init = { method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const res = await fetch(base + path, init);
    let data;
    try {
      data = await res.json();
    } catch {
      data = { error: 'not JSON' };
    }
    if (!res.ok) throw new Error((data && data.error) || 'HTTP ' + res.status);
    return data;
  }

  // Live figures. Rates are per second, from the difference between two ticks.
  let previous = null;
  function render(s) {
    const circuit = $('circuit');
    circuit.textContent = s.circuit;
    circuit.className = s.circuit === 'closed' ? 'ok' : 'bad';
    const enabled = $('enabled');
    enabled.textContent = s.enabled ? 'yes' : 'no (reads fall back to the loaders)';
    enabled.className = s.enabled ? 'ok' : 'bad';
    $('ping').textContent = s.health.pong ? s.health.pong + ' in ' + s.health.ms + ' ms' : 'failed: ' + (s.health.error || '?');
    $('in-flight').textContent = s.inFlight;
    $('pubsub').textContent = s.pubsub ? (s.pubsub.connected ? 'subscribed' : s.pubsub.subscribed ? 'subscribing' : 'not subscribed') + ', resubscribes ' + s.pubsub.resubscribes : 'n/a';
    $('revocations').textContent = s.revocation ? s.revocation.pending : 'n/a';

    const tbody = $('rates').tBodies[0];
    tbody.replaceChildren();
    const dt = previous ? Math.max((s.at - previous.at) / 1000, 0.001) : null;
    for (const [service, c] of Object.entries(s.counters)) {
      const p = previous && previous.counters[service];
      const rate = (k) => (p ? ((c[k] - p[k]) / dt).toFixed(1) : '…');
      const reads = c.hits + c.misses;
      const tr = el('tr');
      tr.dataset.service = service;
      tr.append(el('td', service), el('td', rate('hits')), el('td', rate('misses')), el('td', rate('fallbacks')), el('td', rate('errors')), el('td', reads ? ((100 * c.hits) / reads).toFixed(1) + ' %' : '–'));
      tbody.append(tr);
    }
    $('near').textContent = s.near ? 'hits ' + s.near.hits + ', misses ' + s.near.misses + ', size ' + s.near.size + (s.near.trusted ? ', trusted' : ', not trusted (answers nothing)') : 'off';
    $('limit-decisions').textContent = 'allowed ' + s.rateLimit.allowed + ', blocked ' + s.rateLimit.blocked;

    $('errors-total').textContent = s.errors.total + ' since this page\'s router started; the last ' + s.errors.recent.length + ':';
    const eb = $('errors').tBodies[0];
    eb.replaceChildren();
    for (const e of s.errors.recent) {
      const tr = el('tr');
      tr.append(el('td', new Date(e.at).toLocaleTimeString()), el('td', e.service), el('td', e.code, 'mono'), el('td', e.message));
      eb.append(tr);
    }
    previous = s;
  }

  function connect() {
    const es = new EventSource(base + '/api/events');
    es.onopen = () => ($('live').textContent = 'live (one update a second)');
    es.onmessage = (ev) => {
      try {
        render(JSON.parse(ev.data));
      } catch (err) {
        say('bad update: ' + err.message);
      }
    };
    es.onerror = () => ($('live').textContent = 'disconnected; retrying…');
  }

  // Sessions of a user: list, revoke one, revoke all.
  async function showSessions(userId) {
    const out = $('sessions-result');
    const data = await call('GET', '/api/sessions?userId=' + encodeURIComponent(userId));
    out.replaceChildren();
    out.append(el('p', data.count + ' session(s) of user ' + data.userId));
    if (data.count === 0) return;
    const table = el('table');
    table.id = 'sessions-table';
    const head = el('tr');
    head.append(el('th', 'token hash'), el('th', 'expires'), el('th', ''));
    table.append(el('thead'), el('tbody'));
    table.tHead.append(head);
    for (const s of data.sessions) {
      const tr = el('tr');
      tr.dataset.tokenHash = s.tokenHash;
      const b = el('button', 'Revoke');
      b.type = 'button';
      b.className = 'revoke';
      b.addEventListener('click', () =>
        act(async () => {
          const r = await call('POST', '/api/sessions/revoke', { tokenHash: s.tokenHash });
          say(r.revoked ? 'session revoked' : 'no such session (already gone)');
          await showSessions(userId);
        }),
      );
      tr.append(el('td', s.tokenHash, 'mono'), el('td', s.expiresAt || (s.present ? '?' : 'gone')), el('td').appendChild(b).parentNode);
      table.tBodies[0].append(tr);
    }
    const all = el('button', 'Revoke all sessions of user ' + data.userId);
    all.type = 'button';
    all.id = 'revoke-all';
    all.addEventListener('click', () =>
      act(async () => {
        const r = await call('POST', '/api/sessions/revoke-all', { userId: data.userId });
        say(r.revoked + ' session(s) revoked');
        await showSessions(userId);
      }),
    );
    out.append(table, all);
  }

  // Rate limits of an address: status per endpoint, reset one or all (after a CAPTCHA, say).
  async function showLimits(ip) {
    const out = $('limits-result');
    const data = await call('GET', '/api/limits?ip=' + encodeURIComponent(ip));
    out.replaceChildren();
    const entries = Object.entries(data.endpoints);
    const status = el('p', entries.length === 0 ? 'no counters for ' + data.ip : entries.length + ' counter(s) for ' + data.ip);
    status.id = 'limits-status';
    out.append(status);
    if (entries.length === 0) return;
    const table = el('table');
    table.id = 'limits-table';
    table.append(el('thead'), el('tbody'));
    const head = el('tr');
    head.append(el('th', 'endpoint'), el('th', 'count'), el('th', 'limit'), el('th', 'resets in'), el('th', ''));
    table.tHead.append(head);
    for (const [endpoint, s] of entries) {
      const tr = el('tr');
      tr.dataset.endpoint = endpoint;
      const blocked = s.current >= s.limit;
      const b = el('button', 'Reset');
      b.type = 'button';
      b.className = 'reset';
      b.addEventListener('click', () =>
        act(async () => {
          const r = await call('POST', '/api/limits/reset', { ip: data.ip, endpoint });
          say(r.removed + ' counter(s) reset');
          await showLimits(ip);
        }),
      );
      tr.append(el('td', endpoint, 'mono'), el('td', s.current, blocked ? 'bad' : ''), el('td', s.limit), el('td', s.resetIn + ' s'), el('td').appendChild(b).parentNode);
      table.tBodies[0].append(tr);
    }
    out.append(table);
  }

  async function showLock(resource, id) {
    const out = $('locks-result');
    const s = await call('GET', '/api/locks?resource=' + encodeURIComponent(resource) + '&id=' + encodeURIComponent(id));
    out.replaceChildren();
    const p = el('p', s.locked ? 'held by ' + s.owner + ', ' + s.ttl + ' s left' + (s.fence !== undefined ? ', fence ' + s.fence : '') : 'free');
    p.id = 'lock-status';
    out.append(p);
  }

  function act(fn) {
    say('');
    fn().catch((err) => say(err.message));
  }

  function onSubmit(id, fn) {
    $(id).addEventListener('submit', (ev) => {
      ev.preventDefault();
      const f = new FormData(ev.target);
      act(() => fn(f));
    });
  }

  onSubmit('sessions-form', (f) => showSessions(f.get('userId')));
  onSubmit('limits-form', (f) => showLimits(f.get('ip')));
  onSubmit('locks-form', (f) => showLock(f.get('resource'), f.get('id')));
  connect();
})();
