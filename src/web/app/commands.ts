// A generation's parameters as a command to run it again elsewhere: curl against the API, or the
// itemgen CLI. The key is never written out: both read it from $ITEMGEN_API_KEY.
import type { GenerationParams } from '../../client/types.ts';

/** A word for a POSIX shell, single-quoted. */
const sh = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

export function asCurl(origin: string, params: GenerationParams, withKey: boolean): string {
  return [
    `curl -sS -X POST ${sh(`${origin}/v1/generations`)}`,
    ...(withKey ? ['-H "Authorization: Bearer $ITEMGEN_API_KEY"'] : []),
    "-H 'Content-Type: application/json'",
    `-d ${sh(JSON.stringify(params))}`,
  ].join(' \\\n  ');
}

export function asCli(origin: string, params: GenerationParams): string {
  const words = ['itemgen', 'generate', sh(params.prompt)];
  if (params.negative_prompt) words.push('--negative', sh(params.negative_prompt));
  words.push(
    '--width', String(params.width),
    '--height', String(params.height),
    '--steps', String(params.num_inference_steps),
    '--guidance', String(params.guidance_scale),
    '--scheduler', params.scheduler,
    '-n', String(params.num_images),
    '--seed', String(params.seed),
    '--url', sh(origin),
  );
  return words.join(' ');
}
