// CLIP's byte-level BPE tokenizer: turns a prompt into the fixed-length id sequence Stable Diffusion
// 1.5's text encoder takes, id for id as Hugging Face's (slow) CLIPTokenizer does in diffusers. It
// reads a tokenizer folder in Hugging Face's layout: vocab.json, merges.txt and the optional
// tokenizer_config.json and special_tokens_map.json.
import { readFile } from 'node:fs/promises';
import path from 'node:path';

export interface ClipTokenizer {
  /** Length of every encoded sequence, start and end tokens included. */
  readonly maxLength: number;
  readonly bosId: number;
  readonly eosId: number;
  readonly padId: number;
  readonly unkId: number;
  /** `[bos, ...prompt ids cut to maxLength - 2, eos]`, padded with padId to exactly maxLength ids. */
  encode(text: string): number[];
}

// Hugging Face reads only this many merges, whatever merges.txt holds (49152 - 256 - 2 in
// tokenization_clip.py); the standard file has exactly this many.
const MERGE_LIMIT = 49152 - 256 - 2;
// Hugging Face writes int(1e30) as model_max_length when a tokenizer has no limit; encode pads to
// the length, so anything that large is a broken config rather than a length.
const MAX_LENGTH_LIMIT = 65536;
// The cache only saves recomputing BPE for repeated words; bounding it keeps a long-running runner
// fed arbitrary prompts from growing without end.
const CACHE_LIMIT = 50_000;

const SPECIAL_DEFAULTS = {
  bos_token: '<|startoftext|>',
  eos_token: '<|endoftext|>',
  pad_token: '<|endoftext|>',
  unk_token: '<|endoftext|>',
};
type SpecialKey = keyof typeof SPECIAL_DEFAULTS;

export async function loadClipTokenizer(dir: string): Promise<ClipTokenizer> {
  const vocabFile = path.join(dir, 'vocab.json');
  const vocab = parseVocab(vocabFile, parseJson(vocabFile, await readText(vocabFile)));
  const mergesFile = path.join(dir, 'merges.txt');
  const ranks = parseMerges(mergesFile, await readText(mergesFile));

  // special_tokens_map.json wins over tokenizer_config.json, as in from_pretrained.
  const configFile = path.join(dir, 'tokenizer_config.json');
  const config = await readOptionalObject(configFile);
  const mapFile = path.join(dir, 'special_tokens_map.json');
  const map = await readOptionalObject(mapFile);
  const special = (key: SpecialKey): [string, number] => {
    const [file, source] = key in map ? [mapFile, map] : key in config ? [configFile, config] : [undefined, {}];
    const token = file === undefined ? SPECIAL_DEFAULTS[key] : tokenContent(file, key, source[key]);
    const id = vocab.get(token);
    if (id === undefined) {
      const origin = file === undefined ? `the default ${key}` : `${key} from ${file}`;
      throw new Error(`${vocabFile}: has no ${JSON.stringify(token)} (${origin})`);
    }
    return [token, id];
  };
  const bos = special('bos_token');
  const eos = special('eos_token');
  const pad = special('pad_token');
  const unk = special('unk_token');
  const maxLength = modelMaxLength(configFile, config.model_max_length);
  const ids = { maxLength, bosId: bos[1], eosId: eos[1], padId: pad[1], unkId: unk[1] };
  return new BpeTokenizer(vocab, ranks, new Map([bos, eos, pad, unk]), ids);
}

class BpeTokenizer implements ClipTokenizer {
  readonly maxLength: number;
  readonly bosId: number;
  readonly eosId: number;
  readonly padId: number;
  readonly unkId: number;
  private readonly specialSplit: RegExp;
  private readonly cache = new Map<string, number[]>();

