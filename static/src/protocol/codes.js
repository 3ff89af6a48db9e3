// Case codes in the browser: the same rules as portal/codes.py (DESIGN §5).
export const CODE_DIGITS = 24;
const GROUP = 4;

const DAMM = [
  [0, 3, 1, 7, 5, 9, 8, 6, 4, 2],
  [7, 0, 9, 2, 1, 5, 4, 8, 6, 3],
  [4, 2, 0, 6, 8, 7, 1, 3, 5, 9],
  [1, 7, 5, 0, 9, 8, 3, 4, 2, 6],
  [6, 1, 2, 3, 0, 4, 5, 9, 7, 8],
  [3, 6, 7, 4, 2, 0, 9, 5, 8, 1],
  [5, 8, 6, 9, 7, 2, 0, 1, 3, 4],
  [8, 9, 4, 5, 3, 6, 2, 0, 1, 7],
  [9, 4, 3, 8, 6, 1, 7, 2, 0, 5],
  [2, 5, 8, 1, 4, 3, 6, 7, 9, 0],
];

export function dammDigit(digits) {
  let interim = 0;
  for (const ch of digits) interim = DAMM[interim][ch.charCodeAt(0) - 48];
  return interim;
}

// 23 uniform digits from libsodium's CSPRNG (randombytes_uniform has no
// modulo bias) and the Damm check digit.
export function generateCode(sodium) {
  let body = '';
  for (let i = 0; i < CODE_DIGITS - 1; i += 1) body += String(sodium.randombytes_uniform(10));
  return body + String(dammDigit(body));
}

const DECIMAL = /\p{Nd}/u;
const SEPARATOR = /[\s\u00a0\u202f\u2009\-\u2010-\u2014\u2212._\u00b7]/u;

// Unicode keeps every decimal digit in a run from 0 to 9, so a digit's value is
// its distance from the start of its run (mod 10 for runs that follow each other).
export function digitValue(ch) {
  if (!DECIMAL.test(ch)) return -1;
  const cp = ch.codePointAt(0);
  let back = 0;
  while (back < 60 && DECIMAL.test(String.fromCodePoint(cp - back - 1))) back += 1;
  return back % 10;
}

// Any Unicode digits to ASCII, separators dropped; null if anything else is there.
export function asciiDigits(text) {
  let out = '';
  for (const ch of text.trim()) {
    if (SEPARATOR.test(ch)) continue;
    const value = digitValue(ch);
    if (value < 0) return null;
    out += String(value);
  }
  return out;
}

// The same rules as portal/codes.py normalise(): null for a wrong length or a typo.
export function normaliseCode(text) {
  const digits = asciiDigits(text);
  if (digits === null || digits.length !== CODE_DIGITS || dammDigit(digits) !== 0) return null;
  return digits;
}

export function formatCode(digits) {
  const groups = [];
  for (let i = 0; i < digits.length; i += GROUP) groups.push(digits.slice(i, i + GROUP));
  return groups.join(' ');
}

const LOOKUP_LABEL = new TextEncoder().encode('portal-code-lookup');
const WRAP_LABEL = new TextEncoder().encode('portal-code-wrap');

// PBKDF2-HMAC-SHA256(code, salt) -> seed; HMAC-SHA256(seed, label) -> lookup, wrap.
// The browser's own WebCrypto, native at every Tor Browser level; byte-identical to
// portal/protocol/codes.py derive().
export async function deriveCode(sodium, digits, organization) {
  if (organization.kdf.alg !== 'pbkdf2-sha256') throw new Error('unsupported code derivation');
  const subtle = globalThis.crypto.subtle;
  const password = await subtle.importKey('raw', new TextEncoder().encode(digits), 'PBKDF2', false,
    ['deriveBits']);
  const salt = sodium.from_base64(organization.code_salt, sodium.base64_variants.URLSAFE_NO_PADDING);
  const seed = await subtle.deriveBits(
    { name: 'PBKDF2', hash: 'SHA-256', salt, iterations: organization.kdf.iterations }, password, 256,
  );
  const key = await subtle.importKey('raw', seed, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const [lookup, wrap] = await Promise.all([
    subtle.sign('HMAC', key, LOOKUP_LABEL), subtle.sign('HMAC', key, WRAP_LABEL),
  ]);
  return { lookup: new Uint8Array(lookup), wrap: new Uint8Array(wrap) };
}
