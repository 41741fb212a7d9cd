// fast-check arbitraries derived from an OpenAPI 3.1 document: for each operation, whole HTTP
// requests (path, query, headers, body) that mix schema-valid values with boundary values, wrong
// types, missing and extra fields, hostile strings and raw malformed bodies. The schemas are read
// loosely (type, enum, const, minimum/maximum, minLength/maxLength, pattern, format uuid,
// anyOf/oneOf/allOf, items, properties, required, additionalProperties); what is not understood
// becomes "anything". Requests are plain data, so a counterexample is a request one can replay.
import fc from 'fast-check';

export type Schema = Record<string, any>;
export interface OpenApiParameter {
  name: string;
  in: 'path' | 'query' | 'header' | 'cookie';
  required?: boolean;
  schema?: Schema;
}
export interface OpenApiOperation {
  parameters?: OpenApiParameter[];
  requestBody?: { required?: boolean; content?: Record<string, { schema?: Schema }> };
  security?: unknown[];
}
export interface OpenApiDocument {
  paths: Record<string, Record<string, OpenApiOperation>>;
  components?: { schemas?: Record<string, Schema> };
}

export interface Operation {
  method: string;
  /** The path template, e.g. /v1/generations/{id}. */
  path: string;
  op: OpenApiOperation;
}

/** A request ready to send: `path` includes the query string; `body` is sent as UTF-8, or byte for byte when `latin1`. */
export interface FuzzRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string;
  bodyEncoding?: 'latin1';
  /** What the request is meant to try (for the failure message). */
  note: string;
}

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

export function operations(doc: OpenApiDocument): Operation[] {
  const out: Operation[] = [];
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      if (METHODS.includes(method)) out.push({ method: method.toUpperCase(), path, op });
    }
  }
  return out;
}

/** JSON text inserted verbatim where a value goes (numbers JSON.stringify cannot write: -0, 1e400, 2^53+1). */
export class RawJson {
  constructor(readonly text: string) {}
  toString() {
    return this.text;
  }
}

