'use strict';
// CPU per thread of a process, from /proc (Linux), in clock ticks (100 per second per core).

const fs = require('fs');

// pid → { 'name#tid': utime + stime in ticks }
function cpu(pid) {
  const out = {};
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      const st = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = st.slice(st.indexOf('(') + 1, st.lastIndexOf(')'));
      const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
      out[`${name}#${tid}`] = Number(f[11]) + Number(f[12]);
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

function perSecond(before, after, secs) {
  return Object.entries(after)
    .map(([k, v]) => [k, Math.round((v - (before[k] || 0)) / secs)])
    .filter(([, v]) => v > 1);
}

module.exports = { cpu, perSecond };
