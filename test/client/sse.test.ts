// The SDK's text/event-stream parser against the cases of the HTML standard's EventSource parsing.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createSseParser, readEventStream } from '../../src/client/sse.ts';

const parse = (...chunks: string[]) => {
  const p = createSseParser();
  return { events: chunks.flatMap((c) => p.push(c)), parser: p };
};

test('data lines join with a newline; one space after the colon is dropped, a second kept', () => {
  const { events } = parse('data: first\ndata:second\ndata:  third\n\n');
  assert.equal(events, [{ event: 'message', data: 'first\nsecond\n third', id: '' }]);
});

test('comments are skipped, event names and ids kept, id persists to later events', () => {
  const { events, parser } = parse(': keep-alive\n\nid: 7\nevent: status\ndata: {"a":1}\n\n: hi\nevent: progress\ndata: x\n\n');
  assert.equal(events, [
    { event: 'status', data: '{"a":1}', id: '7' },
    { event: 'progress', data: 'x', id: '7' },
  ]);
  assert.is(parser.lastEventId, '7');
});

test('CRLF, CR and LF line ends, also split across chunks (CR at the end of one, LF at the start of the next)', () => {
  const { events } = parse('id: 1\r\ndata: a\r', '\n\r\nid: 2\rdata: b\r\r', 'data: c\n', '\n');
  assert.equal(events, [
    { event: 'message', data: 'a', id: '1' },
    { event: 'message', data: 'b', id: '2' },
    { event: 'message', data: 'c', id: '2' },
  ]);
});

test('an event arrives only once its blank line does, however the text is chunked', () => {
  const p = createSseParser();
  const text = 'event: status\ndata: {"id":"x"}\nid: 3\n\n';
  const events = [...text].flatMap((ch) => p.push(ch));
  assert.equal(events, [{ event: 'status', data: '{"id":"x"}', id: '3' }]);
  assert.equal(createSseParser().push(text.slice(0, -1)), []);
});

test('retry takes digits only; an id with NUL is ignored; an event without data is not dispatched; a BOM is dropped', () => {
  const { events, parser } = parse('\uFEFFretry: 1500\nid: 5\n\nretry: soon\nid: a\0b\nevent: status\n\ndata\n\n');
  assert.is(parser.retryMs, 1500);
  assert.is(parser.lastEventId, '5');
  assert.equal(events, [{ event: 'message', data: '', id: '5' }], 'a bare "data" field is an empty data line');
});

test('an unknown field is ignored, and a stream that ends mid-event dispatches nothing of it', async () => {
  const body = new Blob(['foo: bar\ndata: done\n\ndata: half']).stream();
  const events = [];
  for await (const e of readEventStream(body)) events.push(e);
  assert.equal(events, [{ event: 'message', data: 'done', id: '' }]);
});

test('multi-byte characters split across chunks decode whole', async () => {
  const bytes = new TextEncoder().encode('data: épée ⚔\n\n');
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      for (const b of bytes) c.enqueue(new Uint8Array([b]));
      c.close();
    },
  });
  const events = [];
  for await (const e of readEventStream(body)) events.push(e.data);
  assert.equal(events, ['épée ⚔']);
});

test.run();