/** JSON.stringify with RawJson verbatim and own keys such as "__proto__" kept. Lone surrogates come out as \uXXXX escapes. */
export function toJson(v: unknown): string {
  if (v instanceof RawJson) return v.text;
  if (Array.isArray(v)) return `[${v.map(toJson).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v)
      .map((k) => `${JSON.stringify(k)}:${toJson((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

/** An object from entries, as own enumerable properties even for "__proto__". */
function objectOf(entries: [string, unknown][]): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (const [k, v] of entries) Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
  return o;
}

// ---------------------------------------------------------------------------------------------
// Hostile strings

const deep = (n: number) => new RawJson('['.repeat(n) + ']'.repeat(n));

export const HOSTILE_STRINGS: readonly string[] = [
  '',
  ' ',
  '\u0000',
  'a\u0000b',
  '\ud800',
  '\udfff',
  'a\ud800b',
  '\udfff\ud800',
  '\ud83d',
  '\ufffe\uffff',
  '\ufeff',
  '\u202eevil',
  '\u200b',
  '\u0001\u001f\u007f',
  '\r\n',
  'a\r\nX-Injected: 1',
  '\t',
  '💥🗡️🛡️',
  '👨‍👩‍👧‍👦',
  'ｔｓｕｋｉ',
  'Ω≈ç√∫˜µ≤≥÷',
  '田中さんにあげて下さい',
  'Z̤͔ͧ̑̓ä͖̭̈̇lͮ̒ͫǫ̗',
  '../',
  '../../../../etc/passwd',
  '..\\..\\windows\\win.ini',
  '%2e%2e%2f',
  '%2e%2e/',
  '..%2f',
  '%00',
  '%',
  '%ZZ',
  '%ed%a0%80',
  '/',
  '//',
  '?',
  '#',
  '&',
  '=',
  "'; DROP TABLE generations; --",
  "' OR '1'='1",
  '1; SELECT pg_sleep(10)',
  '$1',
  '\\',
  '"',
  '\\u0000',
  '${7*7}',
  '{{7*7}}',
  'javascript:alert(1)',
  '<script>alert(1)</script>',
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'valueOf',
  'hasOwnProperty',
  'NaN',
  'Infinity',
  '-Infinity',
  '-0',
  '0x10',
  '1e400',
  '9007199254740993',
  'null',
  'undefined',
  'true',
  '[]',
  '{}',
];

const longStrings = fc.constantFrom(
  'x'.repeat(2001),
  ' '.repeat(2001),
  'é'.repeat(2001),
  '💥'.repeat(1001),
  '\u0000'.repeat(100),
  '\ud800'.repeat(100),
  'a'.repeat(10_000),
);

/** Hostile strings alone, spliced into ordinary text, random code units (lone surrogates included), and long ones. */
/** What a text column or jsonb value may refuse although JSON carries it. */
const STORAGE_HOSTILE = ['\u0000', 'a\u0000b', '\ud800', '\udfff', 'a\ud800b', '\udfff\ud800', '\ud83d', 'tsuki_advtr, a sword\u0000', 'tsuki_advtr, a sword\udc00'];

export const hostileString = (longOk = true): fc.Arbitrary<string> =>
  fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom(...HOSTILE_STRINGS) },
    { weight: 2, arbitrary: fc.constantFrom(...STORAGE_HOSTILE) },
    {
      weight: 3,
      arbitrary: fc
        .array(fc.oneof(fc.constantFrom(...HOSTILE_STRINGS), fc.string({ maxLength: 8 })), { minLength: 1, maxLength: 4 })
        .map((parts) => `tsuki_advtr, ${parts.join('')}`),
    },
    { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 20 }) },
    { weight: 1, arbitrary: fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength: 20 }) },
    ...(longOk ? [{ weight: 1, arbitrary: longStrings }] : []),
  );

// ---------------------------------------------------------------------------------------------
// Values from schemas

export interface DeriveOptions {
  /** Values the server knows, by format (e.g. uuid → ids of existing generations), mixed into valid values. */
  known?: Record<string, readonly string[]>;
}

export function resolve(doc: OpenApiDocument, schema: Schema | undefined, seen = 0): Schema {
  if (!schema) return {};
  if (typeof schema.$ref === 'string' && seen < 32) {
    const name = /^#\/components\/schemas\/(.+)$/.exec(schema.$ref)?.[1];
    const target = name ? doc.components?.schemas?.[decodeURIComponent(name)] : undefined;
    const { $ref: _ref, ...rest } = schema;
    return resolve(doc, { ...target, ...rest }, seen + 1);
  }
  if (Array.isArray(schema.allOf)) {
    const { allOf, ...rest } = schema;
    return (allOf as Schema[]).reduce<Schema>((acc, s) => {
      const r = resolve(doc, s, seen + 1);
      return {
        ...acc,
        ...r,
        properties: { ...acc.properties, ...r.properties },
        required: [...(acc.required ?? []), ...(r.required ?? [])],
      };
    }, rest);
  }
  return schema;
}

function typesOf(s: Schema): string[] {
  if (Array.isArray(s.type)) return s.type;
  if (typeof s.type === 'string') return [s.type];
  if (s.properties || s.additionalProperties !== undefined) return ['object'];
  if (s.items) return ['array'];
  return [];
}

const anyJson: fc.Arbitrary<unknown> = fc.jsonValue({ maxDepth: 3 });

