// Keep: this key's history, newest first, a page at a time as the end of the list scrolls into
// view (GET /v1/generations with next_cursor), filtered by status; thumbnails, never full PNGs.
import { useEffect, useRef } from 'preact/hooks';
import type { Generation, GenerationStatus } from '../../../client/types.ts';
import { AuthImage } from '../images.tsx';
import type { Session } from '../session.ts';

export interface GalleryState {
  items: Generation[];
  cursor: string | null;
  /** No page after this one. */
  done: boolean;
  loading: boolean;
  filter: GenerationStatus | '';
  problem: string | null;
}

export const FILTERS: (GenerationStatus | '')[] = ['', 'completed', 'pending', 'processing', 'failed', 'canceled'];

interface Props {
  session: Session;
  state: GalleryState;
  loadMore(): void;
  setFilter(f: GenerationStatus | ''): void;
  open(id: string): void;
}

function Item({ session, g, open }: { session: Session; g: Generation; open(id: string): void }) {
  const first = g.images?.[0];
  const label = `${g.params.prompt} (${g.status}${g.images && g.images.length > 1 ? `, ${g.images.length} images` : ''})`;
  return (
    <li class="tile" data-id={g.id} data-status={g.status}>
      <button type="button" onClick={() => open(g.id)} aria-label={`Open ${label}`}>
        {first ? (
          <AuthImage session={session} src={first.thumbnail_url} alt={g.params.prompt} class="thumb" width={g.params.width} height={g.params.height} />
        ) : (
          <span class={`thumb status-${g.status}`} aria-hidden="true">
            {g.status === 'processing' ? `${Math.round((100 * g.progress.step) / Math.max(1, g.progress.total))} %` : g.status}
          </span>
        )}
        <span class="caption">{g.params.prompt}</span>
      </button>
    </li>
  );
}

export function Gallery({ session, state, loadMore, setFilter, open }: Props) {
  const end = useRef<HTMLDivElement>(null);
  const more = useRef(loadMore);
  more.current = loadMore;
  useEffect(() => {
    if (!end.current) return;
    const seen = new IntersectionObserver((entries) => entries.some((e) => e.isIntersecting) && more.current(), { rootMargin: '400px' });
    seen.observe(end.current);
    return () => seen.disconnect();
  }, []);
  // A page that did not fill the screen leaves the end in view: the observer fires only on changes.
  useEffect(() => {
    const el = end.current;
    if (el && !state.loading && !state.done && el.getBoundingClientRect().top < innerHeight + 400) loadMore();
  }, [state.loading, state.done, state.items.length]);
  return (
    <>
      <div class="gallery-bar">
        <label for="filter">Show</label>
        <select id="filter" value={state.filter} onChange={(ev) => setFilter((ev.currentTarget as HTMLSelectElement).value as GenerationStatus | '')}>
          {FILTERS.map((f) => (
            <option value={f} key={f}>
              {f === '' ? 'all' : f}
            </option>
          ))}
        </select>
      </div>
      {state.items.length === 0 && state.done ? <p class="empty">No generations{state.filter ? ` ${state.filter}` : ''} yet.</p> : null}
      <ul class="tiles">
        {state.items.map((g) => (
          <Item session={session} g={g} open={open} key={g.id} />
        ))}
      </ul>
      {state.problem ? (
        <p class="form-error" role="alert">
          {state.problem} <button type="button" onClick={loadMore}>Try again</button>
        </p>
      ) : null}
      <div ref={end} class="gallery-end" aria-hidden="true">
        {state.loading ? 'Loading…' : ''}
      </div>
    </>
  );
}
