// The dates feeds write: RFC 822 (RSS's pubDate, `Tue, 03 Jun 2026 09:39:21 GMT`) and RFC 3339 /
// W3C-DTF (Atom, Dublin Core's dc:date, `2026-06-03T09:39:21+02:00`, or just `2026-06-03`).
// Each parser accepts the other format too, since feeds mix them up.

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];

/** RFC 822's zone names, in minutes east of UTC. */
const ZONES: Record<string, number> = {
  UT: 0, UTC: 0, GMT: 0, Z: 0,
  EST: -300, EDT: -240, CST: -360, CDT: -300, MST: -420, MDT: -360, PST: -480, PDT: -420,
};

const RFC822 =
  /^\s*(?:[A-Za-z]+,?\s*)?(\d{1,2})\s+([A-Za-z]+)\.?\s+(\d{2,4})\s+(\d{1,2}):(\d{2})(?::(\d{2}))?\s*([+-]\d{4}|[A-Za-z]+)?\s*$/;
const W3CDTF =
  /^\s*(\d{4})(?:-(\d{2})(?:-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?\s*([Zz]|[+-]\d{2}:?\d{2})?)?)?)?\s*$/;

/** Milliseconds since the epoch of a date and time given as UTC fields; NaN when out of range. */
function utc(year: number, month: number, day: number, hour: number, minute: number, second: number): number {
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 24 || minute > 59 || second > 60) return NaN;
  const ms = Date.UTC(year, month - 1, day, hour, minute, Math.min(second, 59));
  // Date.UTC rolls 31 February over into March: refuse such a date instead.
  return new Date(ms).getUTCDate() === day || hour === 24 ? ms : NaN;
}

/** An RFC 822 date (`Tue, 03 Jun 2026 09:39:21 GMT`), in ms since the epoch; NaN when it is not one. */
export function parseRfc822(text: string): number {
  const m = RFC822.exec(text);
  if (!m) return NaN;
  const month = MONTHS.indexOf(m[2].slice(0, 3).toLowerCase()) + 1;
  if (month === 0) return NaN;
  let year = Number(m[3]);
  if (m[3].length === 2) year += year < 50 ? 2000 : 1900;
  else if (m[3].length === 3) year += 1900;
  let offset = 0;
  const zone = m[7];
  if (zone !== undefined) {
    if (zone[0] === '+' || zone[0] === '-') {
      const minutes = Number(zone.slice(1, 3)) * 60 + Number(zone.slice(3, 5));
      offset = zone[0] === '-' ? -minutes : minutes;
    } else {
      // A military letter or an unknown name: RFC 2822 says to take it as -0000, unknown.
      offset = ZONES[zone.toUpperCase()] ?? 0;
    }
  }
  const ms = utc(year, month, Number(m[1]), Number(m[4]), Number(m[5]), Number(m[6] ?? 0));
  return ms - offset * 60_000;
}

/**
 * An RFC 3339 or W3C-DTF date (`2026-06-03T09:39:21Z`, `2026-06-03T09:39+02:00`, `2026-06`), in ms
 * since the epoch; NaN when it is not one. A missing zone is taken as UTC, a missing day or
 * month as the first.
 */
export function parseW3cDate(text: string): number {
  const m = W3CDTF.exec(text);
  if (!m) return NaN;
  const ms = utc(Number(m[1]), Number(m[2] ?? 1), Number(m[3] ?? 1), Number(m[4] ?? 0), Number(m[5] ?? 0), Number(m[6] ?? 0));
  const fraction = m[7] === undefined ? 0 : Math.round(Number(`0.${m[7]}`) * 1000);
  let offset = 0;
  const zone = m[8];
  if (zone !== undefined && zone.toUpperCase() !== 'Z') {
    const digits = zone.replace(':', '');
    const minutes = Number(digits.slice(1, 3)) * 60 + Number(digits.slice(3, 5));
    offset = digits[0] === '-' ? -minutes : minutes;
  }
  return ms + fraction - offset * 60_000;
}

/** A feed's date in either format, in ms since the epoch; NaN when it is neither. */
export function parseFeedDate(text: string): number {
  const w3c = parseW3cDate(text);
  return Number.isNaN(w3c) ? parseRfc822(text) : w3c;
}

/** `ms` as RFC 3339 in UTC, without a fraction when it has whole seconds: `2026-06-03T09:39:21Z`. */
export function rfc3339(ms: number): string {
  return new Date(ms).toISOString().replace('.000Z', 'Z');
}