/** A schema-valid value, loosely (string lengths capped at 300 so runs stay fast). */
export function validValue(doc: OpenApiDocument, schema: Schema | undefined, o: DeriveOptions = {}, depth = 0): fc.Arbitrary<unknown> {
  const s = resolve(doc, schema);
  if ('const' in s) return fc.constant(s.const);
  if (Array.isArray(s.enum) && s.enum.length) return fc.constantFrom(...s.enum);
  const alternatives = s.anyOf ?? s.oneOf;
  if (Array.isArray(alternatives) && alternatives.length) {
    return fc.oneof(...(alternatives as Schema[]).map((a) => validValue(doc, a, o, depth + 1)));
  }
  const types = typesOf(s);
  if (types.length > 1) return fc.oneof(...types.map((type) => validValue(doc, { ...s, type }, o, depth + 1)));
  if (depth > 6) return fc.constant(null);
  switch (types[0]) {
    case 'string': {
      const known = o.known?.[s.format ?? ''] ?? [];
      const withKnown = (a: fc.Arbitrary<string>) => (known.length ? fc.oneof(a, fc.constantFrom(...known)) : a);
      if (s.format === 'uuid') return withKnown(fc.uuid());
      if (s.format === 'date-time') return fc.date({ noInvalidDate: true }).map((d) => d.toISOString());
      if (typeof s.pattern === 'string') return withKnown(fc.stringMatching(new RegExp(s.pattern)).filter((x) => x.length <= (s.maxLength ?? Infinity)));
      const minLength = s.minLength ?? 0;
      const maxLength = Math.max(minLength, Math.min(s.maxLength ?? 300, 300));
      const fits = (x: string) => x.trim().length >= minLength && x.length <= (s.maxLength ?? Infinity);
      // A NUL or a lone surrogate is a valid string as far as the schema goes: hostile strings
      // that fit the length limits count as valid values, so they travel with valid neighbours.
      return withKnown(
        fc.oneof(
          fc.string({ minLength, maxLength }).filter(fits),
          fc.string({ unit: 'grapheme', minLength, maxLength }).filter(fits),
          hostileString(false).filter(fits),
        ),
      );
    }
    case 'integer': {
      const min = s.exclusiveMinimum !== undefined ? s.exclusiveMinimum + 1 : (s.minimum ?? -(2 ** 31));
      const max = s.exclusiveMaximum !== undefined ? s.exclusiveMaximum - 1 : (s.maximum ?? 2 ** 31);
      const m = s.multipleOf ?? 1;
      // The edges and the default too: constraints the document leaves out (a multipleOf) hold for them more often.
      const edges = [min, max, s.default].filter((x): x is number => Number.isInteger(x) && x >= min && x <= max && x % m === 0);
      const any = fc.integer({ min: Math.ceil(min / m), max: Math.floor(max / m) }).map((x) => x * m);
      return edges.length ? fc.oneof(any, fc.constantFrom(...edges)) : any;
    }
    case 'number': {
      const min = s.minimum ?? s.exclusiveMinimum ?? -1e9;
      const max = s.maximum ?? s.exclusiveMaximum ?? 1e9;
      const edges = [min, max, s.default].filter((x): x is number => typeof x === 'number' && x >= min && x <= max);
      const any = fc
        .double({ min, max, noNaN: true, noDefaultInfinity: true })
        .filter((x) => (s.exclusiveMinimum === undefined || x > s.exclusiveMinimum) && (s.exclusiveMaximum === undefined || x < s.exclusiveMaximum))
        .map((x) => (Object.is(x, -0) ? 0 : x));
      return edges.length ? fc.oneof(any, fc.constantFrom(...edges)) : any;
    }
    case 'boolean':
      return fc.boolean();
    case 'null':
      return fc.constant(null);
    case 'array':
      return fc.array(validValue(doc, s.items, o, depth + 1), { minLength: s.minItems ?? 0, maxLength: Math.min(s.maxItems ?? 4, 4) });
    case 'object': {
      const props = (s.properties ?? {}) as Record<string, Schema>;
      const required = new Set<string>(s.required ?? []);
      const entries = Object.entries(props).map(([k, p]) =>
        required.has(k)
          ? validValue(doc, p, o, depth + 1).map((v) => [[k, v]] as [string, unknown][])
          : fc.option(validValue(doc, p, o, depth + 1), { nil: undefined }).map((v) => (v === undefined ? [] : [[k, v]]) as [string, unknown][]),
      );
      const extra =
        s.additionalProperties && typeof s.additionalProperties === 'object'
          ? fc.array(fc.tuple(fc.string({ maxLength: 10 }), validValue(doc, s.additionalProperties, o, depth + 1)), { maxLength: 2 })
          : fc.constant([] as [string, unknown][]);
      return fc.tuple(fc.tuple(...entries), extra).map(([parts, more]) => objectOf([...parts.flat(), ...more]));
    }
    default:
      return anyJson;
  }
}

