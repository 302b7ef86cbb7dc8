'use strict';
// Typed errors with stable codes, and the codes that mean "the back end failed" (fall back).

function typeError(message, code = 'ERR_INVALID_ARG') {
  const e = new TypeError(message);
  e.code = code;
  return e;
}

function rangeError(message, code = 'ERR_OUT_OF_RANGE') {
  const e = new RangeError(message);
  e.code = code;
  return e;
}

// Failures of Redis (or of the connection to it), as opposed to bad input.
const BACKEND_CODES = new Set(['ETIMEDOUT', 'ECACHEUNAVAILABLE', 'ERR_REDIS', 'ECLOSED', 'ECACHEDISABLED', 'ECIRCUITOPEN', 'ERR_CACHE_INTERNAL', 'ERR_CACHE_OVERLOAD']);

// This process has too many operations in flight (the back end is not keeping up): refused at
// once and handled like a back-end failure, never as bad input.
function overloadError(message) {
  const e = new Error(message);
  e.code = 'ERR_CACHE_OVERLOAD';
  return e;
}

function isBackendFailure(err) {
  return err != null && BACKEND_CODES.has(err.code);
}

// Ids are strings or integers; the native side checks their content.
function checkIdType(value, name) {
  const t = typeof value;
  if (t !== 'string' && t !== 'number') {
    throw typeError(`${name} must be a string or an integer (got ${value === null ? 'null' : t})`);
  }
}

function checkString(value, name) {
  if (typeof value !== 'string') {
    throw typeError(`${name} must be a string (got ${value === null ? 'null' : typeof value})`);
  }
}

module.exports = { typeError, rangeError, overloadError, isBackendFailure, checkIdType, checkString };
