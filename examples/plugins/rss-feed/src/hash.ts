/**
 * A 53-bit hash of `text` as 14 hex digits (cyrb53: two 32-bit multiply-xorshift lanes), for
 * the made-up id of an entry that has neither an id nor a link. Synchronous and not
 * cryptographic; it runs on a title and a body, so its interpreted loop stays short (entry
 * hashes over whole entries use Web Crypto's SHA-256, which runs natively).
 */
export function hash53(text: string): string {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  const value = 4294967296 * (2097151 & h2) + (h1 >>> 0);
  return value.toString(16).padStart(14, '0');
}
