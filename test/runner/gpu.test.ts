// bench:gpu (scripts/bench/gpu.ts) in its CPU mode on the tiny model, its report and verdicts for
// the cards with a reference, nvidia-smi's memory samples (a fake on PATH); and
// scripts/gpu-check.sh's arguments and dry run, since no GPU is here to run it on.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { formatReport, gpuName, parseOptions, pollGpuMemory, referenceFor, runGpuBench, type GpuBenchReport } from '../../scripts/bench/gpu.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const ROW = /^(\d+) +(\d+\.\d{3})( +\d+\.\d+){5}$/;

/** PATH with a fake nvidia-smi (or none) ahead of the rest. */
function withFakeNvidiaSmi(script: string | null): { env: NodeJS.ProcessEnv; dir: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'itemgen-fake-smi-'));
  if (script !== null) fs.writeFileSync(path.join(dir, 'nvidia-smi'), `#!/bin/sh\n${script}\n`, { mode: 0o755 });
  // Without one: only the node binary's folder and the system's, which have no nvidia-smi here.
  const rest = script === null ? `${path.dirname(process.execPath)}:/usr/bin:/bin` : process.env.PATH;
  return { env: { ...process.env, PATH: `${dir}:${rest}` }, dir };
}

test('CPU mode on the tiny model: one row per batch, a note that it is not the target, no reference or verdict', async () => {
  const report = await runGpuBench({ provider: 'cpu', model: 'tiny', steps: 2, batches: [1, 2], runs: 1 });
  assert.is(report.provider, 'cpu');
  assert.is(report.size, 256, 'the CPU default');
  assert.equal(report.batches.map((b) => b.batch), [1, 2]);
  for (const b of report.batches) {
    const parts = b.textEncoderMs + b.unetStepsMs + b.vaeMs + b.pngMs;
    assert.ok(b.unetStepsMs > 0 && b.vaeMs > 0 && b.pngMs > 0, JSON.stringify(b));
    // The stages are the total but for the prompt template and the scheduler's set-up.
    assert.ok(parts <= b.secondsPerImage * 1000 + 1e-6 && parts >= b.secondsPerImage * 1000 * 0.5, JSON.stringify(b));
    assert.ok(Math.abs(b.stepMs - (b.unetStepsMs * b.batch) / 2) < 1e-6, 'a step is the batch\'s UNet time over the steps');
  }
  assert.is(report.gpuMemory, null);
  assert.is(report.reference, null);
  const text = formatReport(report).split('\n');
  assert.match(text[0]!, /^gpu bench — CPU \(.*\), cpu, onnxruntime-node \d+\.\d+\.\d+, 256×256, 2 steps, DDIM/);
  assert.match(text.find((l) => l.startsWith('model'))!, /tiny test model, built now; UNet float32, denoising on the host/);
  assert.ok(text.some((l) => l.startsWith('note') && l.includes('not the target')));
  assert.equal(text.filter((l) => ROW.test(l)).map((l) => Number(ROW.exec(l)![1])), [1, 2]);
  assert.ok(text.includes('GPU memory peak   n/a'));
  assert.not.ok(text.some((l) => /^(PASS|MISS|reference)/.test(l)));
});

