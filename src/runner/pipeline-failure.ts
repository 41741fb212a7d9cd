// What a pipeline error means for the job and for the client who asked for it: a stable code and a
// message that names what to change, without the stack (which is ours, not the client's).
import type { GenerationParams } from '../core/request.ts';

const OUT_OF_MEMORY = /out of memory|failed to allocate|bad_alloc|cudaErrorMemoryAllocation/i;
/** onnxruntime's words for an input the graph does not take (e.g. a size a fixed-shape export was not made for). */
const REFUSED_INPUT = /invalid dimensions|invalid rank|shape mismatch/i;

export interface PipelineFailure {
  /** `generation_failed` is a fault of ours; the others are what the request asked for. */
  code: 'invalid_parameters' | 'resource_exhausted' | 'generation_failed';
  message: string;
}

/**
 * What a pipeline error means for the job. None is worth another try: the same parameters meet the
 * same model, and an allocation that did not fit will not fit on the next runner of the pool either
 * (they are alike), so it fails at once, naming the size.
 */
export function classifyPipelineError(err: unknown, params: GenerationParams): PipelineFailure {
  const text = err instanceof Error ? err.message : String(err);
  if (OUT_OF_MEMORY.test(text)) {
    const batch = params.num_images * (params.guidance_scale > 1 ? 2 : 1);
    return {
      code: 'resource_exhausted',
      message:
        `The model ran out of memory for ${params.num_images} image(s) of ${params.width}×${params.height} ` +
        `(a batch of ${batch} latents of ${params.width / 8}×${params.height / 8}${params.guidance_scale > 1 ? ', doubled by guidance' : ''}); ` +
        `ask for fewer images or a smaller size. (${text})`,
    };
  }
  if (err instanceof RangeError || REFUSED_INPUT.test(text)) {
    return { code: 'invalid_parameters', message: `The model cannot generate with these parameters: ${text}` };
  }
  return { code: 'generation_failed', message: `The pipeline failed: ${text}` };
}