  constructor(
    private readonly vocab: Map<string, number>,
    private readonly ranks: Map<string, number>,
    private readonly specialTokens: Map<string, number>,
    ids: { maxLength: number; bosId: number; eosId: number; padId: number; unkId: number },
  ) {
    this.maxLength = ids.maxLength;
    this.bosId = ids.bosId;
    this.eosId = ids.eosId;
    this.padId = ids.padId;
    this.unkId = ids.unkId;
    // Hugging Face cuts the raw text at its special tokens before cleaning it (longest first), so
    // a special token typed in a prompt becomes its own id even when, like SD 2's "!" pad, BPE
    // would have given another.
    const alternatives = [...specialTokens.keys()].sort((a, b) => b.length - a.length).map(escapeRegExp);
    this.specialSplit = new RegExp(`(${alternatives.join('|')})`, 'u');
  }

  encode(text: string): number[] {
    const room = this.maxLength - 2;
    const ids: number[] = [this.bosId];
    for (const chunk of text.split(this.specialSplit)) {
      if (ids.length > room) break;
      const special = this.specialTokens.get(chunk);
      if (special !== undefined) {
        ids.push(special);
        continue;
      }
      for (const match of cleanText(chunk).matchAll(PIECE)) {
        if (ids.length > room) break;
        ids.push(...this.pieceIds(match[0]));
      }
    }
    ids.length = Math.min(ids.length, room + 1);
    ids.push(this.eosId);
    while (ids.length < this.maxLength) ids.push(this.padId);
    return ids;
  }

  private pieceIds(piece: string): number[] {
    const cached = this.cache.get(piece);
    if (cached !== undefined) return cached;
    // CLIP seeds its BPE cache with the two special tokens, so inside cleaned text they stay whole.
    const tokens = piece === '<|startoftext|>' || piece === '<|endoftext|>' ? [piece] : bpe(byteSymbols(piece), this.ranks);
    const ids = tokens.map((t) => this.vocab.get(t) ?? this.unkId);
    if (this.cache.size >= CACHE_LIMIT) this.cache.delete(this.cache.keys().next().value as string);
    this.cache.set(piece, ids);
    return ids;
  }
}

/**
 * CLIP's BPE on one word's byte symbols (the last gets `</w>`, in place): merges the lowest-ranked
 * adjacent pair, everywhere it occurs, until no pair has a rank. The tiny model builds its merges with it.
 */
export function bpe(symbols: string[], ranks: ReadonlyMap<string, number>): string[] {
  symbols[symbols.length - 1] += '</w>';
  while (symbols.length > 1) {
    let best = Infinity;
    let at = -1;
    for (let i = 0; i < symbols.length - 1; i++) {
      const rank = ranks.get(`${symbols[i]} ${symbols[i + 1]}`);
      if (rank !== undefined && rank < best) {
        best = rank;
        at = i;
      }
    }
    if (at < 0) break;
    const first = symbols[at] as string;
    const second = symbols[at + 1] as string;
    const merged: string[] = [];
    for (let i = 0; i < symbols.length; i++) {
      if (symbols[i] === first && symbols[i + 1] === second) {
        merged.push(first + second);
        i++;
      } else {
        merged.push(symbols[i] as string);
      }
    }
    symbols = merged;
  }
  return symbols;
}

// Whitespace as Python sees it: the `regex` module's \s (Unicode White_Space, which JavaScript's \s
// differs from by U+0085 and U+FEFF) and str.strip(), which also strips U+001C-U+001F.
const REGEX_SPACE = '\\t\\n\\v\\f\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const STRIP_SPACE = `${REGEX_SPACE}\\x1c-\\x1f`;
const SPACE_RUN = new RegExp(`[${REGEX_SPACE}]+`, 'gu');
const STRIP = new RegExp(`^[${STRIP_SPACE}]+|[${STRIP_SPACE}]+$`, 'gu');
const STRIP_SPLIT = new RegExp(`[${STRIP_SPACE}]+`, 'u');
const pyStrip = (s: string) => s.replace(STRIP, '');

