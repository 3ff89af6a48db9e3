// Remove location and device details from a JPEG before it is encrypted: drop the
// APP1-APP15 segments (EXIF, XMP, ICC, maker notes) and comments, keep everything
// else byte for byte. Only the header is read; the image data is sliced, not copied.
const HEAD_LIMIT = 4 * 1024 * 1024;
const SOS = 0xda;

function standalone(marker) {
  return marker === 0x01 || (marker >= 0xd0 && marker <= 0xd8);
}

function dropped(marker) {
  return (marker >= 0xe1 && marker <= 0xef) || marker === 0xfe;
}

// A new Blob without the metadata, or null if this is not a JPEG we can parse.
export async function stripJpegMetadata(file) {
  const head = new Uint8Array(await file.slice(0, Math.min(file.size, HEAD_LIMIT)).arrayBuffer());
  if (head.length < 4 || head[0] !== 0xff || head[1] !== 0xd8) return null;
  const keep = [head.subarray(0, 2)];
  let removed = 0;
  let i = 2;
  while (i + 2 <= head.length) {
    if (head[i] !== 0xff) return null;
    const marker = head[i + 1];
    if (marker === 0xff) { i += 1; continue; } // fill byte
    if (marker === SOS) {
      if (removed === 0) return { blob: file, removed: false };
      return { blob: new Blob([...keep, file.slice(i)], { type: 'image/jpeg' }), removed: true };
    }
    if (standalone(marker)) { keep.push(head.subarray(i, i + 2)); i += 2; continue; }
    if (i + 4 > head.length) return null;
    const end = i + 2 + ((head[i + 2] << 8) | head[i + 3]);
    if (end > head.length) return null;
    if (dropped(marker)) removed += 1;
    else keep.push(head.subarray(i, end));
    i = end;
  }
  return null;
}
