import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { build } from 'esbuild';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { deliveryAccountEmail, environments, imageRepository, serviceAccountEmail } from '../../infra/environments.ts';
import { synthInfra } from '../../infra/main.ts';
import { synthK8s } from '../../k8s/main.ts';
import { bootstrapPlan, deploySettings, pinImage, readManifests, shellArrays, shellAssignments, stackName } from '../../scripts/ci/delivery.ts';
import { makeFakes } from './fakes.ts';

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

/** images.lock.json: `name:tag` → `sha256:…`, the one place third-party image digests live. */
const imagesLock = JSON.parse(read('images.lock.json')) as Record<string, string>;
/** `name:tag@sha256:…` split; the tag part alone is what the older checks look at. */
const untagged = (ref: string) => ref.replace(/@sha256:[0-9a-f]{64}$/, '');

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
  assert.match(untagged(from), new RegExp(`^node:${nodeMajor}-[a-z]+-slim$`));
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
  assert.match(untagged(from), /^nvidia\/cuda:12\.\d+(\.\d+)?-cudnn9?-runtime-ubuntu22\.04$/);
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
  assert.match(untagged(finalStage('Dockerfile.runner').args.NODE_IMAGE!), new RegExp(`^node:${nodeMajor}-[a-z]+-slim$`), 'the runner copies node from this image');
  assert.match(read('scripts/node24.sh'), new RegExp(`^NODE24_VERSION=${nodeMajor}\\.\\d+\\.\\d+$`, 'm'), 'the version npm test downloads');
  assert.match(read('scripts/ci/lib.sh'), new RegExp(`\\[ "\\$major" = ${nodeMajor} \\]`), 'need_node');
  assert.is(process.versions.node.split('.')[0], nodeMajor, 'these tests run on it (scripts/test.sh)');
  assert.not.match(readme, new RegExp(`Node\\.js (?!${nodeMajor}\\b)\\d`), 'the README names no other Node.js version');
});