// CLIP's pre-tokenizer pattern, case-insensitive as in tokenization_clip.py.
const PIECE = new RegExp(
  `<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^${REGEX_SPACE}\\p{L}\\p{N}]+`,
  'giu',
);

/**
 * The clean-up of OpenAI's reference CLIP tokenizer, `whitespace_clean(basic_clean(text)).lower()`,
 * without ftfy.fix_text (not available here), so its repairs (mojibake, curly quotes made straight,
 * NFC) are not made. Hugging Face without ftfy uses BERT's BasicTokenizer instead, which gives the
 * same ids for ordinary prompts but leaves HTML entities alone and splits runs of CJK characters.
 */
function cleanText(text: string): string {
  const basic = pyStrip(unescapeHtml(unescapeHtml(text)));
  // U+0345 (a combining mark that case-folds to a letter) matches no alternative of PIECE in
  // Python's case-insensitive `regex`, so it is skipped like a space; JavaScript would keep it.
  return pyStrip(basic.replace(SPACE_RUN, ' ')).toLowerCase().replaceAll('\u0345', ' ');
}

// GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves, the other 68 bytes take
// the code points from U+0100 on, so every byte of UTF-8 is a visible vocabulary character.
export const BYTE_SYMBOL: readonly string[] = (() => {
  const table: string[] = [];
  let next = 256;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    table.push(String.fromCharCode(printable ? b : next++));
  }
  return table;
})();
const utf8 = new TextEncoder();
/** The byte symbols of `piece`'s UTF-8, as BPE starts from them. */
export const byteSymbols = (piece: string): string[] => Array.from(utf8.encode(piece), (b) => BYTE_SYMBOL[b] as string);

