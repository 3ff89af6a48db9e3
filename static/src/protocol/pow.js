// Proof of work with the browser's own PBKDF2 (WebCrypto); the twin of
// portal/pow.py. Each guess is one native PBKDF2 call, so a reporter works at
// native speed at every Tor Browser level, where a hash computed in
// interpreted JavaScript would leave them far behind an attacker's code.
const PREFIX = new TextEncoder().encode('portal-pow-v1');
const PARALLEL = 8; // guesses in flight at once: the browser spreads them over its cores

function fromBase64Url(text) {
  const b64 = text.replace(/-/g, '+').replace(/_/g, '/');
  const raw = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
  return Uint8Array.from(raw, (c) => c.charCodeAt(0));
}

function salt(nonce) {
  const out = new Uint8Array(PREFIX.length + 8);
  out.set(PREFIX);
  const view = new DataView(out.buffer, PREFIX.length);
  view.setUint32(0, Math.floor(nonce / 2 ** 32));
  view.setUint32(4, nonce >>> 0);
  return out;
}

export function leadingZeroBits(bytes) {
  let bits = 0;
  for (const byte of bytes) {
    if (byte === 0) { bits += 8; continue; }
    return bits + Math.clz32(byte) - 24;
  }
  return bits;
}

// The smallest nonce that solves the challenge (the same one portal/pow.py finds).
export async function solveWork({ challenge, bits, iterations }) {
  const key = await crypto.subtle.importKey('raw', fromBase64Url(challenge), 'PBKDF2', false,
    ['deriveBits']);
  for (let base = 0; ; base += PARALLEL) {
    const guesses = [];
    for (let nonce = base; nonce < base + PARALLEL; nonce += 1) {
      guesses.push(crypto.subtle.deriveBits(
        { name: 'PBKDF2', hash: 'SHA-256', salt: salt(nonce), iterations }, key, 256,
      ).then((out) => (leadingZeroBits(new Uint8Array(out)) >= bits ? nonce : -1)));
    }
    const found = (await Promise.all(guesses)).filter((n) => n >= 0);
    if (found.length) return { challenge, nonce: Math.min(...found) };
  }
}
