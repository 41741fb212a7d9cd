// Make: the form of a generation, within the served model's limits (GET /v1/models). The form
// checks what it can itself; whatever the API still refuses comes back as problem details and
// each field issue is shown at the field it names, the rest above the button.
import { useEffect, useState } from 'preact/hooks';
import { ItemgenError } from '../../../client/errors.ts';
import type { Generation, SubmitBody } from '../../../client/types.ts';
import type { Limits, Model, Session } from '../session.ts';
import { described, Field } from './field.tsx';

type Scheduler = Model['default_scheduler'];
type Values = Record<'prompt' | 'negative_prompt' | 'width' | 'height' | 'num_inference_steps' | 'guidance_scale' | 'scheduler' | 'num_images' | 'seed', string>;
type Errors = Partial<Record<keyof Values | 'form', string>>;

const PRESETS: [string, number, number][] = [
  ['Square', 512, 512],
  ['Portrait', 512, 768],
  ['Landscape', 768, 512],
  ['Small', 256, 256],
  ['Large square', 768, 768],
];

const SEED_HINT = 'Empty: random';

interface Props {
  session: Session;
  model: Model;
  lastSeed: number | null;
  onSubmitted(g: Generation): void;
}

function initial(model: Model): Values {
  const l = model.limits;
  return {
    prompt: '',
    negative_prompt: '',
    width: String(l.width.default),
    height: String(l.height.default),
    num_inference_steps: String(Math.min(30, l.num_inference_steps.default ?? 30)),
    guidance_scale: String(l.guidance_scale.default ?? 7.5),
    scheduler: model.default_scheduler,
    num_images: String(l.num_images.default ?? 1),
    seed: '',
  };
}

const maxSteps = (l: Limits, s: Scheduler) => Math.min(l.num_inference_steps.max, l.steps_per_scheduler[s]?.max ?? l.num_inference_steps.max);

/** The form's own checks: the same limits the API enforces, so most mistakes never leave the page. */
function check(v: Values, l: Limits): Errors {
  const e: Errors = {};
  const int = (key: keyof Values, min: number, max: number, multiple = 1) => {
    const n = Number(v[key]);
    if (v[key].trim() === '' || !Number.isInteger(n) || n < min || n > max || n % multiple !== 0) {
      e[key] = `A whole number from ${min} to ${max}${multiple > 1 ? `, a multiple of ${multiple}` : ''}.`;
    }
  };
  if (!v.prompt.trim()) e.prompt = 'Describe the item.';
  else if (v.prompt.length > l.prompt_chars) e.prompt = `At most ${l.prompt_chars} characters.`;
  if (v.negative_prompt.length > l.prompt_chars) e.negative_prompt = `At most ${l.prompt_chars} characters.`;
  int('width', l.width.min, l.width.max, l.width.multiple_of);
  int('height', l.height.min, l.height.max, l.height.multiple_of);
  int('num_inference_steps', l.num_inference_steps.min, maxSteps(l, v.scheduler as Scheduler));
  int('num_images', l.num_images.min, l.num_images.max);
  const g = Number(v.guidance_scale);
  if (v.guidance_scale.trim() === '' || !Number.isFinite(g) || g < l.guidance_scale.min || g > l.guidance_scale.max) {
    e.guidance_scale = `A number from ${l.guidance_scale.min} to ${l.guidance_scale.max}.`;
  }
  if (v.seed.trim() !== '') int('seed', 0, 2 ** 32 - 1);
  return e;
}

function bodyOf(v: Values): SubmitBody {
  return {
    prompt: v.prompt,
    ...(v.negative_prompt ? { negative_prompt: v.negative_prompt } : {}),
    width: Number(v.width),
    height: Number(v.height),
    num_inference_steps: Number(v.num_inference_steps),
    guidance_scale: Number(v.guidance_scale),
    scheduler: v.scheduler as Scheduler,
    num_images: Number(v.num_images),
    ...(v.seed.trim() !== '' ? { seed: Number(v.seed) } : {}),
  };
}

