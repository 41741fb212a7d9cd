// Watch: each unfinished generation of this key, live from the page's event stream: its place in
// the queue while pending, then a progress bar with step / total and an estimate of the time
// left, and the latest preview of its latents; a Cancel button throughout.
import { useState } from 'preact/hooks';
import { ItemgenError } from '../../../client/errors.ts';
import type { Generation } from '../../../client/types.ts';
import type { Session } from '../session.ts';

export interface Tracked {
  g: Generation;
  /** The latest preview (a data: URL) and its step. */
  preview?: { url: string; step: number };
  /** When the page first saw it step, to estimate the time left from the pace since. */
  pace?: { at: number; step: number };
}

/** Seconds left at the pace seen so far; undefined until two steps were seen. */
export function secondsLeft(t: Tracked, now: number): number | undefined {
  const { pace, g } = t;
  if (!pace || g.progress.step <= pace.step) return undefined;
  const perStep = (now - pace.at) / (g.progress.step - pace.step);
  return Math.max(0, (perStep * (g.progress.total - g.progress.step)) / 1000);
}

function Card({ session, t }: { session: Session; t: Tracked }) {
  const { g } = t;
  const [problem, setProblem] = useState<string | null>(null);
  const [canceling, setCanceling] = useState(false);
  const eta = secondsLeft(t, Date.now());
  const cancel = async () => {
    setCanceling(true);
    try {
      await session.client.cancel(g.id);
    } catch (err) {
      // Finished meanwhile (409): the stream brings the final state.
      if (!(err instanceof ItemgenError) || err.status !== 409) setProblem(err instanceof Error ? err.message : String(err));
      setCanceling(false);
    }
  };
  const label = `Generation “${g.params.prompt.slice(0, 60)}”`;
  return (
    <li class="card running" aria-label={label} data-id={g.id} data-status={g.status}>
      <div class="preview">
        {t.preview ? <img src={t.preview.url} alt={`Preview at step ${t.preview.step}`} width={g.params.width} height={g.params.height} /> : <span class="img-loading" aria-hidden="true" />}
      </div>
      <div class="about">
        <p class="prompt">{g.params.prompt}</p>
        {g.status === 'pending' ? (
          <p class="queue">{g.queue_position ? `Queued: ${g.queue_position} ahead` : 'Queued: next'}</p>
        ) : (
          <>
            <progress max={g.progress.total} value={g.progress.step} aria-label="Progress" />
            <p class="steps">
              Step {g.progress.step} / {g.progress.total}
              {eta === undefined ? '' : eta < 1 ? ' · under a second left' : ` · about ${Math.round(eta)} s left`}
            </p>
          </>
        )}
        {problem ? <p class="form-error" role="alert">{problem}</p> : null}
        <button type="button" onClick={cancel} disabled={canceling}>
          Cancel
        </button>
      </div>
    </li>
  );
}

export function Watch({ session, running }: { session: Session; running: Tracked[] }) {
  if (running.length === 0) return <p class="empty">Nothing running. Generated items appear here while they are made.</p>;
  return (
    <ul class="cards" aria-live="polite">
      {running.map((t) => (
        <Card session={session} t={t} key={t.g.id} />
      ))}
    </ul>
  );
}