// Python's html.unescape, with its numeric-reference rules in full; the named references are the
// HTML 4 set (plus &apos; and the upper-case legacy forms) rather than all 2,231 of HTML 5. A `*`
// marks the legacy names that also count without the closing semicolon.
const ENTITIES = new Map<string, string>();
for (const entry of `*Aacute:c1 *aacute:e1 *Acirc:c2 *acirc:e2 *acute:b4 *AElig:c6 *aelig:e6 *Agrave:c0
  *agrave:e0 alefsym:2135 Alpha:391 alpha:3b1 *AMP:26 *amp:26 and:2227 ang:2220 apos:27 *Aring:c5 *aring:e5
  asymp:2248 *Atilde:c3 *atilde:e3 *Auml:c4 *auml:e4 bdquo:201e Beta:392 beta:3b2 *brvbar:a6 bull:2022
  cap:2229 *Ccedil:c7 *ccedil:e7 *cedil:b8 *cent:a2 Chi:3a7 chi:3c7 circ:2c6 clubs:2663 cong:2245 *COPY:a9
  *copy:a9 crarr:21b5 cup:222a *curren:a4 Dagger:2021 dagger:2020 dArr:21d3 darr:2193 *deg:b0 Delta:394
  delta:3b4 diams:2666 *divide:f7 *Eacute:c9 *eacute:e9 *Ecirc:ca *ecirc:ea *Egrave:c8 *egrave:e8
  empty:2205 emsp:2003 ensp:2002 Epsilon:395 epsilon:3b5 equiv:2261 Eta:397 eta:3b7 *ETH:d0 *eth:f0
  *Euml:cb *euml:eb euro:20ac exist:2203 fnof:192 forall:2200 *frac12:bd *frac14:bc *frac34:be frasl:2044
  Gamma:393 gamma:3b3 ge:2265 *GT:3e *gt:3e hArr:21d4 harr:2194 hearts:2665 hellip:2026 *Iacute:cd
  *iacute:ed *Icirc:ce *icirc:ee *iexcl:a1 *Igrave:cc *igrave:ec image:2111 infin:221e int:222b Iota:399
  iota:3b9 *iquest:bf isin:2208 *Iuml:cf *iuml:ef Kappa:39a kappa:3ba Lambda:39b lambda:3bb lang:27e8
  *laquo:ab lArr:21d0 larr:2190 lceil:2308 ldquo:201c le:2264 lfloor:230a lowast:2217 loz:25ca lrm:200e
  lsaquo:2039 lsquo:2018 *LT:3c *lt:3c *macr:af mdash:2014 *micro:b5 *middot:b7 minus:2212 Mu:39c mu:3bc
  nabla:2207 *nbsp:a0 ndash:2013 ne:2260 ni:220b *not:ac notin:2209 nsub:2284 *Ntilde:d1 *ntilde:f1
  Nu:39d nu:3bd *Oacute:d3 *oacute:f3 *Ocirc:d4 *ocirc:f4 OElig:152 oelig:153 *Ograve:d2 *ograve:f2
  oline:203e Omega:3a9 omega:3c9 Omicron:39f omicron:3bf oplus:2295 or:2228 *ordf:aa *ordm:ba *Oslash:d8
  *oslash:f8 *Otilde:d5 *otilde:f5 otimes:2297 *Ouml:d6 *ouml:f6 *para:b6 part:2202 permil:2030 perp:22a5
  Phi:3a6 phi:3c6 Pi:3a0 pi:3c0 piv:3d6 *plusmn:b1 *pound:a3 Prime:2033 prime:2032 prod:220f prop:221d
  Psi:3a8 psi:3c8 *QUOT:22 *quot:22 radic:221a rang:27e9 *raquo:bb rArr:21d2 rarr:2192 rceil:2309
  rdquo:201d real:211c *REG:ae *reg:ae rfloor:230b Rho:3a1 rho:3c1 rlm:200f rsaquo:203a rsquo:2019
  sbquo:201a Scaron:160 scaron:161 sdot:22c5 *sect:a7 *shy:ad Sigma:3a3 sigma:3c3 sigmaf:3c2 sim:223c
  spades:2660 sub:2282 sube:2286 sum:2211 sup:2283 *sup1:b9 *sup2:b2 *sup3:b3 supe:2287 *szlig:df Tau:3a4
  tau:3c4 there4:2234 Theta:398 theta:3b8 thetasym:3d1 thinsp:2009 *THORN:de *thorn:fe tilde:2dc
  *times:d7 trade:2122 *Uacute:da *uacute:fa uArr:21d1 uarr:2191 *Ucirc:db *ucirc:fb *Ugrave:d9
  *ugrave:f9 *uml:a8 upsih:3d2 Upsilon:3a5 upsilon:3c5 *Uuml:dc *uuml:fc weierp:2118 Xi:39e xi:3be
  *Yacute:dd *yacute:fd *yen:a5 Yuml:178 *yuml:ff Zeta:396 zeta:3b6 zwj:200d zwnj:200c`.split(/\s+/)) {
  const [name, hex] = entry.replace('*', '').split(':') as [string, string];
  const char = String.fromCodePoint(parseInt(hex, 16));
  ENTITIES.set(`${name};`, char);
  if (entry.startsWith('*')) ENTITIES.set(name, char);
}
const CHARREF = /&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)/gu;
// What html.unescape puts for &#128; to &#159;: those code points read as Windows-1252 bytes.
const WINDOWS_1252_80_9F =
  '\u20ac\x81\u201a\u0192\u201e\u2026\u2020\u2021\u02c6\u2030\u0160\u2039\u0152\x8d\u017d\x8f' +
  '\x90\u2018\u2019\u201c\u201d\u2022\u2013\u2014\u02dc\u2122\u0161\u203a\u0153\x9d\u017e\u0178';

function unescapeHtml(s: string): string {
  if (!s.includes('&')) return s;
  return s.replace(CHARREF, (_, ref: string) => (ref.startsWith('#') ? numericCharref(ref) : namedCharref(ref)));
}

