// A text/event-stream parser, as the HTML standard's EventSource parses a stream: lines end in
// CRLF, LF or CR (also split across chunks); `:` starts a comment; one space after the colon is
// dropped; data lines join with "\n"; `id` persists across events (Last-Event-ID) and one with
// a NUL is ignored; `retry` takes digits only; an event without data is not dispatched.
export interface SseEvent {
  /** `message` when the event named none. */
  event: string;
  data: string;
  /** The last event id seen so far (the stream's, not only this event's), '' when none. */
  id: string;
}

export interface SseParser {
  /** Feeds decoded text; returns the events it completed. */
  push(text: string): SseEvent[];
  /** The id to resume from (send as Last-Event-ID). */
  readonly lastEventId: string;
  /** The reconnection time the stream asked for, in ms; undefined until it sends `retry`. */
  readonly retryMs: number | undefined;
}

export function createSseParser(): SseParser {
  let buffer = '';
  let started = false;
  /** The previous chunk ended in CR: an LF opening the next one belongs to that line end. */
  let afterCr = false;
  let lastEventId = '';
  let retryMs: number | undefined;
  let eventType = '';
  let data: string[] = [];

  const line = (l: string, out: SseEvent[]) => {
    if (l === '') {
      if (data.length > 0) out.push({ event: eventType || 'message', data: data.join('\n'), id: lastEventId });
      data = [];
      eventType = '';
      return;
    }
    if (l.startsWith(':')) return;
    const colon = l.indexOf(':');
    const field = colon < 0 ? l : l.slice(0, colon);
    let value = colon < 0 ? '' : l.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') data.push(value);
    else if (field === 'event') eventType = value;
    else if (field === 'id') {
      if (!value.includes('\0')) lastEventId = value;
    } else if (field === 'retry') {
      if (/^\d+$/.test(value)) retryMs = Number(value);
    }
  };

  return {
    push(text) {
      if (afterCr && text.startsWith('\n')) text = text.slice(1);
      afterCr = false;
      if (!started && text.length > 0) {
        started = true;
        if (text.startsWith('\uFEFF')) text = text.slice(1);
      }
      buffer += text;
      const out: SseEvent[] = [];
      let start = 0;
      for (let i = 0; i < buffer.length; i++) {
        const ch = buffer[i];
        if (ch !== '\n' && ch !== '\r') continue;
        line(buffer.slice(start, i), out);
        if (ch === '\r') {
          if (i + 1 === buffer.length) afterCr = true;
          else if (buffer[i + 1] === '\n') i++;
        }
        start = i + 1;
      }
      buffer = buffer.slice(start);
      return out;
    },
    get lastEventId() {
      return lastEventId;
    },
    get retryMs() {
      return retryMs;
    },
  };
}

/** The events of a response body, decoded as UTF-8; ends when the body does. */
export async function* readEventStream(body: ReadableStream<Uint8Array>, parser: SseParser = createSseParser()): AsyncGenerator<SseEvent> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      yield* parser.push(decoder.decode(value, { stream: true }));
    }
    yield* parser.push(decoder.decode());
  } finally {
    // Leaving early (a terminal event, an abort) releases the connection.
    await reader.cancel().catch(() => {});
  }
}
