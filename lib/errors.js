'use strict';
// Typed errors with stable codes, and the codes that mean "the back end failed" (fall back).

const { CODES, BACKEND_CODES: BACKEND_LIST } = require('./rules');

function typeError(message, code = CODES.invalidArg) {
  const e = new TypeError(message);
  e.code = code;
  return e;
}

function rangeError(message, code = CODES.outOfRange) {
  const e = new RangeError(message);
  e.code = code;
  return e;
}

// Failures of the back end (Redis, the connection to it, no back end configured, this process
// overloaded), as opposed to bad input: src/rules.rs BACKEND_FAILURE_CODES says why each is one.
const BACKEND_CODES = new Set(BACKEND_LIST);

// This process has too many operations in flight (the back end is not keeping up): refused at
// once and handled like a back-end failure, never as bad input.
function overloadError(message) {
  const e = new Error(message);
  e.code = CODES.overload;
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
