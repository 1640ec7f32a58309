// Linux process memory for the benches (bench/run.mjs, bench/whisper.mjs).
import { readFileSync, readdirSync } from 'node:fs';

// Linux process memory: peak RSS (VmHWM) of one process, PSS summed over a process tree.
export function status(pid, key) {
  try {
    const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith(key + ':'));
    return line ? Number(line.split(/\s+/)[1]) * 1024 : null;
  } catch { return null; }
}
export function treePss(root) {
  const children = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (!children.has(ppid)) children.set(ppid, []);
      children.get(ppid).push(Number(d));
    } catch { /* gone */ }
  }
  let total = 0;
  const stack = [root];
  while (stack.length) {
    const pid = stack.pop();
    try {
      const m = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8').match(/^Pss:\s+(\d+)/m);
      if (m) total += Number(m[1]) * 1024;
    } catch { /* gone */ }
    stack.push(...(children.get(pid) ?? []));
  }
  return total;
}
/** Run `fn` while sampling `sample()` every 250 ms; resolves to [result, peak sample]. */
export async function sampling(sample, fn) {
  let peak = sample() ?? 0;
  const timer = setInterval(() => { peak = Math.max(peak, sample() ?? 0); }, 250);
  try {
    const result = await fn();
    peak = Math.max(peak, sample() ?? 0);
    return [result, peak];
  } finally { clearInterval(timer); }
}
