// PNG writing: pixels and text chunks read back, checksums valid, output deterministic.
import zlib from 'node:zlib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { decodePng, encodePng } from '../../../src/runner/pipeline/png.ts';

const image = (width: number, height: number) => {
  const rgb = new Uint8Array(width * height * 3);
  for (let i = 0; i < rgb.length; i++) rgb[i] = (i * 31 + (i >> 7)) & 0xff;
  return { width, height, rgb };
};

test('pixels and texts read back; Latin-1 text as tEXt, other text as UTF-8 iTXt', () => {
  const img = image(37, 11);
  const texts: [string, string][] = [
    ['parameters', 'a sword, café\nSteps: 20'],
    ['itemgen', JSON.stringify({ prompt: '剣と盾 🗡️' })],
  ];
  const png = encodePng(img, texts);
  const back = decodePng(png);
  assert.is(back.width, 37);
  assert.is(back.height, 11);
  assert.equal(Array.from(back.rgb), Array.from(img.rgb));
  assert.equal(back.texts, Object.fromEntries(texts));
  assert.ok(png.includes(Buffer.from('tEXtparameters')), 'Latin-1 text in a tEXt chunk');
  assert.ok(png.includes(Buffer.from('iTXtitemgen')), 'non-Latin-1 text in an iTXt chunk');
});

test('deterministic, and every chunk checksum is verified on reading', () => {
  const a = encodePng(image(16, 16), [['parameters', 'x']]);
  const b = encodePng(image(16, 16), [['parameters', 'x']]);
  assert.ok(a.equals(b));
  const corrupt = Buffer.from(a);
  corrupt[40] = corrupt[40]! ^ 0xff;
  assert.throws(() => decodePng(corrupt), /bad CRC/);
  // The IDAT stream is plain zlib any decoder reads.
  const idat = a.indexOf(Buffer.from('IDAT'));
  const length = a.readUInt32BE(idat - 4);
  assert.is(zlib.inflateSync(a.subarray(idat + 4, idat + 4 + length)).length, (16 * 3 + 1) * 16);
});

test('refuses a pixel buffer of the wrong size and an invalid keyword', () => {
  assert.throws(() => encodePng({ width: 2, height: 2, rgb: new Uint8Array(5) }), /expected 12 bytes/);
  assert.throws(() => encodePng(image(2, 2), [['', 'x']]), /keyword/);
});

test.run();
