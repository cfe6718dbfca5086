// Formatting of figures for people: counts, rates, durations, times.

const int = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const dec = new Intl.NumberFormat('en-US', { maximumFractionDigits: 1 });

export function count(n) {
  if (n === undefined || n === null || Number.isNaN(n)) return '–';
  return int.format(n);
}

// rate formats records per second: 950/s, 12.3k/s, 4.1M/s.
export function rate(r) {
  if (r === undefined || r === null || Number.isNaN(r)) return '–';
  if (r < 1000) return dec.format(r) + '/s';
  if (r < 1e6) return dec.format(r / 1e3) + 'k/s';
  return dec.format(r / 1e6) + 'M/s';
}

// duration formats milliseconds: 850ms, 12s, 3m 4s, 2h 5m, 3d 4h.
export function duration(ms) {
  if (ms === undefined || ms === null || ms < 0 || Number.isNaN(ms)) return '–';
  if (ms < 1000) return Math.round(ms) + 'ms';
  let s = Math.floor(ms / 1000);
  if (s < 60) return (ms / 1000 < 10 ? dec.format(ms / 1000) : s) + 's';
  const d = Math.floor(s / 86400); s -= d * 86400;
  const h = Math.floor(s / 3600); s -= h * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${m}m`;
  return `${m}m ${s}s`;
}

// time formats a Unix time in milliseconds as local date and time.
export function time(ms) {
  if (!ms || ms < 0) return '–';
  const d = new Date(ms);
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

// bytes formats a size: 512 B, 3.2 KiB, 1.5 GiB.
export function bytes(n) {
  if (n === undefined || n === null || n < 0 || Number.isNaN(n)) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i === 0 ? int.format(n) : dec.format(n)) + ' ' + units[i];
}

// percent formats a ratio in [0, 1].
export function percent(r) {
  if (r === undefined || r === null || Number.isNaN(r)) return '–';
  return Math.round(r * 100) + '%';
}

// watermark formats an event-time watermark (ms); Flink's "no watermark"
// is Long.MIN_VALUE, shown as –.
export function watermark(ms) {
  if (ms === undefined || ms === null || Number.isNaN(ms) || ms <= -9e15 || ms >= 9e15) return 'none';
  return time(ms);
}