const num = (x: number) => (Number.isFinite(x) ? x : new RawJson(String(x)));

/** Values on and just past the schema's edges, plus the classic troublemakers for its type. */
export function boundaryValue(doc: OpenApiDocument, schema: Schema | undefined): fc.Arbitrary<unknown> {
  const s = resolve(doc, schema);
  const types = typesOf(s);
  const values: unknown[] = [];
  if (types.includes('integer') || types.includes('number')) {
    const lo = s.minimum ?? s.exclusiveMinimum;
    const hi = s.maximum ?? s.exclusiveMaximum;
    if (typeof lo === 'number') values.push(lo, lo - 1, lo - 0.5, lo + 0.5, lo - 1e-9);
    if (typeof hi === 'number') values.push(hi, hi + 1, hi - 0.5, hi + 0.5, hi + 1e-9);
    if (s.multipleOf) values.push((lo ?? 0) + s.multipleOf / 2, (lo ?? 0) + 1);
    values.push(
      0,
      -1,
      1.5,
      2 ** 31 - 1,
      2 ** 31,
      -(2 ** 31) - 1,
      2 ** 32,
      2 ** 53,
      -(2 ** 53),
      1e308,
      -1e308,
      Number.MIN_VALUE,
      new RawJson('-0'),
      new RawJson('1e400'),
      new RawJson('-1e400'),
      new RawJson('1e-400'),
      new RawJson('1.0'),
      new RawJson('1E2'),
      new RawJson('9007199254740993'),
      new RawJson('123456789012345678901234567890'),
      'NaN',
      'Infinity',
      '1',
      typeof lo === 'number' ? String(lo) : '0',
    );
  }
  if (types.includes('string')) {
    const min = s.minLength ?? 0;
    const max = s.maxLength;
    if (min > 0) values.push('x'.repeat(min - 1), ' '.repeat(min));
    if (typeof max === 'number') values.push('x'.repeat(max), 'x'.repeat(max + 1), '💥'.repeat(Math.ceil((max + 1) / 2)), `${' '.repeat(4)}${'y'.repeat(max)}${' '.repeat(4)}`);
    if (s.format === 'uuid') {
      values.push(
        '00000000-0000-0000-0000-000000000000',
        'ffffffff-ffff-ffff-ffff-ffffffffffff',
        '8A0F1C2E-3B4D-4E5F-8A6B-7C8D9E0F1A2B',
        '8a0f1c2e3b4d4e5f8a6b7c8d9e0f1a2b',
        '{8a0f1c2e-3b4d-4e5f-8a6b-7c8d9e0f1a2b}',
        '8a0f1c2e-3b4d-4e5f-8a6b-7c8d9e0f1a2',
        '8a0f1c2e-3b4d-4e5f-8a6b-7c8d9e0f1a2b0',
        ' 8a0f1c2e-3b4d-4e5f-8a6b-7c8d9e0f1a2b',
        '8a0f1c2e-3b4d-0e5f-8a6b-7c8d9e0f1a2b',
      );
    }
    if (typeof s.pattern === 'string') values.push('9'.repeat(17), '9999999999999999', '-1', '1.5', ' 1', '１２３', '0');
  }
  if (Array.isArray(s.enum)) {
    for (const e of s.enum) if (typeof e === 'string') values.push(e.toUpperCase(), ` ${e}`, `${e}\u0000`, `${e}s`);
    values.push('', null, 0);
  }
  if (types.includes('array')) values.push([], [null], Array.from({ length: (s.maxItems ?? 4) + 1 }, () => ({})));
  if (types.includes('object')) values.push({}, [], null);
  values.push(null);
  return fc.constantFrom(...values);
}

