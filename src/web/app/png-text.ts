// The text chunks of a PNG (tEXt: keyword, NUL, Latin-1 text), where the runner writes the
// infotext ("parameters", as AUTOMATIC1111 does) and its manifest: the detail view shows what
// the file itself says.
const SIGNATURE = [137, 80, 78, 71, 13, 10, 26, 10];

export function pngText(bytes: Uint8Array): Map<string, string> {
  const out = new Map<string, string>();
  if (bytes.length < 8 || SIGNATURE.some((b, i) => bytes[i] !== b)) return out;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const latin1 = new TextDecoder('latin1');
  for (let at = 8; at + 12 <= bytes.length; ) {
    const length = view.getUint32(at);
    const type = latin1.decode(bytes.subarray(at + 4, at + 8));
    const data = bytes.subarray(at + 8, Math.min(at + 8 + length, bytes.length));
    if (type === 'tEXt') {
      const nul = data.indexOf(0);
      if (nul > 0) out.set(latin1.decode(data.subarray(0, nul)), latin1.decode(data.subarray(nul + 1)));
    }
    if (type === 'IDAT' || type === 'IEND') break;
    at += 12 + length;
  }
  return out;
}
