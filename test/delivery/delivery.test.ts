import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { build } from 'esbuild';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { environments, imageRepository } from '../../infra/environments.ts';
import { synthInfra } from '../../infra/main.ts';
import { synthK8s } from '../../k8s/main.ts';
import { deploySettings, pinImage, readManifests, shellAssignments, stackName } from '../../scripts/ci/delivery.ts';

const read = (file: string) => fs.readFileSync(file, 'utf8');
const jenkinsfile = read('Jenkinsfile');
const readme = read('README.md');
const pkg = JSON.parse(read('package.json')) as { scripts: Record<string, string>; engines: { node: string } };
/** The one Node.js major version `engines` names ("24.x"). */
const nodeMajor = /^(\d+)\.x$/.exec(pkg.engines.node)?.[1];
const lock = JSON.parse(read('package-lock.json')) as { packages: Record<string, { dev?: boolean }> };
const ciScripts = fs.readdirSync('scripts/ci').filter((f) => f.endsWith('.sh')).map((f) => `scripts/ci/${f}`);
const isExecutable = (file: string) => (fs.statSync(file).mode & 0o111) === 0o111;

/** The scripts the Jenkinsfile's `sh` steps run. */
const jenkinsScripts = [...new Set([...jenkinsfile.matchAll(/\bsh\s+['"](scripts\/ci\/[\w.-]+)/g)].map((m) => m[1]!))];

/** Instructions of a Dockerfile's last stage (the image), continuation lines joined, comments dropped. */
function finalStage(file: string): { from: string; args: Record<string, string>; lines: string[] } {
  const text = read(file).replace(/\\\n/g, ' ');
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  const args: Record<string, string> = {};
  for (const l of lines) {
    const m = /^ARG\s+(\w+)=(\S*)/.exec(l);
    if (m && !(m[1]! in args)) args[m[1]!] = m[2]!.replace(/^"|"$/g, '');
  }
  const lastFrom = lines.map((l) => l.startsWith('FROM ')).lastIndexOf(true);
  const from = lines[lastFrom]!.split(/\s+/)[1]!.replace(/^\$\{(\w+)\}$/, (_, name: string) => args[name] ?? '');
  return { from, args, lines: lines.slice(lastFrom) };
}

function cmdOf(lines: string[]): string[] {
  const cmd = lines.filter((l) => l.startsWith('CMD ')).at(-1);
  assert.ok(cmd, 'the image has a CMD');
  return JSON.parse(cmd.slice(4)) as string[];
}

function userOf(lines: string[]): string {
  const user = lines.filter((l) => l.startsWith('USER ')).at(-1);
  assert.ok(user, 'the image sets USER');
  return user.slice(5).trim();
}

test('the Jenkinsfile runs scripts that exist and are executable', () => {
  assert.ok(jenkinsScripts.length >= 10, `found ${jenkinsScripts.join(', ')}`);
  for (const file of jenkinsScripts) {
    assert.ok(fs.existsSync(file), `${file} exists`);
    assert.ok(isExecutable(file), `${file} is executable`);
  }
  for (const step of ['install.sh', 'typecheck.sh', 'test.sh', 'synth-check.sh', 'post-review.sh', 'smoke.sh', 'terraform-apply.sh']) {
    assert.ok(jenkinsScripts.includes(`scripts/ci/${step}`), `the Jenkinsfile runs ${step}`);
  }
});

test('every CI script is executable, parses, is strict and says what it needs', () => {
  assert.ok(ciScripts.length > 0);
  const lib = read('scripts/ci/lib.sh');
  assert.match(lib, /^set -euo pipefail$/m);
  for (const file of ciScripts) {
    assert.ok(isExecutable(file), `${file} is executable`);
    const r = spawnSync('bash', ['-n', file], { encoding: 'utf8' });
    assert.is(r.status, 0, `bash -n ${file}: ${r.stderr}`);
    const [shebang, first] = read(file).split('\n');
    assert.is(shebang, '#!/usr/bin/env bash', file);
    assert.match(first!, /^# .+ Needs: /, `${file}: its first comment line says what it does and needs`);
    if (file !== 'scripts/ci/lib.sh') assert.match(read(file), /^source "\$\(dirname "\$0"\)\/lib\.sh"$/m, `${file} sources lib.sh`);
  }
});

test('a CI script stops with a clear message when a variable or tool is missing', () => {
  const env = { ...process.env, CHANGE_TARGET: '', SMOKE_API_KEY: '', GITHUB_TOKEN: '' };
  const k8sDiff = spawnSync('scripts/ci/k8s-diff.sh', [], { encoding: 'utf8', env });
  assert.is(k8sDiff.status, 1);
  assert.match(k8sDiff.stderr, /environment variable CHANGE_TARGET is required/);
  const smoke = spawnSync('scripts/ci/smoke.sh', ['dev'], { encoding: 'utf8', env });
  assert.is(smoke.status, 1);
  assert.match(smoke.stderr, /environment variable SMOKE_API_KEY is required/);
  // A PATH with what lib.sh and the settings use, and no terraform.
  const bin = fs.mkdtempSync(path.join(os.tmpdir(), 'itemgen-bin-'));
  try {
    for (const tool of ['bash', 'dirname', 'basename', 'mktemp', 'chmod', 'rm', 'node', 'npm']) {
      const found = spawnSync('bash', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).stdout.trim();
      fs.symlinkSync(found, path.join(bin, tool));
    }
    const noTerraform = spawnSync('scripts/ci/terraform-plan.sh', ['dev'], { encoding: 'utf8', env: { ...env, PATH: bin } });
    assert.is(noTerraform.status, 1);
    assert.match(noTerraform.stderr, /'terraform' is required and not on PATH/);
  } finally {
    fs.rmSync(bin, { recursive: true, force: true });
  }
  const unknown = spawnSync('scripts/ci/push-images.sh', ['staging'], { encoding: 'utf8', env });
  assert.is(unknown.status, 1);
  assert.match(unknown.stderr, /unknown environment "staging"/);
});

test('the gateway image: small base, production dependencies only, no CUDA download, non-root, the documented entry point', () => {
  const text = read('Dockerfile.gateway');
  const { from, lines } = finalStage('Dockerfile.gateway');
  assert.match(from, new RegExp(`^node:${nodeMajor}-[a-z]+-slim$`));
  assert.match(text, /npm ci --omit=dev/);
  assert.match(text, /ONNXRUNTIME_NODE_INSTALL=skip/);
  assert.match(read('.npmrc'), /^onnxruntime-node-install=skip$/m);
  assert.match(userOf(lines), /^[1-9]\d*(:[1-9]\d*)?$/, 'a non-root uid, by number');
  assert.ok(lines.some((l) => /^ENV .*\bHOST=0\.0\.0\.0\b/.test(l)), 'listens on every interface');
  assert.ok(lines.includes('EXPOSE 8080'));
  assert.ok(lines.includes('COPY src ./src'), 'src/ (with the migrations) is in the image');
  assert.equal(cmdOf(lines), ['node', '--import', 'tsx', pkg.scripts.gateway!.replace(/^tsx /, '')]);
  assert.match(readme, /npm run gateway/);
});

test('the runner image: CUDA 12 + cuDNN runtime, onnxruntime-node CUDA libraries installed, non-root, the documented entry point', () => {
  const text = read('Dockerfile.runner');
  const { from, lines } = finalStage('Dockerfile.runner');
  assert.match(from, /^nvidia\/cuda:12\.\d+(\.\d+)?-cudnn9?-runtime-ubuntu22\.04$/);
  assert.match(text, /npm ci --omit=dev/);
  assert.match(userOf(lines), /^[1-9]\d*(:[1-9]\d*)?$/, 'a non-root uid, by number');
  assert.ok(lines.includes('EXPOSE 8081'));
  assert.ok(lines.some((l) => /^ENV .*\bMODEL_DIR=\/models\/current\b/.test(l)));
  assert.match(text, /^ARG MODEL_SOURCE=/m);
  assert.equal(cmdOf(lines), ['node', '--import', 'tsx', pkg.scripts.runner!.replace(/^tsx /, '')]);
  assert.match(readme, /npm run runner/);

  // The install step's setting really makes this onnxruntime-node version download the CUDA build.
  const m = /ONNXRUNTIME_NODE_INSTALL=(\S+) node node_modules\/onnxruntime-node\/script\/install(\.js)?/.exec(text);
  assert.ok(m, 'the runner image runs onnxruntime-node install script itself');
  const require = createRequire(import.meta.url);
  const utils = require('onnxruntime-node/script/install-utils.js') as { parseInstallFlag(): unknown };
  const metadata = require('onnxruntime-node/script/install-metadata.js') as { requirements: Record<string, string[]>; manifests: Record<string, Record<string, unknown>> };
  const saved = { ...process.env };
  try {
    for (const k of Object.keys(process.env)) if (/onnxruntime_node/i.test(k)) delete process.env[k];
    process.env.ONNXRUNTIME_NODE_INSTALL = m[1];
    assert.is(utils.parseInstallFlag(), true, 'forced installation');
  } finally {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
  }
  assert.equal(metadata.requirements['linux/x64'], ['cuda12']);
  for (const lib of Object.keys(metadata.manifests['linux/x64:cuda12']!).filter((f) => /providers_(cuda|shared)/.test(f))) {
    assert.ok(text.includes(path.basename(lib)), `the image checks ${path.basename(lib)} was installed`);
  }
});

test('one Node.js version: engines, the images, the CI scripts, and the node npm test runs on', () => {
  assert.ok(nodeMajor, `engines.node names one major version ("${pkg.engines.node}")`);
  assert.match(finalStage('Dockerfile.runner').args.NODE_IMAGE!, new RegExp(`^node:${nodeMajor}-[a-z]+-slim$`), 'the runner copies node from this image');
  assert.match(read('scripts/node24.sh'), new RegExp(`^NODE24_VERSION=${nodeMajor}\\.\\d+\\.\\d+$`, 'm'), 'the version npm test downloads');
  assert.match(read('scripts/ci/lib.sh'), new RegExp(`\\[ "\\$major" = ${nodeMajor} \\]`), 'need_node');
  assert.is(process.versions.node.split('.')[0], nodeMajor, 'these tests run on it (scripts/test.sh)');
  assert.not.match(readme, new RegExp(`Node\\.js (?!${nodeMajor}\\b)\\d`), 'the README names no other Node.js version');
});

test('.dockerignore keeps local state and dependencies out of the build context', () => {
  const ignored = read('.dockerignore').split('\n').map((l) => l.trim());
  for (const entry of ['.git', 'node_modules', '.cache', 'data', '.scratch', 'ci-out']) assert.ok(ignored.includes(entry), entry);
  for (const needed of ['src', 'package.json', 'package-lock.json', '.npmrc']) assert.not.ok(ignored.includes(needed), needed);
});

/** The packages an entry point loads, found by bundling it (nothing is written). */
async function packagesLoadedBy(entry: string): Promise<Set<string>> {
  const result = await build({ entryPoints: [entry], bundle: true, platform: 'node', format: 'esm', write: false, metafile: true, logLevel: 'silent', outdir: os.tmpdir(), loader: { '.node': 'empty' } });
  const packages = new Set<string>();
  for (const input of Object.keys(result.metafile.inputs)) {
    const m = input.match(/node_modules\/((?:@[^/]+\/)?[^/]+)/g);
    if (m) packages.add(m[m.length - 1]!.slice('node_modules/'.length));
  }
  return packages;
}

// `debug` tries supports-color (and it has-flag) inside try/catch: optional, so dev-only is fine.
const OPTIONAL = new Set(['supports-color', 'has-flag']);

test('what the images run needs only production dependencies; the gateway not onnxruntime-node', async () => {
  for (const [name, entry] of [['gateway', 'src/gateway/main.ts'], ['runner', 'src/runner/main.ts']] as const) {
    const packages = await packagesLoadedBy(entry);
    assert.ok(packages.has('hono') || packages.has('onnxruntime-node'), `${name}: the graph was found`);
    const devOnly = [...packages].filter((p) => lock.packages[`node_modules/${p}`]?.dev && !OPTIONAL.has(p));
    assert.equal(devOnly, [], `${name} loads dev-only packages, absent from its image`);
  }
  assert.not.ok((await packagesLoadedBy('src/gateway/main.ts')).has('onnxruntime-node'), 'Dockerfile.gateway removes onnxruntime-node');
});

const SECRET_LOOKING = [
  /gh[pousr]_[A-Za-z0-9]{20,}/,
  /github_pat_\w{20,}/,
  /AKIA[0-9A-Z]{16}/,
  /AIza[0-9A-Za-z_-]{35}/,
  /-----BEGIN [A-Z ]*PRIVATE KEY-----/,
  /"private_key"\s*:/,
  /xox[abposr]-[A-Za-z0-9-]{10,}/,
  /\b(password|passwd|secret|token|api[_-]?key)\s*[=:]\s*['"][^'"$]{6,}['"]/i,
  /['"][A-Za-z0-9+/=_-]{40,}['"]/,
];

test('the Jenkinsfile holds no secret and takes credentials only through withCredentials', () => {
  for (const pattern of SECRET_LOOKING) assert.not.match(jenkinsfile, pattern);
  assert.not.match(jenkinsfile, /\bcredentials\s*\(/, 'no credentials() helper in environment blocks');
  // Every credential id sits inside the argument list of a withCredentials([...]).
  const bindings = [...jenkinsfile.matchAll(/withCredentials\(\[([\s\S]*?)\]\)\s*\{/g)].map((m) => m[1]!);
  const ids = [...jenkinsfile.matchAll(/credentialsId:\s*'([^']+)'/g)].map((m) => m[1]!);
  assert.ok(ids.length > 0);
  const bound = bindings.flatMap((b) => [...b.matchAll(/credentialsId:\s*'([^']+)'/g)].map((m) => m[1]!));
  assert.equal(bound.length, ids.length, 'every credentialsId is in a withCredentials binding');
  for (const id of new Set(ids)) assert.ok(readme.includes(`\`${id}\``), `README lists the credential ${id}`);
});

test('the Jenkinsfile: every branch is tested and synth-checked; pull requests reviewed; main deploys dev, then prod after input', () => {
  const stageOrder = [...jenkinsfile.matchAll(/stage\('([^']+)'\)/g)].map((m) => m[1]!);
  assert.equal(stageOrder, ['Install', 'Typecheck', 'Test', 'Synth', 'Review', 'Images', 'Deploy dev', 'Plan prod', 'Approve prod', 'Deploy prod']);
  assert.match(jenkinsfile, /when \{ changeRequest\(\) \}/);
  assert.match(jenkinsfile, /archiveArtifacts artifacts: 'ci-out\/review\/\*\*'/);
  assert.match(jenkinsfile, /input\(/);
  const prod = jenkinsfile.slice(jenkinsfile.indexOf("stage('Deploy prod')"));
  assert.match(prod, /environment name: 'DEPLOY_PROD', value: 'true'/);
});

test('settings: names from infra/environments.ts, the service and cluster from the synthesized stacks', () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'itemgen-delivery-'));
  try {
    assert.equal(synthInfra(out).sort(), Object.keys(environments).map((e) => stackName(e as 'dev')).sort());
    for (const env of Object.values(environments)) {
      const tf = JSON.parse(read(path.join(out, 'stacks', stackName(env.name), 'cdk.tf.json')));
      const s = deploySettings(env.name, tf);
      assert.is(s.PROJECT, env.project);
      assert.is(s.RUNNER_REPOSITORY, imageRepository(env, 'runner'));
      assert.is(s.STATE_BUCKET, `${env.project}-tfstate`);
      assert.is(tf.terraform.backend.gcs.bucket, s.STATE_BUCKET, 'the stack keeps its state in the bucket the README bootstraps');
      for (const key of ['CLOUD_RUN_SERVICE', 'CLOUD_RUN_REGION', 'GKE_CLUSTER', 'GKE_LOCATION']) {
        assert.match(s[key] ?? '', /^[a-z][a-z0-9-]*$/, `${env.name} ${key}`);
      }
    }
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});

test('settings: a stack without exactly one literal service or cluster is refused', () => {
  const cluster = { google_container_cluster: { c: { name: 'itemgen-dev-gke', location: 'europe-west4' } } };
  assert.throws(() => deploySettings('dev', { resource: cluster }), /declares no google_cloud_run_v2_service/);
  const twoServices = { google_cloud_run_v2_service: { a: { name: 'a', location: 'x' }, b: { name: 'b', location: 'x' } } };
  assert.throws(() => deploySettings('dev', { resource: { ...cluster, ...twoServices } }), /declares 2 google_cloud_run_v2_service resources \(a, b\)/);
  const token = { google_cloud_run_v2_service: { a: { name: '${var.name}', location: 'x' } } };
  assert.throws(() => deploySettings('dev', { resource: { ...cluster, ...token } }), /not a literal string/);
  assert.is(deploySettings('dev').STACK_SYNTHESIZED, 'false');
});

test('settings reach bash unchanged, whatever they hold', () => {
  const values = { PLAIN: 'itemgen-dev', QUOTES: `it's "quoted" $HOME \`x\``, NEWLINE: 'a\nb' };
  const r = spawnSync('bash', ['-c', 'eval "$1"; printf "%s|%s|%s" "$PLAIN" "$QUOTES" "$NEWLINE"', 'bash', shellAssignments(values)], { encoding: 'utf8' });
  assert.is(r.stdout, `${values.PLAIN}|${values.QUOTES}|${values.NEWLINE}`);
});

test('pinImage: the runner image of the synthesized manifests gets the commit tag, nothing else changes', () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'itemgen-delivery-'));
  try {
    synthK8s(out);
    for (const env of Object.values(environments)) {
      const repository = imageRepository(env, 'runner');
      const manifests = readManifests(path.join(out, env.name));
      const { text, count } = pinImage(manifests, repository, 'f00dfeed');
      assert.ok(count >= 1, `${env.name}: the runner Deployment uses ${repository}`);
      const changed = text.split('\n').filter((line, i) => line !== manifests.split('\n')[i]);
      assert.equal(changed.map((l) => l.trim()), Array(count).fill(`image: ${repository}:f00dfeed`));
    }
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});

test('pinImage: tags, digests and quotes; other images and lookalike names untouched', () => {
  const repo = 'europe-west4-docker.pkg.dev/p/p-images/runner';
  const yaml = [
    `        image: ${repo}:0.1.0`,
    `      - image: "${repo}@sha256:${'a'.repeat(64)}"`,
    `        image: ${repo}`,
    `        image: ${repo}-canary:1`,
    `        image: rabbitmq:3.13.7`,
    `        image: europe-west4-docker.pkg.dev/p/p-images/runnerx:1`,
  ].join('\n');
  const { text, count } = pinImage(yaml, repo, 'abc');
  assert.is(count, 3);
  assert.equal(text.split('\n'), [
    `        image: ${repo}:abc`,
    `      - image: "${repo}:abc"`,
    `        image: ${repo}:abc`,
    `        image: ${repo}-canary:1`,
    `        image: rabbitmq:3.13.7`,
    `        image: europe-west4-docker.pkg.dev/p/p-images/runnerx:1`,
  ]);
  assert.throws(() => pinImage(yaml, repo, 'bad tag'), /not a valid image tag/);
});

test.run();
