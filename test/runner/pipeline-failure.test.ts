// What each kind of pipeline error becomes for the client: a table of errors as onnxruntime and
// the pipeline throw them, and the code and message each must give.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { generationParamsSchema } from '../../src/core/request.ts';
import { classifyPipelineError } from '../../src/runner/pipeline-failure.ts';

const params = (over: Record<string, unknown> = {}) =>
  generationParamsSchema.parse({ prompt: 'a glowing sword', width: 512, height: 768, num_images: 3, guidance_scale: 7.5, seed: 7, ...over });

test('what each error becomes: out of memory before a refused input, anything else a fault of ours', () => {
  const cases: [unknown, 'invalid_parameters' | 'resource_exhausted' | 'generation_failed'][] = [
    [new Error('Failed to allocate memory for requested buffer of size 268435456'), 'resource_exhausted'],
    [new Error('CUDA failure 2: out of memory'), 'resource_exhausted'],
    [new Error('std::bad_alloc'), 'resource_exhausted'],
    [new Error('CUDA error cudaErrorMemoryAllocation:out of memory'), 'resource_exhausted'],
    // An allocation that failed in a size check is still memory, not the parameters.
    [new RangeError('Array buffer allocation failed: out of memory'), 'resource_exhausted'],
    [new RangeError('num_inference_steps must be an integer in [1, original_inference_steps = 10], got 20'), 'invalid_parameters'],
    [new Error('Got invalid dimensions for input: sample for the following indices index: 2 Got: 96 Expected: 64'), 'invalid_parameters'],
    [new Error('Invalid rank for input: latents Got: 3 Expected: 4'), 'invalid_parameters'],
    [new Error('Shape mismatch attempting to re-use buffer'), 'invalid_parameters'],
    [new TypeError("Cannot read properties of undefined (reading 'dims')"), 'generation_failed'],
    ['a string thrown', 'generation_failed'],
  ];
  for (const [err, code] of cases) assert.is(classifyPipelineError(err, params()).code, code, String(err));
});

test('each message keeps the original text, so the client sees what the model said', () => {
  assert.is(classifyPipelineError(new RangeError('bad size'), params()).message, 'The model cannot generate with these parameters: bad size');
  assert.is(classifyPipelineError(new Error('boom'), params()).message, 'The pipeline failed: boom');
  assert.is(classifyPipelineError('boom', params()).message, 'The pipeline failed: boom');
});

test('out of memory names the batch it tried: doubled by guidance above 1, latents an eighth of the size', () => {
  const oom = new Error('Failed to allocate memory');
  assert.is(
    classifyPipelineError(oom, params()).message,
    'The model ran out of memory for 3 image(s) of 512×768 (a batch of 6 latents of 64×96, doubled by guidance); ask for fewer images or a smaller size. (Failed to allocate memory)',
  );
  assert.is(
    classifyPipelineError(oom, params({ guidance_scale: 1, num_images: 2 })).message,
    'The model ran out of memory for 2 image(s) of 512×768 (a batch of 2 latents of 64×96); ask for fewer images or a smaller size. (Failed to allocate memory)',
  );
});

test.run();