/** A value of another type than the schema asks for (or any JSON, deeply nested included). */
export const wrongType: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(null, true, false, 0, -1, 1.5, '', '1', [], {}, [1, 2], { a: 1 }, deep(64), deep(5000)),
  anyJson,
);

/** A value for one field: mostly wrong on purpose. */
export function fuzzValue(doc: OpenApiDocument, schema: Schema | undefined, o: DeriveOptions = {}): fc.Arbitrary<unknown> {
  return fc.oneof(
    { weight: 3, arbitrary: boundaryValue(doc, schema) },
    { weight: 3, arbitrary: hostileString() },
    { weight: 2, arbitrary: wrongType },
    { weight: 1, arbitrary: validValue(doc, schema, o) },
  );
}

const EXTRA_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'sampler', 'id', 'status', '', '\u0000', '\ud800', '$where', 'PROMPT'];

type Mutation = { kind: 'set'; key: string; value: unknown } | { kind: 'delete'; key: string } | { kind: 'extra'; key: string; value: unknown };

/**
 * A schema-valid object with 0 to 3 mutations (a field set to a fuzz value, a field removed, an
 * extra field), so a hostile value usually arrives with everything else valid and gets past
 * validation of the other fields.
 */
export function mutatedValue(doc: OpenApiDocument, schema: Schema | undefined, o: DeriveOptions = {}, depth = 0): fc.Arbitrary<unknown> {
  const s = resolve(doc, schema);
  if (!typesOf(s).includes('object') || depth > 3) {
    return fc.oneof({ weight: 4, arbitrary: validValue(doc, s, o) }, { weight: 1, arbitrary: fuzzValue(doc, s, o) });
  }
  const props = Object.entries((s.properties ?? {}) as Record<string, Schema>);
  const mutation: fc.Arbitrary<Mutation> = props.length
    ? fc.oneof(
        { weight: 6, arbitrary: fc.constantFrom(...props).chain(([key, p]) => fuzzValue(doc, p, o).map((value): Mutation => ({ kind: 'set', key, value }))) },
        { weight: 2, arbitrary: fc.constantFrom(...props.map(([k]) => k)).map((key): Mutation => ({ kind: 'delete', key })) },
        { weight: 2, arbitrary: fc.tuple(fc.oneof(fc.constantFrom(...EXTRA_KEYS), fc.string({ maxLength: 8 })), fc.oneof(hostileString(false), wrongType)).map(([key, value]): Mutation => ({ kind: 'extra', key, value })) },
      )
    : fc.tuple(fc.constantFrom(...EXTRA_KEYS), wrongType).map(([key, value]): Mutation => ({ kind: 'extra', key, value }));
  return fc.tuple(validValue(doc, s, o, depth), fc.array(mutation, { maxLength: 3 })).map(([base, mutations]) => {
    const entries = new Map(Object.entries(base as Record<string, unknown>));
    for (const m of mutations) {
      if (m.kind === 'delete') entries.delete(m.key);
      else entries.set(m.key, m.value);
    }
    return objectOf([...entries]);
  });
}

// ---------------------------------------------------------------------------------------------
// Raw bodies

