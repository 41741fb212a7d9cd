import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadClipTokenizer } from '../../../src/runner/pipeline/tokenizer.ts';

// A hand-made vocabulary: an id is the token's index. "é" is UTF-8 C3 A9, which GPT-2's byte table
// shows as "Ã©"; "🐱" is F0 9F 90 B1, shown as "ðŁĲ±".
const TOKENS = [
  '<|startoftext|>', '<|endoftext|>', '<pad>',
  'c', 'a', 't', 'h', 'a</w>', 't</w>', 's</w>',
  'ca', 'ha', 'at</w>', 'cat</w>',
  "'s</w>", ',</w>', '1</w>', '2</w>', '!!</w>',
  'Ã', '©</w>', 'Ã©</w>',
  'ð', 'Ł', 'Ĳ', '±</w>', 'ðŁ', 'Ĳ±</w>', 'ðŁĲ±</w>',
  '&</w>', '!</w>', '!',
];
// Rank order matters: in "hat" the pair "a t</w>" (rank 1) merges before "h a" (rank 3).
const MERGES = ['c a', 'a t</w>', 'ca t</w>', 'h a', 'Ã ©</w>', 'ð Ł', 'Ĳ ±</w>', 'ðŁ Ĳ±</w>', '! !</w>', "' s</w>"];
const id = (token: string) => {
  const i = TOKENS.indexOf(token);
  if (i < 0) throw new Error(`no fixture token ${token}`);
  return i;
};
const [BOS, EOS] = [id('<|startoftext|>'), id('<|endoftext|>')];

