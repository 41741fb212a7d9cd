// The page: signs in when the API has keys, then one workspace — Make (the form), Watch (what
// runs now, live from one event stream) and Keep (the history, with a detail view by URL hash,
// #/generations/{id}, so a detail can be linked and the back button closes it).
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { isTerminal, type Generation, type GenerationStatus, type Preview, type SubmitBody } from '../../client/types.ts';
import { followEvents, type LiveState } from './live.ts';
import { fetchModels, forgetKey, openSession, rememberKey, storedKey, type Model, type Session } from './session.ts';
import { Detail } from './views/detail.tsx';
import { Gallery, type GalleryState } from './views/gallery.tsx';
import { KeyPrompt } from './views/key-prompt.tsx';
import { MakeForm } from './views/make.tsx';
import { Watch, type Tracked } from './views/watch.tsx';

type Phase =
  | { kind: 'starting' }
  | { kind: 'key'; problem: string | null }
  | { kind: 'ready'; session: Session; models: Model[] }
  | { kind: 'failed'; problem: string };

const PAGE = 24;
const MODEL_POLL_MS = 2000;
const DETAIL_HASH = /^#\/generations\/([0-9a-f-]{36})$/;
const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

export function App() {
  const [phase, setPhase] = useState<Phase>({ kind: 'starting' });
  const start = useCallback(async (key: string | null, typed: boolean) => {
    const session = openSession(key);
    try {
      const models = await fetchModels(session);
      if (models === 'needs_key') {
        if (key) forgetKey();
        setPhase({ kind: 'key', problem: key ? (typed ? 'That API key is not accepted.' : 'The saved API key is no longer accepted; sign in again.') : null });
        return;
      }
      if (key) rememberKey(key);
      setPhase({ kind: 'ready', session, models });
    } catch (err) {
      setPhase({ kind: 'failed', problem: `The API did not answer: ${message(err)}` });
    }
  }, []);
  useEffect(() => void start(storedKey(), false), []);

  const signOut = () => {
    forgetKey();
    setPhase({ kind: 'key', problem: null });
  };
  return (
    <>
      <header class="top">
        <h1>itemgen</h1>
        <nav>
          <a href="/docs">API</a>
          {phase.kind === 'ready' && phase.session.apiKey ? (
            <button type="button" onClick={signOut}>
              Sign out
            </button>
          ) : null}
        </nav>
      </header>
      {phase.kind === 'starting' ? <p class="empty">Connecting…</p> : null}
      {phase.kind === 'failed' ? (
        <p class="form-error" role="alert">
          {phase.problem} <button type="button" onClick={() => void start(storedKey(), false)}>Try again</button>
        </p>
      ) : null}
      {phase.kind === 'key' ? <KeyPrompt problem={phase.problem} signIn={(key) => start(key, true)} /> : null}
      {phase.kind === 'ready' ? (
        <Workspace
          session={phase.session}
          models={phase.models}
          refused={() => {
            forgetKey();
            setPhase({ kind: 'key', problem: 'The API key is no longer accepted; sign in again.' });
          }}
        />
      ) : null}
    </>
  );
}

/** A generation seen (submitted, streamed, listed) placed into the gallery's list, as its filter wants. */
function placed(s: GalleryState, g: Generation): GalleryState {
  const at = s.items.findIndex((x) => x.id === g.id);
  const wanted = s.filter === '' || s.filter === g.status;
  if (at >= 0) {
    const old = s.items[at]!;
    // A late event must not undo a finished state.
    if (isTerminal(old.status) && !isTerminal(g.status)) return s;
    const items = [...s.items];
    if (wanted) items[at] = g;
    else items.splice(at, 1);
    return { ...s, items };
  }
  const newest = s.items[0];
  if (!wanted || (newest && g.created_at < newest.created_at && !s.done)) return s;
  return { ...s, items: [g, ...s.items].sort((a, b) => (a.created_at < b.created_at ? 1 : -1)) };
}