export function MakeForm({ session, model, lastSeed, onSubmitted }: Props) {
  const l = model.limits;
  const [values, setValues] = useState<Values>(() => initial(model));
  const [errors, setErrors] = useState<Errors>({});
  const [busy, setBusy] = useState(false);
  // The page is usable once this form is: the browser test measures up to this mark.
  useEffect(() => {
    performance.mark('itemgen-interactive');
    document.documentElement.dataset.ready = 'true';
  }, []);
  const set = (key: keyof Values) => (ev: Event) => {
    const value = (ev.currentTarget as HTMLInputElement).value;
    setValues((v) => ({ ...v, [key]: value }));
    setErrors((e) => ({ ...e, [key]: undefined, form: undefined }));
  };
  const preset = PRESETS.find(([, w, h]) => String(w) === values.width && String(h) === values.height);
  const presets = PRESETS.filter(([, w, h]) => w >= l.width.min && w <= l.width.max && h >= l.height.min && h <= l.height.max);

  async function submit(ev: Event) {
    ev.preventDefault();
    const found = check(values, l);
    setErrors(found);
    if (Object.keys(found).length > 0) return;
    setBusy(true);
    try {
      onSubmitted(await session.client.submit(bodyOf(values)));
    } catch (err) {
      if (!(err instanceof ItemgenError)) throw err;
      const next: Errors = {};
      const rest: string[] = [];
      for (const f of err.fields) {
        const key = f.path.split('.')[0] as keyof Values;
        if (key in values) next[key] = f.message;
        else rest.push(f.message);
      }
      if (err.fields.length === 0 || rest.length > 0) next.form = rest.length > 0 ? rest.join(' ') : err.detail;
      setErrors(next);
    } finally {
      setBusy(false);
    }
  }

  const steps = maxSteps(l, values.scheduler as Scheduler);
  const negativeHint = model.default_negative_prompt ? `Empty: “${model.default_negative_prompt}”` : undefined;
  return (
    <form class="make" onSubmit={submit} noValidate aria-label="Make an item">
      <Field id="prompt" label="Prompt" error={errors.prompt} wide>
        <textarea {...described('prompt', errors.prompt)} name="prompt" rows={3} maxLength={l.prompt_chars} value={values.prompt} onInput={set('prompt')} placeholder="a glowing sword, tsuki_advtr" />
      </Field>
      <Field id="negative_prompt" label="Negative prompt" error={errors.negative_prompt} wide hint={negativeHint}>
        <input {...described('negative_prompt', errors.negative_prompt, negativeHint)} name="negative_prompt" maxLength={l.prompt_chars} value={values.negative_prompt} onInput={set('negative_prompt')} />
      </Field>
      <Field id="size" label="Size" wide>
        <select
          id="size"
          value={preset ? preset[0] : 'custom'}
          onChange={(ev) => {
            const p = PRESETS.find(([name]) => name === (ev.currentTarget as HTMLSelectElement).value);
            if (p) setValues((v) => ({ ...v, width: String(p[1]), height: String(p[2]) }));
          }}
        >
          {presets.map(([name, w, h]) => (
            <option value={name} key={name}>
              {w} × {h} ({name.toLowerCase()})
            </option>
          ))}
          <option value="custom">Custom</option>
        </select>
      </Field>
      <Field id="width" label="Width" error={errors.width}>
        <input {...described('width', errors.width)} name="width" type="number" inputMode="numeric" min={l.width.min} max={l.width.max} step={l.width.multiple_of} value={values.width} onInput={set('width')} />
      </Field>
      <Field id="height" label="Height" error={errors.height}>
        <input {...described('height', errors.height)} name="height" type="number" inputMode="numeric" min={l.height.min} max={l.height.max} step={l.height.multiple_of} value={values.height} onInput={set('height')} />
      </Field>
      <Field id="num_inference_steps" label="Steps" error={errors.num_inference_steps}>
        <input {...described('num_inference_steps', errors.num_inference_steps)} name="num_inference_steps" type="number" inputMode="numeric" min={l.num_inference_steps.min} max={steps} value={values.num_inference_steps} onInput={set('num_inference_steps')} />
      </Field>
      <Field id="guidance_scale" label="Guidance" error={errors.guidance_scale}>
        <input {...described('guidance_scale', errors.guidance_scale)} name="guidance_scale" type="number" inputMode="decimal" min={l.guidance_scale.min} max={l.guidance_scale.max} step={0.5} value={values.guidance_scale} onInput={set('guidance_scale')} />
      </Field>
      <Field id="scheduler" label="Scheduler" error={errors.scheduler}>
        <select {...described('scheduler', errors.scheduler)} name="scheduler" value={values.scheduler} onChange={set('scheduler')}>
          {Object.keys(l.steps_per_scheduler).map((s) => (
            <option value={s} key={s}>
              {s}
            </option>
          ))}
        </select>
      </Field>
      <Field id="num_images" label="Images" error={errors.num_images}>
        <input {...described('num_images', errors.num_images)} name="num_images" type="number" inputMode="numeric" min={l.num_images.min} max={l.num_images.max} value={values.num_images} onInput={set('num_images')} />
      </Field>
      <Field id="seed" label="Seed" error={errors.seed} hint={SEED_HINT} wide>
        <div class="with-button">
          <input {...described('seed', errors.seed, SEED_HINT)} name="seed" type="number" inputMode="numeric" min={0} max={2 ** 32 - 1} value={values.seed} onInput={set('seed')} placeholder="random" />
          <button type="button" disabled={lastSeed === null} onClick={() => lastSeed !== null && setValues((v) => ({ ...v, seed: String(lastSeed) }))}>
            Reuse last seed
          </button>
        </div>
      </Field>
      <div class="actions wide">
        {errors.form ? (
          <p class="form-error" role="alert">
            {errors.form}
          </p>
        ) : null}
        <button type="submit" class="primary" disabled={busy}>
          Generate
        </button>
      </div>
    </form>
  );
}