const dirs: string[] = [];
/** A tokenizer folder with the fixture files, each replaced (string or JSON) or left out (null). */
async function folder(files: Record<string, unknown> = {}): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tokenizer-'));
  dirs.push(dir);
  const all: Record<string, unknown> = {
    'vocab.json': Object.fromEntries(TOKENS.map((t, i) => [t, i])),
    'merges.txt': ['#version: 0.2', ...MERGES].join('\n') + '\n',
    ...files,
  };
  for (const [name, content] of Object.entries(all)) {
    if (content === null) continue;
    await writeFile(path.join(dir, name), typeof content === 'string' ? content : JSON.stringify(content));
  }
  return dir;
}
test.after(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

/** The ids between bos and eos, checking the frame and the padding around them. */
function body(ids: number[], length = 77, pad = EOS): number[] {
  assert.is(ids.length, length);
  assert.is(ids[0], BOS);
  const end = ids.indexOf(EOS, 1);
  assert.ok(end > 0, 'has an eos');
  assert.equal(ids.slice(end + 1), Array(length - end - 1).fill(pad), 'padded after eos');
  return ids.slice(1, end);
}

test('fixture: BPE merges by rank, </w> on the last symbol, whole words when merges allow', async () => {
  const tok = await loadClipTokenizer(await folder());
  assert.equal(body(tok.encode('cat')), [id('cat</w>')]);
  assert.equal(body(tok.encode('hat')), [id('h'), id('at</w>')]);
  assert.equal(body(tok.encode('a')), [id('a</w>')]);
  assert.equal(body(tok.encode('ta')), [id('t'), id('a</w>')]);
  assert.equal(body(tok.encode('cat hat')), [id('cat</w>'), id('h'), id('at</w>')]);
});

test('fixture: non-ASCII goes through the byte table', async () => {
  const tok = await loadClipTokenizer(await folder());
  assert.equal(body(tok.encode('é')), [id('Ã©</w>')]);
  assert.equal(body(tok.encode('🐱')), [id('ðŁĲ±</w>')]);
  assert.equal(body(tok.encode('é🐱')), [id('Ã©</w>'), id('ðŁĲ±</w>')]);
});

test('fixture: unknown tokens become unk (<|endoftext|> by default)', async () => {
  const tok = await loadClipTokenizer(await folder());
  assert.is(tok.unkId, EOS);
  assert.equal(tok.encode('dog cat').slice(0, 6), [BOS, EOS, EOS, EOS, id('cat</w>'), EOS]);
});

test('fixture: pattern splits, clean-up and special tokens in the text', async () => {
  const tok = await loadClipTokenizer(await folder());
  assert.equal(body(tok.encode("cat's")), [id('cat</w>'), id("'s</w>")]);
  assert.equal(body(tok.encode('cat,12!!')), [id('cat</w>'), id(',</w>'), id('1</w>'), id('2</w>'), id('!!</w>')]);
  assert.equal(tok.encode('  CAT \t\n Cat  '), tok.encode('cat cat'));
  assert.equal(body(tok.encode('&amp;')), [id('&</w>')]);
  assert.equal(body(tok.encode('&amp;amp;')), [id('&</w>')], 'unescaped twice');
  const withEos = tok.encode('cat<|endoftext|>cat');
  assert.equal(withEos.slice(0, 5), [BOS, id('cat</w>'), EOS, id('cat</w>'), EOS]);
});

test('fixture: default frame is 77 ids; long prompts are cut to keep eos last', async () => {
  const tok = await loadClipTokenizer(await folder());
  assert.equal([tok.maxLength, tok.bosId, tok.eosId, tok.padId], [77, BOS, EOS, EOS]);
  assert.equal(tok.encode(''), [BOS, ...Array(76).fill(EOS)]);
  const long = tok.encode('cat '.repeat(100));
  assert.equal(long, [BOS, ...Array(75).fill(id('cat</w>')), EOS]);
});

test('fixture: tokenizer_config.json sets the length and the pad token', async () => {
  const tok = await loadClipTokenizer(
    await folder({ 'tokenizer_config.json': { model_max_length: 8, pad_token: '<pad>', do_lower_case: true } }),
  );
  assert.equal([tok.maxLength, tok.padId], [8, id('<pad>')]);
  const PAD = id('<pad>');
  assert.equal(tok.encode('cat'), [BOS, id('cat</w>'), EOS, PAD, PAD, PAD, PAD, PAD]);
  assert.equal(tok.encode('cat '.repeat(7)), [BOS, ...Array(6).fill(id('cat</w>')), EOS]);
  assert.equal(tok.encode('cat '.repeat(6)), [BOS, ...Array(6).fill(id('cat</w>')), EOS]);
  const cutMidWord = [BOS, ...Array(5).fill(id('cat</w>')), id('h'), EOS];
  assert.equal(tok.encode(`${'cat '.repeat(5)}hat`), cutMidWord, 'a word cut after its first token');
  assert.equal(tok.encode('cat<pad>'), [BOS, id('cat</w>'), PAD, EOS, PAD, PAD, PAD, PAD], 'typed pad is its id');
});

test('fixture: special_tokens_map.json wins, {content} form, typed special tokens skip BPE', async () => {
  const dir = await folder({
    'tokenizer_config.json': { model_max_length: 8, pad_token: '<pad>' },
    'special_tokens_map.json': { pad_token: { content: '!', lstrip: false, rstrip: false } },
  });
  const tok = await loadClipTokenizer(dir);
  const PAD = id('!');
  assert.is(tok.padId, PAD);
  // As Hugging Face cuts the text at special tokens first, "!!" is two pad ids, not "!!</w>".
  assert.equal(tok.encode('cat!!'), [BOS, id('cat</w>'), PAD, PAD, EOS, PAD, PAD, PAD]);
});

test('fixture: a broken folder names the file and the problem', async () => {
  const fails = async (files: Record<string, unknown>, message: RegExp) => {
    const dir = await folder(files);
    try {
      await loadClipTokenizer(dir);
    } catch (err) {
      assert.match((err as Error).message, message);
      assert.ok((err as Error).message.includes(dir), `names the path: ${(err as Error).message}`);
      return;
    }
    assert.unreachable(`loaded despite ${message}`);
  };
  await fails({ 'vocab.json': null }, /vocab\.json: missing$/);
  await fails({ 'vocab.json': '{"a": 1,' }, /vocab\.json: invalid JSON/);
  await fails({ 'vocab.json': ['a'] }, /vocab\.json: must be a JSON object/);
  await fails({ 'vocab.json': { a: '1' } }, /vocab\.json: token "a" has id "1", not a non-negative integer/);
  await fails({ 'merges.txt': null }, /merges\.txt: missing$/);
  await fails({ 'merges.txt': 'c a\na t</w>\n' }, /merges\.txt: line 1 must be the "#version" header/);
  await fails({ 'merges.txt': '#version: 0.2\nc a\nca t </w>\n' }, /merges\.txt: line 3 must be two symbols/);
  await fails({ 'merges.txt': '#version: 0.2\nc a\n\nh a\n' }, /merges\.txt: line 3 must be two symbols/);
  const noBos = Object.fromEntries(TOKENS.filter((t) => t !== '<|startoftext|>').map((t, i) => [t, i]));
  await fails({ 'vocab.json': noBos }, /vocab\.json: has no "<\|startoftext\|>" \(the default bos_token\)/);
  await fails(
    { 'tokenizer_config.json': { pad_token: '[PAD]' } },
    /vocab\.json: has no "\[PAD\]" \(pad_token from .*tokenizer_config\.json\)/,
  );
  await fails({ 'tokenizer_config.json': '{' }, /tokenizer_config\.json: invalid JSON/);
  await fails({ 'tokenizer_config.json': { model_max_length: 1e30 } }, /tokenizer_config\.json: model_max_length must/);
  await fails({ 'special_tokens_map.json': { bos_token: { id: 0 } } }, /special_tokens_map\.json: bos_token must be/);
});

// Conformance with the real CLIP vocabulary of Stable Diffusion 1.5, where ../shared is present.
const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));
const clipDir = path.resolve(repoRoot, '..', 'shared', 'data', 'clip');
const clipTest = existsSync(path.join(clipDir, 'vocab.json')) ? test : test.skip;
if (clipTest === test.skip) console.log(`tokenizer: skipping the CLIP conformance tests, no ${clipDir}`);

