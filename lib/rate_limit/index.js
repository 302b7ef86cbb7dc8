'use strict';
// rateLimiter: fixed-window limits per IP and endpoint. This file only gathers the module's
// names; each job lives in its own file (limiter, endpoints, addresses, block_cache,
// insurance, middleware).

const { RateLimiter } = require('./limiter');
const { parseRateLimits, endpointOf, DEFAULT_LIMITS } = require('./endpoints');
const { parseIpv6Subnet, normalizeIp } = require('./addresses');
const { BlockCache } = require('./block_cache');
const { parseInsurance, InsuranceLimiter } = require('./insurance');

module.exports = { RateLimiter, parseRateLimits, parseInsurance, parseIpv6Subnet, normalizeIp, endpointOf, DEFAULT_LIMITS, BlockCache, InsuranceLimiter };
