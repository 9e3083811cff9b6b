// Checking webhooks: constant-time comparison, HMAC-SHA256 and hex. Web Crypto
// (`crypto.subtle`) works in every component, whatever engine features it was built with.

/** Bytes of `value`: text as UTF-8, bytes copied (Web Crypto takes no shared buffer). */
function bytesOf(value: string | Uint8Array): Uint8Array<ArrayBuffer> {
  return typeof value === 'string' ? new TextEncoder().encode(value) : new Uint8Array(value);
}

/**
 * Whether `a` and `b` hold the same bytes (text compared as UTF-8), in a time that does not
 * depend on where they differ, so a caller cannot guess a token byte by byte. Only the length
 * can be told apart.
 */
export function safeEqual(a: string | Uint8Array, b: string | Uint8Array): boolean {
  const left = bytesOf(a);
  const right = bytesOf(b);
  let diff = left.length ^ right.length;
  for (let i = 0; i < left.length; i++) diff |= left[i] ^ (right[i % Math.max(1, right.length)] ?? 0);
  return diff === 0;
}

/** The HMAC-SHA256 of `data` under `key`. */
export async function hmacSha256(key: string | Uint8Array, data: string | Uint8Array): Promise<Uint8Array> {
  const imported = await crypto.subtle.importKey('raw', bytesOf(key), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  return new Uint8Array(await crypto.subtle.sign('HMAC', imported, bytesOf(data)));
}

/** The SHA-256 digest of `data`. */
export async function sha256(data: string | Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', bytesOf(data)));
}

/** `bytes` as lower-case hex. */
export function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** The bytes of the hex string `text` (either case), or undefined when it is not hex. */
export function fromHex(text: string): Uint8Array | undefined {
  if (text.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(text)) return undefined;
  const bytes = new Uint8Array(text.length / 2);
  for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(text.slice(i * 2, i * 2 + 2), 16);
  return bytes;
}
