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

// Clock ticks per second of /proc's CPU times (USER_HZ; 100 on Linux unless built otherwise).
let hz = null;
function ticksPerSecond() {
  if (hz === null) {
    try {
      hz = Number(require('child_process').execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8', timeout: 5000 }).trim()) || 100;
    } catch {
      hz = 100;
    }
  }
  return hz;
}

// pid → CPU seconds (user + system) of the whole process: every thread, the ended ones too.
function processCpuSeconds(pid) {
  const st = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / ticksPerSecond();
}

module.exports = { cpu, perSecond, processCpuSeconds };
