// Evidence files in the browser: the same construction as portal/filecrypt.py.
// Each file is read from disk one part at a time (never whole), encrypted with
// secretstream in CHUNK-sized pieces, and hashed (SHA-256 of what is sent).
import { b64 } from './encoding.js';
import { stripJpegMetadata } from '../files/jpeg.js';

export const CHUNK = 64 * 1024;
export const CHUNKS_PER_PART = 16;
const ABYTES = 17;

export function cipherSize(size) {
  return size + Math.max(1, Math.ceil(size / CHUNK)) * ABYTES;
}

const open = new Map();

export async function beginFile(sodium, { id, file, strip }) {
  let blob = file;
  let removed = false;
  if (strip && (file.type === 'image/jpeg' || /\.jpe?g$/i.test(file.name))) {
    const cleaned = await stripJpegMetadata(file);
    if (cleaned) ({ blob, removed } = cleaned);
  }
  const key = sodium.crypto_secretstream_xchacha20poly1305_keygen();
  const { state, header } = sodium.crypto_secretstream_xchacha20poly1305_init_push(key);
  open.set(id, {
    blob, key, header, state, offset: 0, removed, sha: sodium.crypto_hash_sha256_init(),
  });
  const partSize = CHUNKS_PER_PART * (CHUNK + ABYTES);
  return { size: blob.size, cipherSize: cipherSize(blob.size), partSize, removed };
}

// The next part's ciphertext, transferred (not copied) back to the page.
export async function nextPart(sodium, { id }) {
  const f = open.get(id);
  const end = Math.min(f.blob.size, f.offset + CHUNKS_PER_PART * CHUNK);
  const plain = new Uint8Array(await f.blob.slice(f.offset, end).arrayBuffer());
  const pieces = [];
  let at = 0;
  do {
    const piece = plain.subarray(at, Math.min(at + CHUNK, plain.length));
    at += piece.length;
    const last = f.offset + at >= f.blob.size;
    sodium.crypto_hash_sha256_update(f.sha, piece);
    const tag = last ? sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL
      : sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE;
    pieces.push(sodium.crypto_secretstream_xchacha20poly1305_push(f.state, piece, null, tag));
  } while (at < plain.length);
  f.offset = end;
  const out = new Uint8Array(pieces.reduce((n, p) => n + p.length, 0));
  let pos = 0;
  for (const p of pieces) { out.set(p, pos); pos += p.length; }
  return { transfer: [out.buffer], value: { data: out.buffer, done: f.offset >= f.blob.size } };
}

// What goes inside the sealed report about this file; the key leaves the worker here.
export function endFile(sodium, { id }) {
  const f = open.get(id);
  open.delete(id);
  return {
    size: f.blob.size,
    sha256: sodium.to_hex(sodium.crypto_hash_sha256_final(f.sha)),
    key: b64(sodium, f.key),
    header: b64(sodium, f.header),
    chunk: CHUNK,
    metadata_removed: f.removed,
  };
}

export function cancelFile(_sodium, { id }) {
  const f = open.get(id);
  if (f) sodium_zero(f.key);
  open.delete(id);
  return true;
}

function sodium_zero(bytes) {
  bytes.fill(0);
}
