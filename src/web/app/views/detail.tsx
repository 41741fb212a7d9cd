// The detail of one generation, in a modal dialog (Escape closes it, focus stays inside): the
// full image (each of a batch), its parameters, the infotext its PNG carries, the seed of each
// image, where the time went, and what to do next: Rerun (same seed: the same image), Vary seed,
// Download, Copy as curl, Copy as CLI.
import { useEffect, useRef, useState } from 'preact/hooks';
import type { Generation, SubmitBody } from '../../../client/types.ts';
import { asCli, asCurl } from '../commands.ts';
import { loadImage } from '../images.tsx';
import { pngText } from '../png-text.ts';
import type { Session } from '../session.ts';

interface Props {
  session: Session;
  g: Generation;
  close(): void;
  submit(body: SubmitBody): Promise<void>;
}

/** Where a timing falls in a job's flow (unknown ones last), so they read in order. */
const FLOW = ['queued_ms', 'claim_ms', 'text_encoder_ms', 'denoising_ms', 'decode_ms', 'png_ms', 'upload_ms'];
const stage = (k: string) => (FLOW.includes(k) ? FLOW.indexOf(k) : FLOW.length);
const ms = (n: number | undefined) => (n === undefined ? '' : n >= 1000 ? `${(n / 1000).toFixed(1)} s` : `${Math.round(n)} ms`);

export function Detail({ session, g, close, submit }: Props) {
  const dialog = useRef<HTMLDialogElement>(null);
  const [index, setIndex] = useState(0);
  const [image, setImage] = useState<{ url: string; infotext: string | undefined } | null>(null);
  const [note, setNote] = useState<string | null>(null);
  const [shown, setShown] = useState<{ label: string; text: string } | null>(null);
  const images = g.images ?? [];
  const current = images[index];

  useEffect(() => {
    const d = dialog.current;
    if (d && !d.open) d.showModal();
  }, []);
  useEffect(() => {
    setImage(null);
    if (!current) return;
    let live = true;
    // The PNG's own bytes: shown, downloadable, and read for the infotext they carry.
    void (async () => {
      const { blob, url } = await loadImage(session, current.url);
      const bytes = new Uint8Array(await blob.arrayBuffer());
      if (live) setImage({ url, infotext: pngText(bytes).get('parameters') });
    })().catch((err: unknown) => live && setNote(`The image could not be loaded: ${err instanceof Error ? err.message : String(err)}`));
    return () => {
      live = false;
    };
  }, [g.id, current?.url]);

  const copy = async (label: string, text: string) => {
    setShown({ label, text });
    try {
      await navigator.clipboard.writeText(text);
      setNote(`${label} copied.`);
    } catch {
      setNote(`${label}: the browser did not allow copying; select the text below.`);
    }
  };
  const run = async (body: SubmitBody, what: string) => {
    try {
      await submit(body);
      close();
    } catch (err) {
      setNote(`${what} was refused: ${err instanceof Error ? err.message : String(err)}`);
    }
  };
  const p = g.params;
  // Submitted as they are, the parameters run the same images again; without the seed, new ones.
  const { seed: _seed, ...withoutSeed } = p;
  const rows: [string, string][] = [
    ['Status', g.status + (g.error ? `: ${g.error.message}` : '')],
    ['Prompt', p.prompt],
    ['Negative prompt', p.negative_prompt || '(none)'],
    ['Size', `${p.width} × ${p.height}`],
    ['Steps', String(p.num_inference_steps)],
    ['Guidance', String(p.guidance_scale)],
    ['Scheduler', p.scheduler],
    ['Seed', String(p.seed)],
    ...(g.ran ? ([['Model', `${g.ran.model.name} (${g.ran.model.hash.slice(0, 10)}, ${g.ran.execution_provider})`]] as [string, string][]) : []),
    ['Created', new Date(g.created_at).toLocaleString()],
  ];
  const timings = (Object.entries(g.timings ?? {}).filter(([, v]) => typeof v === 'number') as [string, number][]).sort(
    ([a], [b]) => stage(a) - stage(b),
  );

  return (
    <dialog ref={dialog} class="detail" aria-labelledby="detail-title" onClose={close}>
      <header>
        <h2 id="detail-title">{p.prompt}</h2>
        <button type="button" onClick={() => dialog.current?.close()} aria-label="Close">
          ×
        </button>
      </header>
      <div class="detail-actions">
        <button type="button" class="primary" onClick={() => run(p, 'Rerun')}>
          Rerun
        </button>
        <button type="button" onClick={() => run(withoutSeed, 'Vary seed')}>
          Vary seed
        </button>
        {image ? (
          <a class="button" href={image.url} download={`${g.id}-${index}.png`}>
            Download
          </a>
        ) : null}
        <button type="button" onClick={() => copy('curl', asCurl(location.origin, p, session.apiKey !== null))}>
          Copy as curl
        </button>
        <button type="button" onClick={() => copy('CLI', asCli(location.origin, p))}>
          Copy as CLI
        </button>
      </div>
      {note ? (
        <p class="note" role="status">
          {note}
        </p>
      ) : null}
      {shown ? <pre class="command" aria-label={`${shown.label} command`}>{shown.text}</pre> : null}
      <div class="detail-body">
        <figure>
          {image ? <img src={image.url} alt={`${p.prompt}, image ${index + 1} of ${images.length}`} width={p.width} height={p.height} /> : current ? <span class="img-loading" role="img" aria-label="Loading the image" /> : <span class="img-missing">No image ({g.status})</span>}
          {images.length > 1 ? (
            <div class="choose" role="group" aria-label="Images of this generation">
              {images.map((im, i) => (
                <button type="button" key={im.index} aria-pressed={i === index} onClick={() => setIndex(i)}>
                  Image {i + 1}
                </button>
              ))}
            </div>
          ) : null}
        </figure>
        <div class="facts">
          <dl>
            {rows.map(([k, v]) => (
              <div key={k}>
                <dt>{k}</dt>
                <dd>{v}</dd>
              </div>
            ))}
          </dl>
          {images.length > 0 ? (
            <>
              <h3>Seed per image</h3>
              <ul class="seeds">
                {images.map((im) => (
                  <li key={im.index} data-seed={im.seed}>
                    Image {im.index + 1}: {im.seed}
                  </li>
                ))}
              </ul>
            </>
          ) : null}
          {timings.length > 0 ? (
            <>
              <h3>Timings</h3>
              <dl class="timings">
                {timings.map(([k, v]) => (
                  <div key={k}>
                    <dt>{k.replace(/_ms$/, '').replaceAll('_', ' ')}</dt>
                    <dd>{ms(v)}</dd>
                  </div>
                ))}
              </dl>
            </>
          ) : null}
          {image?.infotext ? (
            <>
              <h3>Infotext</h3>
              <pre class="infotext">{image.infotext}</pre>
            </>
          ) : null}
        </div>
      </div>
    </dialog>
  );
}