test('the benchmarks and the chaos run measure Node.js 24 too, whatever node the shell has', () => {
  for (const name of Object.keys(pkg.scripts).filter((n) => n.startsWith('bench:') || n === 'chaos')) {
    assert.match(pkg.scripts[name]!, /^(\w+=\S+ )*bash scripts\/node24-exec\.sh tsx /, name);
  }
  // A shell whose first node is another version: a stand-in that says so and fails.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'old-node-'));
  try {
    fs.writeFileSync(path.join(dir, 'node'), '#!/bin/sh\n[ "$1" = -p ] && echo 20 && exit 0\necho v20.0.0; exit 3\n', { mode: 0o755 });
    const r = spawnSync('bash', ['scripts/node24-exec.sh', 'node', '-e', 'console.log(process.versions.node)'], {
      encoding: 'utf8',
      env: { ...process.env, PATH: `${dir}:${process.env.PATH}` },
    });
    assert.is(r.status, 0, r.stderr);
    assert.is(r.stdout.trim().split('.')[0], nodeMajor);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
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

/** The text of the `{ … }` block that opens first after `from` (braces balanced). */
function blockAt(text: string, from: number): string {
  const open = text.indexOf('{', from);
  assert.ok(open >= 0 && from >= 0, 'a block follows');
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    if (text[i] === '{') depth++;
    else if (text[i] === '}' && --depth === 0) return text.slice(open + 1, i);
  }
  throw new Error('unbalanced braces in the Jenkinsfile');
}
/** A stage's body, by name. */
const stageBody = (name: string) => blockAt(jenkinsfile, jenkinsfile.indexOf(`stage('${name}')`));
/** The part of a block outside its nested `stages { … }` (its own agent, when, options, post). */
function ownPart(body: string): string {
  const i = body.search(/\bstages\s*\{/);
  return i < 0 ? body : body.slice(0, i) + body.slice(i + blockAt(body, i).length + 'stages {}'.length);
}
const topStages = () => {
  const pipeline = blockAt(jenkinsfile, jenkinsfile.indexOf('pipeline {'));
  const stages = blockAt(pipeline, pipeline.search(/\bstages\s*\{/));
  const names: string[] = [];
  let i = 0;
  for (let m; (m = /stage\('([^']+)'\)/g.exec(stages.slice(i))); ) {
    names.push(m[1]!);
    const at = i + m.index;
    i = at + m[0].length + blockAt(stages, at).length + 2;
  }
  return names;
};
const agentOf = (body: string) => /\bagent\s*(none|\{[^\n]*\})/.exec(ownPart(body))?.[1];

test('the Jenkinsfile: every branch is tested and synth-checked; pull requests reviewed and images built; main deploys dev, then prod after input', () => {
  assert.equal(topStages(), ['Checks', 'Build', 'Deploy dev', 'Plan prod', 'Approve prod', 'Deploy prod']);
  const checks = stageBody('Checks');
  const inChecks = [...checks.matchAll(/stage\('([^']+)'\)/g)].map((m) => m[1]!);
  assert.equal(inChecks, ['Install', 'Typecheck', 'Test', 'Synth', 'Review', 'Build images']);
  assert.match(stageBody('Review'), /when \{ changeRequest\(\) \}/);
  assert.match(stageBody('Review'), /archiveArtifacts artifacts: 'ci-out\/review\/\*\*'/);
  assert.match(stageBody('Build images'), /when \{ changeRequest\(\) \}/);
  assert.match(stageBody('Build images'), /sh 'scripts\/ci\/build-images\.sh'/, 'pull requests build both images');
  assert.match(stageBody('Approve prod'), /input\(/);
  assert.match(stageBody('Deploy prod'), /environment name: 'DEPLOY_PROD', value: 'true'/);
  const order = (body: string) => [...body.matchAll(/sh '(scripts\/ci\/[\w.-]+\.sh[^']*)'/g)].map((m) => m[1]!);
  assert.equal(order(stageBody('Deploy dev')), ['push-images.sh dev', 'terraform-plan.sh dev', 'terraform-apply.sh dev', 'deploy-gateway.sh dev', 'deploy-runners.sh dev', 'smoke.sh dev', 'promote-gateway.sh dev', 'rollback.sh dev'].map((x) => `scripts/ci/${x}`));
  assert.equal(order(stageBody('Plan prod')), ['scripts/ci/push-images.sh prod --from dev', 'scripts/ci/terraform-plan.sh prod'], 'prod gets dev\'s digests, copied');
  assert.equal(order(stageBody('Deploy prod')), ['terraform-apply.sh prod', 'deploy-gateway.sh prod', 'deploy-runners.sh prod', 'smoke.sh prod', 'promote-gateway.sh prod', 'rollback.sh prod'].map((x) => `scripts/ci/${x}`));
  assert.equal(order(stageBody('Build')), ['scripts/ci/install.sh', 'scripts/ci/synth-check.sh', 'scripts/ci/build-images.sh'], 'built once, on main');
});

test('the Jenkinsfile: no agent at the top; pull requests on review agents; deploys on the deploy agent; approval holds none', () => {
  const pipeline = blockAt(jenkinsfile, jenkinsfile.indexOf('pipeline {'));
  assert.match(ownPart(pipeline).split(/\bstages\s*\{/)[0]!, /^\s*agent none$/m);
  assert.is(agentOf(stageBody('Checks')), `{ label '${'itemgen-review'}' }`);
  assert.is(environments.dev && 'itemgen-review', 'itemgen-review');
  for (const name of ['Install', 'Typecheck', 'Test', 'Synth', 'Review', 'Build images']) assert.is(agentOf(stageBody(name)), undefined, `${name} runs on the Checks agent`);
  for (const name of ['Build', 'Deploy dev', 'Plan prod', 'Deploy prod']) {
    const body = stageBody(name);
    assert.match(agentOf(body) ?? '', /^\{ node \{ label 'itemgen-deploy'; customWorkspace "itemgen-deliver\/\$\{env\.BUILD_TAG\}" \} \}$/, `${name} on the deploy agent, in this build's folder`);
    assert.match(ownPart(body), /when \{[^}]*beforeAgent true\s+beforeOptions true[^}]*branch 'main'/s, `${name}: main only, decided before an agent or a lock is taken`);
  }
  assert.is(agentOf(stageBody('Approve prod')), 'none', 'the approval waits without an executor');
  // Nothing a pull request runs can deploy: no deploy script in Checks.
  for (const script of ['push-images', 'terraform-apply', 'deploy-gateway', 'deploy-runners', 'promote-gateway', 'rollback']) assert.not.ok(checks().includes(script), script);
  assert.match(stageBody('Review'), /terraform-plan\.sh dev --review[\s\S]*terraform-plan\.sh prod --review/);
});
const checks = () => stageBody('Checks');

test('the Jenkinsfile: newer main builds supersede older ones (lock with inversePrecedence, milestones around the input), no disableConcurrentBuilds', () => {
  assert.not.match(jenkinsfile, /disableConcurrentBuilds/);
  const lockOf = (name: string) => /options \{ lock\(resource: '([\w-]+)', inversePrecedence: true\) \}/.exec(ownPart(stageBody(name)))?.[1];
  assert.is(lockOf('Deploy dev'), 'itemgen-dev');
  assert.is(lockOf('Plan prod'), 'itemgen-prod');
  assert.is(lockOf('Deploy prod'), 'itemgen-prod');
  const milestones = [...jenkinsfile.matchAll(/milestone\(ordinal: (\d+)/g)].map((m) => Number(m[1]));
  assert.equal(milestones, [...milestones].sort((a, b) => a - b), 'ordinals rise through the file');
  assert.is(new Set(milestones).size, milestones.length);
  const approve = stageBody('Approve prod');
  const input = approve.indexOf('input(');
  assert.ok(approve.lastIndexOf('milestone(', input) >= 0, 'a milestone before the input');
  assert.ok(approve.indexOf('milestone(', input) > input, 'and one after it');
  for (const name of ['Deploy dev', 'Deploy prod']) {
    // Inside the lock, first thing: the newest build that got the lock aborts older ones waiting.
    const body = stageBody(name);
    const stages = blockAt(body, body.search(/\bstages\s*\{/));
    assert.match(blockAt(stages, 0), /^\s*steps \{\s*milestone\(ordinal: \d+/);
    assert.match(ownPart(body), /post \{\s*failure \{ sh 'scripts\/ci\/rollback\.sh (dev|prod)' \}/, `${name}: a failure rolls back`);
  }
});

test('the Jenkinsfile: no Google credentials at all; only the GitHub token and the smoke test keys', () => {
  assert.not.match(jenkinsfile, /\bfile\(credentialsId/);
  assert.not.match(jenkinsfile, /GOOGLE_APPLICATION_CREDENTIALS/);
  const ids = [...new Set([...jenkinsfile.matchAll(/credentialsId:\s*'([^']+)'/g)].map((m) => m[1]!))].sort();
  assert.equal(ids, ['itemgen-dev-smoke-api-key', 'itemgen-github-token', 'itemgen-prod-smoke-api-key']);
  assert.match(stageBody('Review'), /credentialsId: 'itemgen-github-token'/);
  assert.match(stageBody('dev: smoke'), /credentialsId: 'itemgen-dev-smoke-api-key'/);
  assert.match(stageBody('prod: smoke'), /credentialsId: 'itemgen-prod-smoke-api-key'/);
});

test('no key files in any CI script: identities by impersonation, from the settings', () => {
  for (const file of ciScripts) {
    const text = read(file);
    assert.not.match(text, /activate-service-account|--key-file|GOOGLE_APPLICATION_CREDENTIALS=/, file);
  }
  const lib = read('scripts/ci/lib.sh');
  assert.not.match(lib, /gcp_login/);
  assert.match(lib, /export CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT=\$account GOOGLE_IMPERSONATE_SERVICE_ACCOUNT=\$account/);
  const s = deploySettings('prod');
  assert.is(s.TERRAFORM_ACCOUNT, deliveryAccountEmail(environments.prod, 'terraform'));
  assert.is(s.PLANNER_ACCOUNT, deliveryAccountEmail(environments.prod, 'planner'));
  assert.is(s.DEPLOYER_ACCOUNT, serviceAccountEmail(environments.prod, 'deployer'));
  assert.is(s.JENKINS_ACCOUNT, 'itemgen-jenkins@itemgen-dev.iam.gserviceaccount.com', 'jenkins lives in the CI home');
  const uses = (file: string) => [...read(file).matchAll(/^\s*use_identity (\w+)/gm)].map((m) => m[1]);
  assert.equal(uses('scripts/ci/terraform-plan.sh'), ['planner', 'terraform']);
  assert.equal(uses('scripts/ci/terraform-apply.sh'), ['terraform']);
  assert.equal(uses('scripts/ci/first-apply.sh'), ['terraform']);
  for (const f of ['deploy-gateway', 'deploy-runners', 'promote-gateway', 'rollback']) assert.equal(uses(`scripts/ci/${f}.sh`), ['deployer'], f);
  // The deployer, or terraform for the first apply only (scripts.test.ts runs both).
  assert.match(read('scripts/ci/push-images.sh'), /^\s*deployer \| terraform\) use_identity "\$\{PUSH_AS:-deployer\}" ;;$/m);
});

test('images by digest: the Dockerfiles\' base images are images.lock.json\'s; no :latest pushed or deployed', () => {
  assert.equal(Object.keys(imagesLock).sort(), [
    'gcr.io/google.com/cloudsdktool/google-cloud-cli:slim',
    'node:24-bookworm-slim',
    'nvidia/cuda:12.8.1-cudnn-runtime-ubuntu22.04',
    'rabbitmq:3.13.7',
    'us-docker.pkg.dev/cloud-ops-agents-artifacts/cloud-run-gmp-sidecar/cloud-run-gmp-sidecar:1.2.0',
  ]);
  for (const d of Object.values(imagesLock)) assert.match(d, /^sha256:[0-9a-f]{64}$/);
  for (const file of ['Dockerfile.gateway', 'Dockerfile.runner']) {
    const text = read(file).replace(/\\\n/g, ' ');
    assert.not.match(text, /^# syntax=/m, `${file}: no frontend image by tag`);
    const args = Object.fromEntries([...text.matchAll(/^ARG (\w+)=(\S+)$/gm)].map((m) => [m[1]!, m[2]!]));
    const froms = [...text.matchAll(/^FROM (\S+)/gm)].map((m) => m[1]!.replace(/^\$\{(\w+)\}$/, (_, n: string) => args[n] ?? n));
    assert.ok(froms.length >= 2, file);
    for (const ref of froms) {
      const m = /^(.+)@(sha256:[0-9a-f]{64})$/.exec(ref);
      assert.ok(m, `${file}: FROM ${ref} is by digest`);
      assert.is(imagesLock[m[1]!], m[2], `${file}: ${m[1]} carries the lock's digest`);
    }
  }
  for (const file of [...ciScripts, 'Jenkinsfile']) assert.not.match(read(file), /:latest\b/, `${file} names no :latest`);
  assert.match(read('scripts/ci/deploy-gateway.sh'), /image="\$GATEWAY_REPOSITORY@\$GATEWAY_DIGEST"/);
  assert.match(read('scripts/ci/deploy-runners.sh'), /apply_runners "\$RUNNER_DIGEST"/);
});

test('pin-images.sh refreshes the lock and the Dockerfiles\' ARG defaults from the registry', () => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'itemgen-pin-'));
  try {
    // A copy of what it edits, in a tree of its own (lib.sh moves to the repository root).
    fs.mkdirSync(path.join(work, 'scripts/ci'), { recursive: true });
    for (const f of ['scripts/ci/pin-images.sh', 'scripts/ci/lib.sh', 'images.lock.json', 'Dockerfile.gateway', 'Dockerfile.runner']) fs.copyFileSync(f, path.join(work, f));
    fs.chmodSync(path.join(work, 'scripts/ci/pin-images.sh'), 0o755);
    const fresh = `sha256:${'d'.repeat(64)}`;
    const f = makeFakes({ docker: `'buildx imagetools inspect node:24-bookworm-slim --format'*) echo '{"digest":"${fresh}"}' ;;
  'buildx imagetools inspect '*) echo "{\\"digest\\":\\"$(jq -r --arg n "$4" '.[$n]' images.lock.json)\\"}" ;;` });
    try {
      const r = f.run(path.join(work, 'scripts/ci/pin-images.sh'), []);
      assert.is(r.status, 0, r.stderr);
      const lock = JSON.parse(fs.readFileSync(path.join(work, 'images.lock.json'), 'utf8')) as Record<string, string>;
      assert.equal(lock, { ...imagesLock, 'node:24-bookworm-slim': fresh });
      for (const file of ['Dockerfile.gateway', 'Dockerfile.runner']) {
        const text = fs.readFileSync(path.join(work, file), 'utf8');
        assert.match(text, new RegExp(`^ARG NODE_IMAGE=node:24-bookworm-slim@${fresh}$`, 'm'), file);
        assert.is(text.replaceAll(fresh, imagesLock['node:24-bookworm-slim']!), read(file), `${file}: nothing else changed`);
      }
      assert.equal(f.calls().map((c) => c.argv.slice(0, 4).join(' ')), Object.keys(imagesLock).map((n) => `buildx imagetools inspect ${n}`));
    } finally {
      f.cleanup();
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
});

test('bootstrap plan: the lists of infra/bootstrap.ts reach bash as arrays, unchanged', () => {
  const plan = bootstrapPlan('dev');
  const r = spawnSync('bash', ['-c', 'eval "$1"; printf "%s\\n" "${#TERRAFORM_ROLES[@]}" "${SECRET_IDS[0]}" "${CUSTOM_ROLE_TITLES[0]}" "${QUOTED[1]}"', 'bash', shellArrays({ ...plan, QUOTED: ['a', `it's "x" $y`] })], { encoding: 'utf8' });
  assert.equal(r.stdout.split('\n').slice(0, 4), [String(plan.TERRAFORM_ROLES!.length), plan.SECRET_IDS![0], plan.CUSTOM_ROLE_TITLES![0], `it's "x" $y`]);
  assert.is(plan.TERRAFORM_ROLES!.length, plan.TERRAFORM_CONDITION_EXPRESSIONS!.length);
  assert.ok(plan.TERRAFORM_ROLES!.every((r) => r !== 'roles/owner' && r !== 'roles/editor'));
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
  const d = `sha256:${'c'.repeat(64)}`;
  const byDigest = pinImage(yaml, repo, d);
  assert.is(byDigest.count, 3);
  assert.is(byDigest.text.split('\n')[1], `      - image: "${repo}@${d}"`, 'a digest pins repo@sha256:…');
  assert.throws(() => pinImage(yaml, repo, 'sha256:abc'), /not a valid image tag or digest/);
});

test.run();