/** Bodies a JSON endpoint must refuse cleanly (malformed, odd encodings, not an object). */
export const RAW_BODIES: readonly { body: string; latin1?: true; note: string }[] = [
  { body: '', note: 'empty body' },
  { body: ' \n', note: 'whitespace body' },
  { body: '{', note: 'truncated JSON' },
  { body: '{"prompt":', note: 'truncated JSON' },
  { body: '{"prompt":"a",}', note: 'trailing comma' },
  { body: "{'prompt':'a'}", note: 'single quotes' },
  { body: '{"prompt":"a"}garbage', note: 'trailing garbage' },
  { body: '{"prompt":"a"}\n{"prompt":"b"}', note: 'two documents' },
  { body: '{"prompt":"a\nb"}', note: 'raw control character in a string' },
  { body: '{"prompt":"\\x41"}', note: 'invalid escape' },
  { body: '{"prompt":"\\ud800"}', note: 'lone surrogate escape' },
  { body: '{"prompt":"\\u0000"}', note: 'NUL escape' },
  { body: '{"prompt":"a","prompt":"\\u0000"}', note: 'duplicate key' },
  { body: '\ufeff{"prompt":"a"}', note: 'byte order mark' },
  { body: '{"prompt":"\xff\xfe"}', latin1: true, note: 'invalid UTF-8' },
  { body: '{"prompt":"\xed\xa0\x80"}', latin1: true, note: 'UTF-8-encoded lone surrogate' },
  { body: '\xff\xfe{\x00"\x00', latin1: true, note: 'UTF-16 bytes' },
  { body: '{"__proto__":{"prompt":"a"}}', note: '__proto__ key' },
  { body: '{"prompt":"a","__proto__":{"num_images":4}}', note: '__proto__ key beside fields' },
  { body: '{"constructor":{"prototype":{"x":1}},"prompt":"a"}', note: 'constructor key' },
  { body: 'null', note: 'null' },
  { body: 'true', note: 'boolean' },
  { body: '0', note: 'number' },
  { body: '-0', note: 'negative zero' },
  { body: '1e400', note: 'huge number' },
  { body: '"prompt"', note: 'string' },
  { body: '[]', note: 'empty array' },
  { body: '[{"prompt":"a"}]', note: 'array of a valid body' },
  { body: '{}', note: 'empty object' },
  { body: '['.repeat(10_000) + ']'.repeat(10_000), note: 'deeply nested arrays' },
  { body: '{"a":'.repeat(5000) + '1' + '}'.repeat(5000), note: 'deeply nested objects' },
  { body: `{"prompt":${'['.repeat(5000)}${']'.repeat(5000)}}`, note: 'deeply nested field' },
  { body: `{"prompt":"${'x'.repeat(70_000)}"}`, note: 'body over the limit' },
];

const CONTENT_TYPES = [
  'application/json; charset=utf-8',
  'APPLICATION/JSON',
  'application/problem+json',
  'application/vnd.itemgen+json',
  'application/a b+json',
  'application/json;',
  'application/json; charset=latin1',
  'application/json\t',
  'application/jsonx',
  'application/json-patch+json',
  'text/json',
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  '*/*',
  '',
];

// ---------------------------------------------------------------------------------------------
// Requests

/** encodeURIComponent that writes a lone surrogate as its (invalid) UTF-8 bytes instead of throwing. */
export function encodeComponent(s: string): string {
  let out = '';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (c >= 0xd800 && c <= 0xdfff) {
      out += [0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63)].map((b) => `%${b.toString(16).toUpperCase()}`).join('');
    } else out += encodeURIComponent(ch);
  }
  return out;
}

/** A header value fetch accepts: characters over U+00FF as their UTF-8 bytes, control characters but HTAB dropped, ends trimmed. */
export function headerSafe(s: string): string {
  let out = '';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if ((c < 0x20 && c !== 9) || c === 0x7f) continue;
    if (c <= 0xff) out += ch;
    else if (c >= 0xd800 && c <= 0xdfff) out += String.fromCharCode(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
    else out += Buffer.from(ch, 'utf8').toString('latin1');
  }
  return out.replace(/^[\t ]+|[\t ]+$/g, '');
}

