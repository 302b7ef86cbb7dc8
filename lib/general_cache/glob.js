'use strict';
// Redis glob patterns matched in this process: invalidatePattern's keys in the near cache and
// among the loads in flight.

// A Redis glob (MATCH syntax: * ? [set] [^set] [a-z] \x) → a RegExp over whole keys.
function globRegExp(pattern) {
  let re = '^';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '*') re += '[\\s\\S]*';
    else if (c === '?') re += '[\\s\\S]';
    else if (c === '\\' && i + 1 < pattern.length) re += escapeRe(pattern[++i]);
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 1);
      if (end < 0) {
        re += '\\[';
        continue;
      }
      let set = pattern.slice(i + 1, end);
      const negate = set[0] === '^';
      if (negate) set = set.slice(1);
      re += `[${negate ? '^' : ''}${set.replace(/[\\\]]/g, '\\$&')}]`;
      i = end;
    } else re += escapeRe(c);
  }
  return new RegExp(re + '$');
}

const escapeRe = (c) => c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

module.exports = { globRegExp };