function numericCharref(ref: string): string {
  const hex = ref[1] === 'x' || ref[1] === 'X';
  const num = parseInt(ref.slice(hex ? 2 : 1).replace(/;$/, ''), hex ? 16 : 10);
  if (num === 0) return '\ufffd';
  if (num === 0x0d) return '\r';
  if (num >= 0x80 && num <= 0x9f) return WINDOWS_1252_80_9F[num - 0x80] as string;
  if ((num >= 0xd800 && num <= 0xdfff) || num > 0x10ffff) return '\ufffd';
  const invalid =
    (num >= 0x01 && num <= 0x08) ||
    num === 0x0b ||
    (num >= 0x0e && num <= 0x1f) ||
    num === 0x7f ||
    (num >= 0xfdd0 && num <= 0xfdef) ||
    (num & 0xffff) >= 0xfffe;
  return invalid ? '' : String.fromCodePoint(num);
}

function namedCharref(ref: string): string {
  const exact = ENTITIES.get(ref);
  if (exact !== undefined) return exact;
  // The longest legacy name that starts the reference, as the HTML 5 parser reads "&copy2024".
  for (let end = ref.length - 1; end > 1; end--) {
    const prefix = ENTITIES.get(ref.slice(0, end));
    if (prefix !== undefined) return prefix + ref.slice(end);
  }
  return `&${ref}`;
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

async function readText(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new Error(`${file}: ${code === 'ENOENT' ? 'missing' : `cannot be read (${(err as Error).message})`}`);
  }
}

function parseJson(file: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(`${file}: invalid JSON (${(err as Error).message})`);
  }
}

async function readOptionalObject(file: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new Error(`${file}: cannot be read (${(err as Error).message})`);
  }
  const value = parseJson(file, text);
  if (!isObject(value)) throw new Error(`${file}: must be a JSON object`);
  return value;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function parseVocab(file: string, value: unknown): Map<string, number> {
  if (!isObject(value)) throw new Error(`${file}: must be a JSON object of token to id`);
  const vocab = new Map<string, number>();
  for (const [token, id] of Object.entries(value)) {
    if (!Number.isSafeInteger(id) || (id as number) < 0) {
      const problem = `has id ${JSON.stringify(id)}, not a non-negative integer`;
      throw new Error(`${file}: token ${JSON.stringify(token)} ${problem}`);
    }
    vocab.set(token, id as number);
  }
  if (vocab.size === 0) throw new Error(`${file}: has no tokens`);
  return vocab;
}

function parseMerges(file: string, text: string): Map<string, number> {
  // As tokenization_clip.py: strip the file, drop the "#version" line, keep at most MERGE_LIMIT.
  const lines = pyStrip(text).split('\n');
  if (!lines[0]?.startsWith('#version')) {
    throw new Error(`${file}: line 1 must be the "#version" header, got ${JSON.stringify(lines[0]?.slice(0, 40))}`);
  }
  const ranks = new Map<string, number>();
  const merges = lines.slice(1, MERGE_LIMIT + 1);
  merges.forEach((line, i) => {
    const pair = pyStrip(line).split(STRIP_SPLIT);
    if (pair.length !== 2) {
      throw new Error(`${file}: line ${i + 2} must be two symbols separated by a space, got ${JSON.stringify(line)}`);
    }
    ranks.set(pair.join(' '), i);
  });
  return ranks;
}

function tokenContent(file: string, key: string, value: unknown): string {
  const content = isObject(value) ? value.content : value;
  if (typeof content !== 'string' || content === '') {
    throw new Error(`${file}: ${key} must be a non-empty string or {"content": "..."}, got ${JSON.stringify(value)}`);
  }
  return content;
}

function modelMaxLength(file: string, value: unknown): number {
  if (value === undefined) return 77;
  if (!Number.isInteger(value) || (value as number) < 2 || (value as number) > MAX_LENGTH_LIMIT) {
    const expected = `an integer from 2 to ${MAX_LENGTH_LIMIT}`;
    throw new Error(`${file}: model_max_length must be ${expected}, got ${JSON.stringify(value)}`);
  }
  return value as number;
}
