// Evidence files in the browser: AES-256-GCM in the STREAM construction, with the
// browser's own WebCrypto (native at every Tor Browser level); the twin of
// portal/protocol/filecrypt.py. Each file is read from disk one part at a time
// (never whole); chunk i is sealed under the nonce prefix ‖ i (4 bytes) ‖ last,
// and hashed (SHA-256) so the envelope can seal the chunk digest.
import { b64 } from './encoding.js';
import { stripJpegMetadata } from '../files/jpeg.js';

export const ALG = 'aes256gcm-stream';
export const CHUNK = 256 * 1024;
export const CHUNKS_PER_PART = 4;
const TAG = 16;
const PREFIX_BYTES = 7;

export function cipherSize(size, chunk = CHUNK) {
  return size + Math.max(1, Math.ceil(size / chunk)) * TAG;
}

export function chunkNonce(prefix, counter, last) {
  if (!Number.isInteger(counter) || counter < 0 || counter >= 2 ** 32) throw new Error('file too large');
  const nonce = new Uint8Array(12);
  nonce.set(prefix);
  new DataView(nonce.buffer).setUint32(PREFIX_BYTES, counter);
  nonce[11] = last ? 1 : 0;
  return nonce;
}

// One chunk sealed: its ciphertext followed by its 16-byte tag (what AESGCM gives).
export async function sealChunk(key, prefix, counter, last, plain) {
  const sealed = await crypto.subtle.encrypt(
    { name: 'AES-GCM', iv: chunkNonce(prefix, counter, last) }, key, plain,
  );
  return new Uint8Array(sealed);
}

// SHA-256 over the chunks' SHA-256s in order (hex): what the envelope seals.
export async function chunkDigest(sodium, hashes) {
  const all = new Uint8Array(hashes.length * 32);
  hashes.forEach((h, i) => all.set(h, i * 32));
  return sodium.to_hex(new Uint8Array(await crypto.subtle.digest('SHA-256', all)));
}

export function importFileKey(raw) {
  return crypto.subtle.importKey('raw', raw, 'AES-GCM', false, ['encrypt']);
}

const open = new Map();

export async function beginFile(sodium, { id, file, strip }) {
  let blob = file;
  let removed = false;
  if (strip && (file.type === 'image/jpeg' || /\.jpe?g$/i.test(file.name))) {
    const cleaned = await stripJpegMetadata(file);
    if (cleaned) ({ blob, removed } = cleaned);
  }
  const raw = crypto.getRandomValues(new Uint8Array(32));
  const prefix = crypto.getRandomValues(new Uint8Array(PREFIX_BYTES));
  open.set(id, {
    blob, raw, prefix, key: await importFileKey(raw), offset: 0, counter: 0, removed, hashes: [],
  });
  const partSize = CHUNKS_PER_PART * (CHUNK + TAG);
  return {
    size: blob.size, cipherSize: cipherSize(blob.size), partSize, partPlain: CHUNKS_PER_PART * CHUNK, removed,
  };
}

// The next part's ciphertext, transferred (not copied) back to the page.
export async function nextPart(_sodium, { id }) {
  const f = open.get(id);
  // Asked for more than the file holds (a server naming too many parts): refuse,
  // rather than seal a second "last" chunk.
  if (f.counter > 0 && f.offset >= f.blob.size) throw new Error('the file has no more parts');
  const end = Math.min(f.blob.size, f.offset + CHUNKS_PER_PART * CHUNK);
  const plain = new Uint8Array(await f.blob.slice(f.offset, end).arrayBuffer());
  const pieces = [];
  let at = 0;
  do {
    const piece = plain.subarray(at, Math.min(at + CHUNK, plain.length));
    at += piece.length;
    const last = f.offset + at >= f.blob.size;
    const [hash, sealed] = await Promise.all([
      crypto.subtle.digest('SHA-256', piece),
      sealChunk(f.key, f.prefix, f.counter, last, piece),
    ]);
    f.hashes.push(new Uint8Array(hash));
    f.counter += 1;
    pieces.push(sealed);
  } while (at < plain.length);
  f.offset = end;
  const out = new Uint8Array(pieces.reduce((n, p) => n + p.length, 0));
  let pos = 0;
  for (const p of pieces) { out.set(p, pos); pos += p.length; }
  return { transfer: [out.buffer], value: { data: out.buffer, done: f.offset >= f.blob.size } };
}

// What goes inside the sealed report about this file; the key leaves the worker here.
export async function endFile(sodium, { id }) {
  const f = open.get(id);
  open.delete(id);
  // Asked to end before the whole file was read (too few parts): nothing is sealed.
  if (f.counter === 0 || f.offset < f.blob.size) throw new Error('the file was not all sent');
  const entry = {
    size: f.blob.size,
    alg: ALG,
    key: b64(sodium, f.raw),
    prefix: b64(sodium, f.prefix),
    chunk: CHUNK,
    digest: await chunkDigest(sodium, f.hashes),
    metadata_removed: f.removed,
  };
  f.raw.fill(0);
  return entry;
}

export function cancelFile(_sodium, { id }) {
  const f = open.get(id);
  if (f) f.raw.fill(0);
  open.delete(id);
  return true;
}
