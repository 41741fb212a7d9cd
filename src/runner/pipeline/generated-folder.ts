// The files around the ONNX graphs that the generated model folders (tiny-model.ts,
// sd15-model.ts) share: model_index.json, itemgen.json, SD 1.5's scheduler config, a small CLIP
// tokenizer in SD 1.5's file formats, and the VAE decoder's config — the diffusers ONNX layout
// (docs/architecture.md, decision 6).
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { BYTE_SYMBOL, bpe, byteSymbols } from './tokenizer.ts';

/** SD 1.5's tokenizer always pads to 77 tokens. */
export const MAX_LENGTH = 77;
export const LATENT_CHANNELS = 4;
export const VAE_SCALING_FACTOR = 0.18215;
const DIFFUSERS_VERSION = '0.30.0';

/** Stable Diffusion 1.5's scheduler/scheduler_config.json, which the generated models ship as their own. */
export const SD15_SCHEDULER_CONFIG = {
  _class_name: 'PNDMScheduler',
  beta_end: 0.012,
  beta_schedule: 'scaled_linear',
  beta_start: 0.00085,
  clip_sample: false,
  num_train_timesteps: 1000,
  prediction_type: 'epsilon',
  set_alpha_to_one: false,
  skip_prk_steps: true,
  steps_offset: 1,
  timestep_spacing: 'leading',
  trained_betas: null,
};

/** Words the tokenizer knows whole; anything else falls back to smaller pieces and single bytes. */
const VOCABULARY_WORDS = [
  'tsuki', 'advtr', 'sword', 'shield', 'potion', 'glowing', 'blurry', 'low', 'quality', 'magic',
  'ring', 'red', 'blue', 'green', 'gold', 'iron', 'wooden', 'fire', 'ice', 'staff', 'bow', 'helmet',
  'armor', 'icon', 'item', 'pixel', 'art', 'of', 'the', 'and', 'with',
];

const BOS = '<|startoftext|>';
const EOS = '<|endoftext|>';

export const jsonBytes = (value: unknown): Uint8Array => Buffer.from(`${JSON.stringify(value, null, 2)}\n`);

/** A diffusers `config.json`: the class, its version, then the settings, in the order diffusers writes them. */
export const diffusersConfig = (className: string, settings: Record<string, unknown>): Uint8Array =>
  jsonBytes({ _class_name: className, _diffusers_version: DIFFUSERS_VERSION, ...settings });

/** The generated tokenizer's vocabulary; its ids are all below CLIP's 49,408, `<|endoftext|>` the highest. */
export function tokenizerVocabulary(): Map<string, number> {
  return clipTokenizer(VOCABULARY_WORDS).vocab;
}

/**
 * Every file of a generated folder but the ONNX graphs and their weights. `description` goes to
 * itemgen.json, which says what the folder is to whoever finds it.
 */
export function folderFiles(description: string): Map<string, Uint8Array> {
  const tokenizer = clipTokenizer(VOCABULARY_WORDS);
  const files = new Map<string, Uint8Array>();
  files.set(
    'model_index.json',
    jsonBytes({
      _class_name: 'OnnxStableDiffusionPipeline',
      _diffusers_version: DIFFUSERS_VERSION,
      feature_extractor: [null, null],
      requires_safety_checker: false,
      safety_checker: [null, null],
      scheduler: ['diffusers', 'PNDMScheduler'],
      text_encoder: ['diffusers', 'OnnxRuntimeModel'],
      tokenizer: ['transformers', 'CLIPTokenizer'],
      unet: ['diffusers', 'OnnxRuntimeModel'],
      vae_decoder: ['diffusers', 'OnnxRuntimeModel'],
      vae_encoder: [null, null],
    }),
  );
  files.set(
    'itemgen.json',
    jsonBytes({
      prompt_prefix: 'tsuki_advtr, ',
      default_negative_prompt: 'blurry, low quality',
      default_scheduler: 'ddim',
      vae_scaling_factor: VAE_SCALING_FACTOR,
      description,
    }),
  );
  const { _class_name, ...schedulerSettings } = SD15_SCHEDULER_CONFIG;
  files.set('scheduler/scheduler_config.json', diffusersConfig(_class_name, schedulerSettings));
  files.set('tokenizer/vocab.json', jsonBytes(Object.fromEntries(tokenizer.vocab)));
  files.set('tokenizer/merges.txt', Buffer.from(`#version: 0.2\n${tokenizer.merges.map((m) => m.join(' ')).join('\n')}\n`));
  // The special tokens in the forms SD 1.5's own tokenizer files use (objects and plain strings mixed).
  const addedToken = (content: string) => ({ content, lstrip: false, normalized: true, rstrip: false, single_word: false });
  files.set(
    'tokenizer/tokenizer_config.json',
    jsonBytes({
      add_prefix_space: false,
      bos_token: { __type: 'AddedToken', ...addedToken(BOS) },
      do_lower_case: true,
      eos_token: { __type: 'AddedToken', ...addedToken(EOS) },
      errors: 'replace',
      model_max_length: MAX_LENGTH,
      pad_token: EOS,
      tokenizer_class: 'CLIPTokenizer',
      unk_token: { __type: 'AddedToken', ...addedToken(EOS) },
    }),
  );
  files.set(
    'tokenizer/special_tokens_map.json',
    jsonBytes({ bos_token: addedToken(BOS), eos_token: addedToken(EOS), pad_token: EOS, unk_token: addedToken(EOS) }),
  );
  files.set(
    'vae_decoder/config.json',
    diffusersConfig('AutoencoderKL', { in_channels: 3, latent_channels: LATENT_CHANNELS, out_channels: 3, scaling_factor: VAE_SCALING_FACTOR }),
  );
  return files;
}

/** Writes `files` under `dir` (creating folders) and resolves to their relative paths. */
export async function writeFiles(dir: string, files: Map<string, Uint8Array>): Promise<string[]> {
  for (const [file, bytes] of files) {
    await mkdir(dirname(join(dir, file)), { recursive: true });
    await writeFile(join(dir, file), bytes);
  }
  return [...files.keys()];
}

/**
 * A CLIP-style BPE vocabulary in CLIP's own order: the 256 byte symbols, the same with `</w>`, one
 * token per merge, then the two special tokens — so `<|endoftext|>` has the highest id, which the
 * text encoders rely on to find it, as CLIP's does. The byte table and BPE are the tokenizer's own,
 * so the merges written are the ones the shipped tokenizer applies.
 */
function clipTokenizer(words: string[]): { vocab: Map<string, number>; merges: [string, string][] } {
  // CLIP's vocabulary lists the byte symbols in bytes_to_unicode's order, which is by code point.
  const bytes = [...BYTE_SYMBOL].sort();
  const vocab = new Map<string, number>();
  const add = (token: string) => {
    if (!vocab.has(token)) vocab.set(token, vocab.size);
  };
  for (const symbol of bytes) add(symbol);
  for (const symbol of bytes) add(`${symbol}</w>`);
  // Each word gets merges of its two leading pieces until BPE yields it whole. New merges rank after
  // every earlier one, so words added before keep encoding as they did.
  const merges: [string, string][] = [];
  const ranks = new Map<string, number>();
  for (const word of words) {
    for (let pieces = bpe(byteSymbols(word), ranks); pieces.length > 1; pieces = bpe(byteSymbols(word), ranks)) {
      const merge: [string, string] = [pieces[0]!, pieces[1]!];
      ranks.set(merge.join(' '), merges.length);
      merges.push(merge);
      add(merge.join(''));
    }
  }
  add(BOS);
  add(EOS);
  return { vocab, merges };
}
