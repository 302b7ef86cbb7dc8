'use strict';
// Which client a hit counts for: an address in any of its forms → one bucket per client, from
// the `ipv6Subnet` option and, for a request, from req.ip (so Express's `trust proxy` decides).

const net = require('net');
const { typeError, rangeError } = require('../errors');

// One client is one counter whatever form its address arrives in: IPv4-mapped IPv6
// (`::ffff:7.7.7.7`) is the IPv4 address, brackets, zone ids (`%eth0`) and ports (`1.2.3.4:5678`,
// `[2001:db8::1]:443`) are dropped, IPv6 is spelled canonically (RFC 5952) and, unless
// `ipv6Subnet` is false, grouped by its prefix (`2001:db8:0:ab00::/56`): one IPv6 subscriber
// usually holds a whole /56 or /64. The bucket form itself (`…::/56`) reads back as the bucket.

const DEFAULT_IPV6_SUBNET = 56;
// What the middleware counts a request under when its address is missing or not an address
// (a misconfigured proxy, a forged header): one shared bucket, so garbage cannot mint counters.
const UNKNOWN_CLIENT = 'unknown';
const MAX_ADDRESS_CHARS = 100;
const IPV4_PORT = /^(\d{1,3}(?:\.\d{1,3}){3}):\d{1,5}$/;
const PORT_SUFFIX = /^:\d{1,5}$/;
const PREFIX_SUFFIX = /^\/\d{1,3}$/;

// The `ipv6Subnet` option → a prefix length 1…128, or false (every IPv6 address on its own).
function parseIpv6Subnet(raw) {
  if (raw === undefined || raw === null) return DEFAULT_IPV6_SUBNET;
  if (raw === false) return false;
  if (typeof raw !== 'number') throw typeError('ipv6Subnet must be a prefix length from 1 to 128, or false');
  if (!Number.isInteger(raw) || raw < 1 || raw > 128) {
    throw rangeError(`ipv6Subnet must be a whole number from 1 to 128, or false (got ${raw})`);
  }
  return raw;
}

// An IPv6 address (validated by net.isIPv6, no zone) → its eight 16-bit groups.
function ipv6Groups(s) {
  const halves = s.split('::');
  const parse = (part) => {
    if (part === '') return [];
    const out = [];
    for (const g of part.split(':')) {
      if (g.includes('.')) {
        const b = g.split('.').map(Number);
        out.push((b[0] << 8) | b[1], (b[2] << 8) | b[3]);
      } else {
        out.push(parseInt(g, 16));
      }
    }
    return out;
  };
  const head = parse(halves[0]);
  if (halves.length === 1) return head;
  const tail = parse(halves[1]);
  return [...head, ...new Array(8 - head.length - tail.length).fill(0), ...tail];
}

// Eight groups → the RFC 5952 spelling (lower case, the longest run of two or more zero groups
// as `::`, the first one on a tie).
function ipv6Text(g) {
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (a) => a.map((x) => x.toString(16)).join(':');
  if (best === -1) return hex(g);
  return `${hex(g.slice(0, best))}::${hex(g.slice(best + bestLen))}`;
}

// net.isIPv4 without its regular expression (the test of every hit's address): four decimal
// parts of 0-255, no leading zero, nothing else. __test__/hardening_rate_limit.test.js checks
// it against net.isIPv4.
function isDottedQuad(s) {
  const n = s.length;
  if (n < 7 || n > 15) return false;
  let parts = 0;
  let v = 0;
  let digits = 0;
  for (let i = 0; i <= n; i++) {
    const c = i < n ? s.charCodeAt(i) : 46;
    if (c === 46) {
      if (digits === 0 || v > 255 || ++parts > 4) return false;
      v = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57) {
      if (digits === 1 && v === 0) return false;
      if (++digits > 3) return false;
      v = v * 10 + (c - 48);
    } else {
      return false;
    }
  }
  return parts === 4;
}

// An address in any of the forms above → its bucket ('7.7.7.7', '2001:db8:0:ab00::/56', or the
// whole canonical IPv6 address when `subnet` is false); null when it is not an address.
function normalizeIp(raw, subnet) {
  if (typeof raw !== 'string') return null;
  let s = raw;
  if (isDottedQuad(s)) return s; // the common case, answered first
  s = s.trim();
  if (s.length === 0 || s.length > MAX_ADDRESS_CHARS) return null;
  if (s[0] === '[') {
    const end = s.indexOf(']');
    if (end === -1) return null;
    const rest = s.slice(end + 1);
    if (rest !== '' && !PORT_SUFFIX.test(rest)) return null;
    s = s.slice(1, end);
  } else {
    const m = IPV4_PORT.exec(s);
    if (m !== null) s = m[1];
  }
  const zone = s.indexOf('%');
  if (zone !== -1) s = s.slice(0, zone);
  const slash = s.indexOf('/');
  if (slash !== -1) {
    if (!PREFIX_SUFFIX.test(s.slice(slash))) return null;
    s = s.slice(0, slash);
  }
  if (net.isIPv4(s)) return s;
  if (!net.isIPv6(s)) return null;
  const g = ipv6Groups(s.toLowerCase());
  if (g.length !== 8 || g.some((x) => !(x >= 0 && x <= 0xffff))) return null;
  // IPv4-mapped (::ffff:a.b.c.d, any spelling) → the IPv4 address
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff) {
    return `${g[6] >> 8}.${g[6] & 255}.${g[7] >> 8}.${g[7] & 255}`;
  }
  if (subnet === false) return ipv6Text(g);
  for (let i = 0; i < 8; i++) {
    const keep = Math.min(16, Math.max(0, subnet - i * 16));
    g[i] &= keep === 0 ? 0 : (0xffff << (16 - keep)) & 0xffff;
  }
  return `${ipv6Text(g)}/${subnet}`;
}

// req.ip, so that Express's `trust proxy` setting decides; the socket address without Express.
// Normalised to its bucket (see normalizeIp); a missing address or one that is no address
// counts under 'unknown'.
function clientIp(req, subnet) {
  const ip = req.ip != null ? req.ip : req.socket && req.socket.remoteAddress;
  const bucket = normalizeIp(ip, subnet);
  return bucket === null ? UNKNOWN_CLIENT : bucket;
}

// True when the request carries X-Forwarded-For but the app does not trust any proxy: req.ip is
// then the socket address and the header is ignored (right when the header is a client's lie,
// wrong when the app really sits behind a proxy and forgot `app.set('trust proxy', …)`).
function untrustedForwardedFor(req) {
  const h = req.headers;
  if (!h || h['x-forwarded-for'] === undefined) return false;
  const app = req.app;
  if (!app || typeof app.get !== 'function') return true;
  return !app.get('trust proxy');
}

const XFF_WARNING =
  'X-Forwarded-For arrived but Express\'s "trust proxy" is off: rate limits count the socket address '
  + '(the proxy\'s, if there is one) and ignore the header. Behind a reverse proxy, set '
  + 'app.set(\'trust proxy\', …) to the proxy\'s address or hop count.';

module.exports = { parseIpv6Subnet, normalizeIp, isDottedQuad, clientIp, untrustedForwardedFor, XFF_WARNING };