test('npm run bench:gpu prints the report; a bad argument is refused before any work', () => {
  const run = (args: string[]) =>
    spawnSync(process.execPath, ['--import', 'tsx', 'scripts/bench/gpu.ts', ...args], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
  const ok = run(['--provider', 'cpu', '--model', 'tiny', '--steps', '1', '--batches', '1']);
  assert.is(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /^gpu bench — CPU/);
  assert.is(ok.stdout.split('\n').filter((l) => ROW.test(l)).length, 1);
  const bad = run(['--size', '300']);
  assert.is(bad.status, 2);
  assert.match(bad.stderr, /bench:gpu: --size must be a multiple of 8, got 300/);
  assert.throws(() => parseOptions(['--provider', 'rocm']), /--provider must be auto, cuda or cpu/);
  assert.throws(() => parseOptions(['--batches', '1,5']), /--batches must be an integer in \[1, 4\]/);
  assert.equal(parseOptions(['--batches', '1,4', '--steps', '50']).batches, [1, 4]);
});

test('references by the card\'s name; PASS within 10 % at 512² and 50 steps, MISS beyond, no verdict otherwise', () => {
  assert.is(referenceFor('NVIDIA H100 80GB HBM3')?.secondsPerImage, 0.57);
  assert.is(referenceFor('NVIDIA GeForce RTX 3060')?.secondsPerImage, 5.0);
  assert.is(referenceFor('NVIDIA A100-SXM4-40GB'), null);
  assert.is(referenceFor(null), null);
  const report = (secondsPerImage: number, size = 512): GpuBenchReport => ({
    provider: 'cuda',
    device: 'NVIDIA H100 80GB HBM3',
    modelDir: '/cache/sd15-fp16',
    modelKind: 'reused /cache/sd15-fp16',
    size,
    steps: 50,
    runs: 3,
    batches: [{ batch: 1, secondsPerImage, textEncoderMs: 3, unetStepsMs: secondsPerImage * 900, vaeMs: 40, pngMs: 10, stepMs: 11 }],
    gpuMemory: { beforeMiB: 500, peakMiB: 4200 },
    reference: referenceFor('NVIDIA H100 80GB HBM3'),
  });
  const pass = formatReport(report(0.62));
  assert.match(pass, /^reference {9}H100 0\.57 s per image \(onnxruntime's published SD 1\.5 figure, with IO binding, 512², 50 steps\)$/m);
  assert.match(pass, /^PASS  batch 1 within 10 % of onnxruntime's figure on this card: 0\.620 s ≤ 0\.627 s$/m);
  assert.match(pass, /^GPU memory peak   4200 MiB \(500 MiB before the model loaded; nvidia-smi, whole card\)$/m);
  assert.not.match(pass, /^note/m, 'no CPU note on a GPU');
  assert.match(formatReport(report(0.7)), /^MISS  batch 1 within 10 %/m);
  assert.match(formatReport(report(0.3, 256)), /^\(no verdict: the reference is for 512², 50 steps\)$/m);
  assert.not.match(formatReport({ ...report(0.62), reference: null }), /^(reference|PASS|MISS)/m);
});

test('GPU memory: first sample and peak from nvidia-smi\'s loop; n/a without nvidia-smi', async () => {
  const saved = process.env.PATH;
  const fake = withFakeNvidiaSmi(`case "$*" in
  *memory.used*) printf '1000\\n1500\\n1200\\n'; exec sleep 30 ;;
  *name*) echo 'NVIDIA H100 80GB HBM3' ;;
esac`);
  try {
    process.env.PATH = fake.env.PATH;
    const poll = pollGpuMemory();
    await poll.ready;
    assert.equal(await poll.stop(), { beforeMiB: 1000, peakMiB: 1500 });
    assert.is(await gpuName(), 'NVIDIA H100 80GB HBM3');
    const none = withFakeNvidiaSmi(null);
    process.env.PATH = none.env.PATH;
    const absent = pollGpuMemory();
    await absent.ready;
    assert.is(await absent.stop(), null);
    assert.is(await gpuName(), null);
    fs.rmSync(none.dir, { recursive: true, force: true });
  } finally {
    process.env.PATH = saved;
    fs.rmSync(fake.dir, { recursive: true, force: true });
  }
});


const gpuCheck = (args: string[], env: NodeJS.ProcessEnv) =>
  spawnSync('bash', ['scripts/gpu-check.sh', ...args], { cwd: ROOT, encoding: 'utf8', env, timeout: 60_000 });

test('gpu-check.sh: help, and bad arguments refused with exit 2 before anything runs', () => {
  const env = withFakeNvidiaSmi(null);
  try {
    const help = gpuCheck(['--help'], env.env);
    assert.is(help.status, 0);
    assert.match(help.stdout, /^One check of the CUDA path/);
    assert.match(help.stdout, /Exit codes: 0 all passed/);
    for (const [args, message] of [
      [['--bogus'], /unknown argument: --bogus/],
      [['--budget', '5'], /--budget must be a whole number of seconds in \[60, 3600\], got 5/],
      [['--budget'], /--budget needs a value/],
      [['--ort-cuda-dir', env.dir], /has no libonnxruntime_providers_cuda\.so/],
    ] as const) {
      const r = gpuCheck([...args], env.env);
      assert.is(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message);
      assert.match(r.stderr, /scripts\/gpu-check\.sh \[--dry-run\]/, 'with the usage');
    }
  } finally {
    fs.rmSync(env.dir, { recursive: true, force: true });
  }
});

test('gpu-check.sh --dry-run: the GPU as nvidia-smi names it and every step it would run; without a GPU a real run stops with exit 3', () => {
  const fake = withFakeNvidiaSmi(`case "$*" in
  *--query-gpu=name,driver_version*) echo 'NVIDIA H100 80GB HBM3, 550.54.15, 81559 MiB' ;;
  *) echo '| NVIDIA-SMI 550.54.15    Driver Version: 550.54.15    CUDA Version: 12.4 |' ;;
esac`);
  const none = withFakeNvidiaSmi(null);
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'itemgen-gpu-check-'));
  try {
    const dry = gpuCheck(['--dry-run', '--skip-install', '--model-dir', '/models/sd15', '--out', out], fake.env);
    assert.is(dry.status, 0, dry.stderr);
    const report = dry.stdout.slice(dry.stdout.indexOf('=== gpu-check report ==='));
    assert.match(report, /^GPU: NVIDIA H100 80GB HBM3, 550\.54\.15, 81559 MiB; CUDA Version: 12\.4$/m);
    assert.match(report, /^would run \(node\): bash scripts\/node24\.sh$/m);
    assert.not.match(report, /\(deps\)/, '--skip-install');
    assert.match(report, /^would run \(cuda-provider\): env ONNXRUNTIME_NODE_INSTALL=true node node_modules\/onnxruntime-node\/script\/install\.js$/m);
    assert.match(report, /^would run \(bench\): env MALLOC_ARENA_MAX=2 node --import tsx scripts\/bench\/gpu\.ts --provider cuda --model-dir \/models\/sd15$/m);
    assert.match(report, /^would run \(tests\): env EXECUTION_PROVIDER=cuda node --import tsx node_modules\/uvu\/bin\.js test\/runner\/pipeline /m);
    assert.equal(fs.readdirSync(out), [], 'a dry run writes no logs');

    const noGpu = gpuCheck(['--dry-run', '--out', out], none.env);
    assert.is(noGpu.status, 0);
    assert.match(noGpu.stdout, /^would run \(deps\): npm ci --ignore-scripts --no-audit --no-fund$/m);
    assert.match(noGpu.stdout, /GPU: none \(nvidia-smi absent or no device\); a real run stops here/);
    const real = gpuCheck(['--out', out], none.env);
    assert.is(real.status, 3);
    assert.match(real.stdout, /=== gpu-check report ===\nGPU: none/);
    assert.not.match(real.stdout, /node:|deps:/, 'nothing installed');
  } finally {
    for (const dir of [fake.dir, none.dir, out]) fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