/** A parameter value as text (path, query, header): arrays become several values in a query. */
const asText = (v: unknown): string =>
  v instanceof RawJson ? v.text : typeof v === 'string' ? v : v !== null && typeof v === 'object' ? toJson(v) : String(v);

/** Path segments sent as they are (no percent-encoding by the test), to reach routing and decoding. */
const RAW_SEGMENTS = ['', '%', '%ZZ', '%00', '%ed%a0%80', '%c0%ae%c0%ae', '..', '%2e%2e', '%2e%2e%2f', '..%2f..%2f', 'a%2fb', '%2F', '%252e', 'x;y', 'x%3Bjsessionid=1', '%u0000'];

/** `arb` with probability `p`, else `absent`. */
function sometimes<T, A>(p: number, arb: fc.Arbitrary<T>, absent: A): fc.Arbitrary<T | A> {
  const scale = 100;
  return fc.oneof({ weight: Math.round(p * scale), arbitrary: arb }, { weight: Math.round((1 - p) * scale), arbitrary: fc.constant(absent) });
}

export interface RequestOptions extends DeriveOptions {
  /** Values for the Authorization header (a missing one as undefined), each tried in turn. */
  auth: fc.Arbitrary<string | undefined>;
}

export function requestArb(doc: OpenApiDocument, operation: Operation, o: RequestOptions): fc.Arbitrary<FuzzRequest> {
  const params = operation.op.parameters ?? [];
  const paramValue = (p: OpenApiParameter, longOk: boolean): fc.Arbitrary<unknown> =>
    fc.oneof(
      { weight: 6, arbitrary: validValue(doc, p.schema, o) },
      { weight: 2, arbitrary: boundaryValue(doc, p.schema) },
      { weight: 2, arbitrary: hostileString(longOk) },
      { weight: 1, arbitrary: wrongType.filter((v) => !(v instanceof RawJson)) },
    );

  const pathArb = fc
    .tuple(
      ...params
        .filter((p) => p.in === 'path')
        .map((p) =>
          fc.oneof(
            { weight: 9, arbitrary: paramValue(p, false).map((v) => [p.name, encodeComponent(asText(v))] as const) },
            { weight: 1, arbitrary: fc.constantFrom(...RAW_SEGMENTS).map((v) => [p.name, v] as const) },
          ),
        ),
    )
    .map((pairs) => pairs.reduce((path, [name, v]) => path.replace(`{${name}}`, v), operation.path));

  const queryParams = params.filter((p) => p.in === 'query');
  const queryArb = fc
    .tuple(
      ...queryParams.map((p) =>
        sometimes(
          p.required ? 0.95 : 0.5,
          fc.oneof(
            { weight: 5, arbitrary: paramValue(p, false).map((v) => (Array.isArray(v) && v.length ? v.map(asText) : [asText(v)])) },
            { weight: 1, arbitrary: fc.array(paramValue(p, false).map(asText), { minLength: 2, maxLength: 3 }) },
          ).map((vs) => vs.map((v) => `${encodeComponent(p.name)}=${encodeComponent(v)}`)),
          [] as string[],
        ),
      ),
      sometimes(0.1, fc.tuple(fc.constantFrom('__proto__', 'constructor', 'x', 'limit[]', ''), hostileString(false)).map(([k, v]) => [`${encodeComponent(k)}=${encodeComponent(v)}`]), [] as string[]),
      sometimes(0.1, fc.constantFrom('&&', '=', 'limit', 'limit=', '%', '%ZZ=1', 'status=%ed%a0%80', 'limit=1&limit=2', 'cursor=%00').map((raw) => [raw]), [] as string[]),
    )
    .map((groups) => groups.flat())
    .map((parts) => (parts.length ? `?${parts.join('&')}` : ''));

  const headerParams = params.filter((p) => p.in === 'header');
  const headersArb = fc
    .tuple(
      o.auth,
      ...headerParams.map((p) =>
        sometimes(p.required ? 0.95 : 0.3, paramValue(p, true).map((v) => [p.name, headerSafe(asText(v)).slice(0, 8000)] as const), undefined),
      ),
      sometimes(0.15, fc.tuple(fc.constantFrom('Last-Event-ID', 'Accept', 'Accept-Encoding', 'X-Forwarded-For', 'Forwarded'), hostileString(false).map(headerSafe)), undefined),
    )
    .map(([auth, ...rest]) => {
      const headers: Record<string, string> = {};
      if (auth !== undefined) headers.authorization = auth;
      for (const h of rest) if (h) headers[h[0]] = h[1];
      return headers;
    });

  const jsonSchema = operation.op.requestBody?.content?.['application/json']?.schema;
  type Body = { body?: string; latin1?: true; contentType?: string; note: string };
  const canHaveBody = !['GET', 'HEAD'].includes(operation.method);
  const bodyArb: fc.Arbitrary<Body> = !canHaveBody
    ? fc.constant({ note: 'no body' })
    : jsonSchema
      ? fc.oneof(
          { weight: 12, arbitrary: mutatedValue(doc, jsonSchema, o).map((v): Body => ({ body: toJson(v), contentType: 'application/json', note: 'schema-derived body' })) },
          { weight: 2, arbitrary: fc.oneof(wrongType, hostileString()).map((v): Body => ({ body: toJson(v), contentType: 'application/json', note: 'body of the wrong type' })) },
          { weight: 2, arbitrary: fc.constantFrom(...RAW_BODIES).map((r): Body => ({ body: r.body, ...(r.latin1 ? { latin1: true } : {}), contentType: 'application/json', note: `raw body: ${r.note}` })) },
          {
            weight: 2,
            arbitrary: fc
              .tuple(validValue(doc, jsonSchema, o), fc.constantFrom(...CONTENT_TYPES))
              .map(([v, contentType]): Body => ({ body: toJson(v), contentType, note: `valid body, Content-Type ${JSON.stringify(contentType)}` })),
          },
          { weight: 1, arbitrary: validValue(doc, jsonSchema, o).map((v): Body => ({ body: toJson(v), note: 'valid body without Content-Type' })) },
          { weight: 1, arbitrary: fc.constant<Body>({ note: 'no body' }) },
        )
      : fc.oneof(
          { weight: 4, arbitrary: fc.constant<Body>({ note: 'no body' }) },
          { weight: 1, arbitrary: fc.oneof(wrongType, hostileString()).map((v): Body => ({ body: toJson(v), contentType: 'application/json', note: 'unexpected body' })) },
          { weight: 1, arbitrary: fc.constantFrom(...RAW_BODIES).map((r): Body => ({ body: r.body, ...(r.latin1 ? { latin1: true } : {}), contentType: 'application/json', note: `unexpected raw body: ${r.note}` })) },
        );

  const otherMethods = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'HEAD'].filter((m) => m !== operation.method);
  const methodArb = fc.oneof({ weight: 15, arbitrary: fc.constant(operation.method) }, { weight: 1, arbitrary: fc.constantFrom(...otherMethods) });

  return fc.record({ method: methodArb, path: pathArb, query: queryArb, headers: headersArb, body: bodyArb }).map(({ method, path, query, headers, body }) => {
    const req: FuzzRequest = { method, path: path + query, headers: { ...headers }, note: `${operation.method} ${operation.path}: ${body.note}` };
    if (body.body !== undefined && !['GET', 'HEAD'].includes(method)) {
      req.body = body.body;
      if (body.latin1) req.bodyEncoding = 'latin1';
      if (body.contentType) req.headers['content-type'] = body.contentType;
    }
    return req;
  });
}