function Workspace({ session, models: first, refused }: { session: Session; models: Model[]; refused(): void }) {
  const [models, setModels] = useState(first);
  const [running, setRunning] = useState<Map<string, Tracked>>(new Map());
  const [gallery, setGallery] = useState<GalleryState>({ items: [], cursor: null, done: false, loading: false, filter: '', problem: null });
  const [detail, setDetail] = useState<Generation | null>(null);
  const [lastSeed, setLastSeed] = useState<number | null>(null);
  const [live, setLive] = useState<LiveState>('connecting');
  const current = useRef(gallery);
  current.current = gallery;

  const track = useCallback((g: Generation) => {
    setRunning((m) => {
      const next = new Map(m);
      if (isTerminal(g.status)) next.delete(g.id);
      else {
        const before = m.get(g.id);
        const pace = before?.pace ?? (g.status === 'processing' && g.progress.step > 0 ? { at: Date.now(), step: g.progress.step } : undefined);
        next.set(g.id, { g, ...(before?.preview ? { preview: before.preview } : {}), ...(pace ? { pace } : {}) });
      }
      return next;
    });
    setGallery((s) => placed(s, g));
    setDetail((d) => (d && d.id === g.id ? g : d));
  }, []);
  const preview = useCallback((p: Preview) => {
    setRunning((m) => {
      const t = m.get(p.id);
      if (!t) return m;
      return new Map(m).set(p.id, { ...t, preview: { url: p.url, step: p.step } });
    });
  }, []);
  useEffect(() => followEvents(session, { generation: track, preview, state: setLive, unauthorized: refused }), [session]);

  // No runner has registered its model yet (one starts): ask again until one has.
  useEffect(() => {
    if (models.length > 0) return;
    const timer = setInterval(() => {
      fetchModels(session).then((m) => m !== 'needs_key' && m.length > 0 && setModels(m), () => {});
    }, MODEL_POLL_MS);
    return () => clearInterval(timer);
  }, [models.length]);

  const loadMore = useCallback(() => {
    const s = current.current;
    if (s.loading || s.done) return;
    const { filter, cursor } = s;
    setGallery({ ...s, loading: true, problem: null });
    current.current = { ...s, loading: true };
    session.client.list({ limit: PAGE, ...(cursor ? { cursor } : {}), ...(filter ? { status: filter } : {}) }).then(
      (page) =>
        setGallery((now) => {
          if (now.filter !== filter) return now;
          const known = new Set(now.items.map((g) => g.id));
          return { ...now, items: [...now.items, ...page.data.filter((g) => !known.has(g.id))], cursor: page.next_cursor, done: !page.next_cursor, loading: false };
        }),
      (err: unknown) => setGallery((now) => (now.filter === filter ? { ...now, loading: false, problem: `The history could not be loaded: ${message(err)}` } : now)),
    );
  }, [session]);
  const setFilter = (filter: GenerationStatus | '') => {
    const reset = { items: [], cursor: null, done: false, loading: false, filter, problem: null };
    current.current = reset;
    setGallery(reset);
    loadMore();
  };
  useEffect(loadMore, []);

  // The detail view follows the URL hash.
  useEffect(() => {
    const show = () => {
      const id = DETAIL_HASH.exec(location.hash)?.[1];
      if (!id) return setDetail(null);
      const known = current.current.items.find((g) => g.id === id);
      if (known) return setDetail(known);
      session.client.get(id).then(setDetail, () => (location.hash = ''));
    };
    show();
    addEventListener('hashchange', show);
    return () => removeEventListener('hashchange', show);
  }, [session]);

  const submitted = (g: Generation) => {
    setLastSeed(g.params.seed);
    track(g);
  };
  const model = models[0];
  return (
    <main class="workspace">
      <section class="make-section" aria-labelledby="make-title">
        <h2 id="make-title">Make</h2>
        {model ? (
          <MakeForm session={session} model={model} lastSeed={lastSeed} onSubmitted={submitted} />
        ) : (
          <p class="empty" role="status">
            Waiting for a runner to start and register its model…
          </p>
        )}
      </section>
      <section class="watch-section" aria-labelledby="watch-title">
        <h2 id="watch-title">
          Running <span class={`live live-${live}`}>{live === 'live' ? 'live' : live === 'connecting' ? 'connecting…' : 'reconnecting…'}</span>
        </h2>
        <Watch session={session} running={[...running.values()].sort((a, b) => (a.g.created_at < b.g.created_at ? 1 : -1))} />
      </section>
      <section class="gallery-section" aria-labelledby="gallery-title">
        <h2 id="gallery-title">Gallery</h2>
        <Gallery session={session} state={gallery} loadMore={loadMore} setFilter={setFilter} open={(id) => (location.hash = `#/generations/${id}`)} />
      </section>
      {detail ? (
        <Detail
          key={detail.id}
          session={session}
          g={detail}
          close={() => {
            if (location.hash) location.hash = '';
            setDetail(null);
          }}
          submit={async (body: SubmitBody) => submitted(await session.client.submit(body))}
        />
      ) : null}
    </main>
  );
}
