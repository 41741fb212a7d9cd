// The element-wise kernels of every denoising step: classifier-free guidance and the schedulers'
// steps in Stable Diffusion's configuration (epsilon prediction, no clipping). As plain JS they are
// most of the work a step does outside onnxruntime; SIMD lanes (four float32 or two float64 per
// instruction) cut it to a fraction.
//
// The module's bytes are written here rather than shipped as a binary: it is small, and a readable
// emitter can be reviewed. Where WebAssembly SIMD is unavailable, the JS loops run instead.
import { jsKernels } from './reference.ts';
import type { Kernels } from './types.ts';
import { kernelModuleBytes, type KernelExports, wasmKernels } from './wasm.ts';

export { jsKernels } from './reference.ts';
export type * from './types.ts';
export { kernelModuleBytes } from './wasm.ts';

/**
 * The SIMD kernels when this runtime validates and instantiates the module, else the JS loops.
 * `validate` is a parameter so that tests can take the fallback path.
 */
export function selectKernels(validate: (bytes: Uint8Array<ArrayBuffer>) => boolean = (bytes) => WebAssembly.validate(bytes)): Kernels {
  if (typeof WebAssembly !== 'object') return jsKernels;
  const bytes = kernelModuleBytes();
  try {
    if (!validate(bytes)) return jsKernels;
    const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes));
    return wasmKernels(instance.exports as unknown as KernelExports);
  } catch {
    return jsKernels;
  }
}

/** What the pipeline and the schedulers call. */
export const kernels: Kernels = selectKernels();
