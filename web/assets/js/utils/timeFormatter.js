// timeFormatter.js: timestamps from the API (ISO 8601) to local clock strings.

function pad(n, width = 2) {
  return String(n).padStart(width, '0');
}

/** "2025-08-06T12:34:56.789Z" -> "12:34:56" in local time; "-" for missing or invalid input. */
export function formatClock(iso) {
  const d = iso instanceof Date ? iso : new Date(iso);
  if (Number.isNaN(d.getTime())) return '-';
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** Full local date and time with milliseconds, for the expanded flow view. */
export function formatDateTime(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '-';
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

/** Seconds since the epoch (uPlot's x unit) from an ISO string; NaN when invalid. */
export function toEpochSeconds(iso) {
  return new Date(iso).getTime() / 1000;
}

/** "how long ago" for status lines: 4 -> "4 s ago". */
export function formatAgo(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  return `${Math.floor(s / 3600)} h ago`;
}

/** uPlot x-axis labels: local HH:MM:SS when ticks are under a minute apart, else HH:MM. */
export function axisTimes(splits, incrSeconds) {
  return splits.map((s) => {
    const d = new Date(s * 1000);
    const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
    return incrSeconds < 60 ? `${hm}:${pad(d.getSeconds())}` : hm;
  });
}
