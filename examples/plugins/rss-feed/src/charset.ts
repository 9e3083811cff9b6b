// A feed's bytes as text. The character set is, in order (RFC 7303): a byte order mark, the
// `charset` of the Content-Type, the XML declaration's `encoding`, else UTF-8.

/** Windows-1252's characters for the bytes 0x80–0x9f (where ISO-8859-1 has control codes). */
const WINDOWS_1252_HIGH =
  '\u20ac\u0081\u201a\u0192\u201e\u2026\u2020\u2021\u02c6\u2030\u0160\u2039\u0152\u008d\u017d\u008f' +
  '\u0090\u2018\u2019\u201c\u201d\u2022\u2013\u2014\u02dc\u2122\u0161\u203a\u0153\u009d\u017e\u0178';

/** The character sets this reader decodes, by the names they go by. */
const CHARSETS: Record<string, 'utf-8' | 'utf-16le' | 'utf-16be' | 'latin1' | 'windows-1252'> = {
  'utf-8': 'utf-8', utf8: 'utf-8', 'us-ascii': 'utf-8', ascii: 'utf-8',
  'utf-16': 'utf-16be', 'utf-16le': 'utf-16le', 'utf-16be': 'utf-16be',
  'iso-8859-1': 'latin1', latin1: 'latin1', 'iso_8859-1': 'latin1', l1: 'latin1',
  // HTML's rule, which feeds labelled Latin-1 but written on Windows follow.
  'windows-1252': 'windows-1252', cp1252: 'windows-1252',
};

/** A character set this reader does not decode. */
export class CharsetError extends Error {
  /** Creates the error for the character set `charset`, found in `where`. */
  constructor(charset: string, where: string) {
    super(`its character set ${JSON.stringify(charset)} (from ${where}) is not one this connector reads (UTF-8, UTF-16, ISO-8859-1, Windows-1252)`);
    this.name = 'CharsetError';
  }
}

/** The `charset` parameter of a Content-Type, lower-case, or undefined. */
function charsetParameter(contentType: string | undefined): string | undefined {
  const m = /;\s*charset\s*=\s*"?([^";\s]+)"?/i.exec(contentType ?? '');
  return m?.[1].toLowerCase();
}

/** The `encoding` of an XML declaration at the start of `bytes`, lower-case, or undefined. */
function declaredEncoding(bytes: Uint8Array): string | undefined {
  let head = '';
  for (let i = 0; i < Math.min(bytes.length, 256); i++) head += String.fromCharCode(bytes[i]);
  const m = /^\s*<\?xml[^>]*?\sencoding\s*=\s*["']([A-Za-z0-9._-]+)["']/.exec(head);
  return m?.[1].toLowerCase();
}

/** 16-bit code units of `bytes` from `start`, little- or big-endian, as a string. */
function utf16(bytes: Uint8Array, start: number, littleEndian: boolean): string {
  const parts: string[] = [];
  const chunk: number[] = [];
  for (let i = start; i + 1 < bytes.length; i += 2) {
    chunk.push(littleEndian ? bytes[i] | (bytes[i + 1] << 8) : (bytes[i] << 8) | bytes[i + 1]);
    if (chunk.length === 8192) {
      parts.push(String.fromCharCode(...chunk));
      chunk.length = 0;
    }
  }
  parts.push(String.fromCharCode(...chunk));
  return parts.join('');
}

/** Single bytes as characters: Latin-1, or Windows-1252 for 0x80–0x9f. */
function singleByte(bytes: Uint8Array, windows: boolean): string {
  const parts: string[] = [];
  let chunk = '';
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    chunk += windows && b >= 0x80 && b <= 0x9f ? WINDOWS_1252_HIGH[b - 0x80] : String.fromCharCode(b);
    if (chunk.length === 8192) {
      parts.push(chunk);
      chunk = '';
    }
  }
  parts.push(chunk);
  return parts.join('');
}

/** The text of a feed's `bytes`, served with the Content-Type `contentType`. */
export function decodeFeed(bytes: Uint8Array, contentType: string | undefined): string {
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) return new TextDecoder('utf-8').decode(bytes.subarray(3));
  if (bytes[0] === 0xff && bytes[1] === 0xfe) return utf16(bytes, 2, true);
  if (bytes[0] === 0xfe && bytes[1] === 0xff) return utf16(bytes, 2, false);
  const fromHeader = charsetParameter(contentType);
  const label = fromHeader ?? declaredEncoding(bytes) ?? 'utf-8';
  const charset = CHARSETS[label];
  if (charset === undefined) throw new CharsetError(label, fromHeader ? 'the Content-Type' : 'the XML declaration');
  switch (charset) {
    case 'utf-8':
      return new TextDecoder('utf-8').decode(bytes);
    case 'utf-16le':
      return utf16(bytes, 0, true);
    case 'utf-16be':
      return utf16(bytes, 0, false);
    case 'latin1':
      return singleByte(bytes, false);
    case 'windows-1252':
      return singleByte(bytes, true);
  }
}