const clip = (() => {
  let loaded: Promise<{ encode(text: string): number[]; vocab: Record<string, number> }> | undefined;
  return () =>
    (loaded ??= loadClipTokenizer(clipDir).then((tok) => ({
      encode: (text: string) => tok.encode(text),
      vocab: JSON.parse(readFileSync(path.join(clipDir, 'vocab.json'), 'utf8')) as Record<string, number>,
    })));
})();
/** Ids of the tokens, each of which must be in the vocabulary, framed and padded like encode's output. */
async function clipIds(tokens: string[]): Promise<number[]> {
  const { vocab } = await clip();
  const ids = tokens.map((t) => {
    const i = vocab[t];
    if (i === undefined) throw new Error(`${t} is not in vocab.json`);
    return i;
  });
  return [49406, ...ids, 49407, ...Array(75 - ids.length).fill(49407)];
}

clipTest('CLIP: the known example', async () => {
  const { encode } = await clip();
  assert.equal(encode('a photo of a cat'), [49406, 320, 1125, 539, 320, 2368, 49407, ...Array(70).fill(49407)]);
});

clipTest('CLIP: common words are their own word</w> entries', async () => {
  const { encode } = await clip();
  for (const word of ['cat', 'photo', 'sword', 'knight', 'castle', 'portrait', 'the', 'glowing', 'dragon']) {
    assert.equal(encode(word), await clipIds([`${word}</w>`]), word);
  }
});

clipTest('CLIP: unknown words split into known pieces', async () => {
  const { encode } = await clip();
  const pieces = ['tsu', 'ki</w>', '_</w>', 'adv', 'tr</w>', ',</w>', 'a</w>', 'glowing</w>', 'sword</w>'];
  assert.equal(encode('tsuki_advtr, a glowing sword'), await clipIds(pieces));
});

clipTest("CLIP: digits one by one, punctuation runs, 's split off", async () => {
  const { encode } = await clip();
  const digits = ['1</w>', '0</w>', '2</w>', '4</w>', 'px</w>', ',</w>', '8</w>', 'k</w>', '!!!</w>'];
  assert.equal(encode('1024px, 8k!!!'), await clipIds(digits));
  const weights = ['ultra</w>', '-</w>', 'detailed</w>', '(</w>', 'masterpiece</w>', ':</w>'];
  weights.push('1</w>', '.</w>', '2</w>', ')</w>');
  assert.equal(encode('ultra-detailed (masterpiece:1.2)'), await clipIds(weights));
  const possessive = ['it</w>', "'s</w>", 'a</w>', 'knight</w>', "'s</w>", 'sword</w>'];
  assert.equal(encode("it's a knight's sword"), await clipIds(possessive));
});

clipTest('CLIP: html entities, case and spacing do not matter', async () => {
  const { encode } = await clip();
  assert.equal(encode('salt &amp; pepper'), await clipIds(['salt</w>', '&</w>', 'pepper</w>']));
  assert.equal(encode('  A   PHOTO\tof a\n Cat '), encode('a photo of a cat'));
});

clipTest('CLIP: non-ASCII through the byte table', async () => {
  const { encode } = await clip();
  assert.equal(encode('café'), await clipIds(['cafÃ©</w>']));
  assert.equal(encode('🐱'), await clipIds(['ðŁĲ±</w>']));
});

clipTest('CLIP: a 200-word prompt is cut to 77 ids with eos last', async () => {
  const { encode } = await clip();
  const ids = encode(Array(200).fill('cat').join(' '));
  assert.is(ids.length, 77);
  assert.equal(ids, [49406, ...Array(75).fill(2368), 49407]);
});

test.run();
