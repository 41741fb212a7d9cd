// PNG writing and reading: 8-bit RGB, zlib from Node, text chunks for the generation's
// parameters (A1111-style "parameters" infotext) and our JSON manifest. Deterministic: the same
// pixels and texts give the same bytes.
import zlib from 'node:zlib';

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

export interface PngImage {
  width: number;
  height: number;
  /** Row-major RGB, 3 bytes per pixel. */
  rgb: Uint8Array;
}

function chunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(zlib.crc32(data, zlib.crc32(head.subarray(4, 8))) >>> 0, 0);
  return Buffer.concat([head, data, crc]);
}

const isLatin1 = (s: string) => /^[\u0000-\u00ff]*$/.test(s);

/** tEXt when the text is Latin-1 (what PNG's tEXt allows), otherwise iTXt in UTF-8, as PIL writes it. */
function textChunk(keyword: string, text: string): Buffer {
  if (!/^[\x20-\x7e]{1,79}$/.test(keyword)) throw new Error(`PNG text keyword ${JSON.stringify(keyword)} is not valid`);
  if (isLatin1(text)) return chunk('tEXt', Buffer.concat([Buffer.from(keyword, 'latin1'), Buffer.from([0]), Buffer.from(text, 'latin1')]));
  // keyword, 0, compression flag 0, method 0, empty language tag, 0, empty translated keyword, 0, text
  return chunk('iTXt', Buffer.concat([Buffer.from(keyword, 'latin1'), Buffer.from([0, 0, 0, 0, 0]), Buffer.from(text, 'utf8')]));
}

/**
 * Encodes RGB pixels with the given text entries (in the given order). Rows use the Up filter and
 * zlib's RLE strategy: on generated images that compresses within a few per cent of the default
 * strategy at a third of the time (about 7 ms instead of 20 for 512×512 here).
 */
export function encodePng(image: PngImage, texts: [keyword: string, text: string][] = []): Buffer {
  const { width, height, rgb } = image;
  if (rgb.length !== width * height * 3) throw new Error(`PNG: expected ${width * height * 3} bytes of RGB, got ${rgb.length}`);
  const stride = width * 3;
  const raw = Buffer.alloc((stride + 1) * height);
  for (let y = 0; y < height; y++) {
    const out = y * (stride + 1) + 1;
    const row = y * stride;
    raw[out - 1] = 2;
    if (y === 0) raw.set(rgb.subarray(0, stride), out);
    else for (let i = 0; i < stride; i++) raw[out + i] = (rgb[row + i]! - rgb[row - stride + i]!) & 0xff;
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit, truecolour, deflate, adaptive filtering, no interlace
  return Buffer.concat([
    SIGNATURE,
    chunk('IHDR', ihdr),
    ...texts.map(([k, v]) => textChunk(k, v)),
    chunk('IDAT', zlib.deflateSync(raw, { level: 6, strategy: zlib.constants.Z_RLE })),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

export interface DecodedPng extends PngImage {
  texts: Record<string, string>;
}

/** Reads back what encodePng writes (8-bit RGB, any filter), checking every CRC. */
export function decodePng(png: Buffer): DecodedPng {
  if (!png.subarray(0, 8).equals(SIGNATURE)) throw new Error('not a PNG');
  let offset = 8;
  let width = 0;
  let height = 0;
  const idat: Buffer[] = [];
  const texts: Record<string, string> = {};
  while (offset < png.length) {
    const length = png.readUInt32BE(offset);
    const type = png.toString('latin1', offset + 4, offset + 8);
    const data = png.subarray(offset + 8, offset + 8 + length);
    const crc = png.readUInt32BE(offset + 8 + length);
    if ((zlib.crc32(data, zlib.crc32(png.subarray(offset + 4, offset + 8))) >>> 0) !== crc) throw new Error(`PNG: bad CRC in ${type}`);
    offset += 12 + length;
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      if (data[8] !== 8 || data[9] !== 2) throw new Error('PNG: only 8-bit RGB is read here');
    } else if (type === 'IDAT') idat.push(data);
    else if (type === 'tEXt') {
      const nul = data.indexOf(0);
      texts[data.toString('latin1', 0, nul)] = data.toString('latin1', nul + 1);
    } else if (type === 'iTXt') {
      const nul = data.indexOf(0);
      let p = nul + 3; // compression flag and method
      p = data.indexOf(0, p) + 1; // language tag
      p = data.indexOf(0, p) + 1; // translated keyword
      texts[data.toString('latin1', 0, nul)] = data.toString('utf8', p);
    } else if (type === 'IEND') break;
  }
  const raw = zlib.inflateSync(Buffer.concat(idat));
  const stride = width * 3;
  const rgb = new Uint8Array(stride * height);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    const src = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const row = rgb.subarray(y * stride, (y + 1) * stride);
    const up = y > 0 ? rgb.subarray((y - 1) * stride, y * stride) : new Uint8Array(stride);
    for (let i = 0; i < stride; i++) {
      const a = i >= 3 ? row[i - 3]! : 0;
      const b = up[i]!;
      const c = i >= 3 ? up[i - 3]! : 0;
      const predictor =
        filter === 0 ? 0 : filter === 1 ? a : filter === 2 ? b : filter === 3 ? (a + b) >> 1 : paeth(a, b, c);
      row[i] = (src[i]! + predictor) & 0xff;
    }
  }
  return { width, height, rgb, texts };
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}
