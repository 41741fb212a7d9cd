// The CI scripts run against fake gcloud/kubectl/terraform/docker (test/delivery/fakes.ts): who
// each step acts as, what it is handed, and what it leaves.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { bootstrapSecrets, planProjectRoles, requiredApis, terraformProjectRoles } from '../../infra/bootstrap.ts';
import { deliveryAccountEmail, environments, imageRepository, serviceAccountEmail } from '../../infra/environments.ts';
import { synthInfra } from '../../infra/main.ts';
import { allArgv, callsOf, digest, makeFakes, SHA, sh, type Call } from './fakes.ts';

const dev = environments.dev;
const prod = environments.prod;
const stacks = fs.mkdtempSync(path.join(os.tmpdir(), 'itemgen-stacks-'));
synthInfra(stacks);
const extraEnv = { ITEMGEN_CDKTF_OUT: stacks };
process.on('exit', () => fs.rmSync(stacks, { recursive: true, force: true }));

const TERRAFORM = deliveryAccountEmail(dev, 'terraform');
const PLANNER = deliveryAccountEmail(dev, 'planner');
const DEPLOYER = serviceAccountEmail(dev, 'deployer');
const PASSWORD = 'db-password-9f8e7d6c5b4a';
const GW = imageRepository(dev, 'gateway');
const RUNNER = imageRepository(dev, 'runner');
const RUNNING_IMAGE = `${GW}@${digest('1')}`;

const gcloudBase = `
  'auth print-access-token'*) echo fake-access-token ;;
  'secrets versions access latest --secret=itemgen-dev-database-password'*) printf '%s' '${PASSWORD}' ;;
`;
const terraformBase = `
  *' show -no-color tfplan'*) echo 'Plan: 1 to add, 0 to change, 0 to destroy.' ;;
  *' plan '*) touch "\${1#-chdir=}/tfplan" ;;
`;
const identities = (calls: Call[], tool: string) => [...new Set(callsOf(calls, tool).map((c) => c.env.CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT ?? c.env.GOOGLE_IMPERSONATE_SERVICE_ACCOUNT ?? ''))];

test('review plan: as the planner, no secret read, no password variable, the gateway image Cloud Run runs now, no lock', () => {
  const f = makeFakes({
    gcloud: `${gcloudBase}
  'run services describe itemgen-dev-gateway'*"--format=value(spec.template.spec.containers[0].image)"*) echo '${RUNNING_IMAGE}' ;;`,
    terraform: terraformBase,
  }, { extraEnv });
  try {
    const r = f.run('scripts/ci/terraform-plan.sh', ['dev', '--review']);
    assert.is(r.status, 0, r.stderr);
    const calls = f.calls();
    const tf = callsOf(calls, 'terraform');
    assert.ok(tf.length >= 3);
    for (const c of tf) {
      assert.is(c.env.GOOGLE_IMPERSONATE_SERVICE_ACCOUNT, PLANNER, 'terraform (provider and gcs backend) acts as the planner');
      assert.is(c.env.TF_VAR_database_password, undefined, 'a review plan has no password');
      assert.is(c.env.TF_VAR_gateway_image, RUNNING_IMAGE);
      assert.is(c.env.GOOGLE_APPLICATION_CREDENTIALS, undefined);
    }
    assert.ok(callsOf(calls, 'terraform').some((c) => c.argv.includes('plan') && c.argv.includes('-lock=false')));
    assert.equal(callsOf(calls, 'gcloud', 'secrets'), [], 'never reads a secret');
    assert.equal(identities(calls, 'gcloud'), [PLANNER]);
    assert.not.ok(fs.existsSync(path.join(stacks, 'stacks/itemgen-dev/tfplan')), 'the review plan file is deleted');
    assert.ok(fs.existsSync(path.join(f.out, 'review/plan-dev.txt')));
  } finally {
    f.cleanup();
  }
});

test('deploy plan: as terraform, the database password from Secret Manager in the environment only; first apply takes GATEWAY_IMAGE', () => {
  const f = makeFakes({
    gcloud: `${gcloudBase}
  'run services describe'*) echo 'ERROR: (gcloud.run.services.describe) Cannot find service' >&2; exit 1 ;;`,
    terraform: terraformBase,
  }, { extraEnv });
  try {
    const image = `${GW}@${digest('2')}`;
    const r = f.run('scripts/ci/terraform-plan.sh', ['dev'], { GATEWAY_IMAGE: image });
    assert.is(r.status, 0, r.stderr);
    const calls = f.calls();
    const access = callsOf(calls, 'gcloud', 'secrets', 'versions', 'access');
    assert.is(access.length, 1);
    assert.is(access[0]!.env.CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT, TERRAFORM, 'read as terraform');
    for (const c of callsOf(calls, 'terraform')) {
      assert.is(c.env.GOOGLE_IMPERSONATE_SERVICE_ACCOUNT, TERRAFORM);
      assert.is(c.env.TF_VAR_database_password, PASSWORD);
      assert.is(c.env.TF_VAR_gateway_image, image);
    }
    assert.not.ok(allArgv(calls).includes(PASSWORD), 'the password is on no command line');
    assert.not.ok(r.stdout.includes(PASSWORD) || r.stderr.includes(PASSWORD), 'nor in the log');
    assert.ok(fs.existsSync(path.join(stacks, 'stacks/itemgen-dev/tfplan')), 'the saved plan stays for terraform-apply.sh');

    // The password variable is ephemeral (kept out of the saved plan): the apply passes it again.
    const applied = f.run('scripts/ci/terraform-apply.sh', ['dev']);
    assert.is(applied.status, 0, applied.stderr);
    const apply = callsOf(f.calls(), 'terraform').filter((c) => c.argv.includes('apply'));
    assert.is(apply.length, 1);
    assert.is(apply[0]!.env.GOOGLE_IMPERSONATE_SERVICE_ACCOUNT, TERRAFORM);
    assert.is(apply[0]!.env.TF_VAR_database_password, PASSWORD);
    assert.not.ok(allArgv(f.calls()).includes(PASSWORD), 'on no command line');
    assert.not.ok(fs.existsSync(path.join(stacks, 'stacks/itemgen-dev/tfplan')), 'the applied plan is deleted');

    const tag = f.run('scripts/ci/terraform-plan.sh', ['dev'], { GATEWAY_IMAGE: `${GW}:latest` });
    assert.is(tag.status, 1);
    assert.match(tag.stderr, /must be named by digest/);
    const none = f.run('scripts/ci/terraform-plan.sh', ['dev']);
    assert.is(none.status, 1);
    assert.match(none.stderr, /does not exist yet: set GATEWAY_IMAGE=/);
  } finally {
    f.cleanup();
  }
});

test('no key files: a script refuses GOOGLE_APPLICATION_CREDENTIALS, and says whom it could not impersonate', () => {
  const f = makeFakes({ gcloud: `'auth print-access-token'*) echo 'ERROR: Permission iam.serviceAccounts.getAccessToken denied' >&2; exit 1 ;;` }, { extraEnv });
  try {
    const key = f.run('scripts/ci/terraform-apply.sh', ['dev'], { GOOGLE_APPLICATION_CREDENTIALS: '/tmp/key.json' });
    // terraform-apply first wants the plan; make one so the identity check is reached.
    assert.is(key.status, 1);
    fs.writeFileSync(path.join(stacks, 'stacks/itemgen-dev/tfplan'), '');
    const refused = f.run('scripts/ci/terraform-apply.sh', ['dev'], { GOOGLE_APPLICATION_CREDENTIALS: '/tmp/key.json' });
    assert.is(refused.status, 1);
    assert.match(refused.stderr, /delivery uses no key files/);
    fs.writeFileSync(path.join(stacks, 'stacks/itemgen-dev/tfplan'), '');
    const denied = f.run('scripts/ci/terraform-apply.sh', ['dev']);
    assert.is(denied.status, 1);
    assert.match(denied.stderr, new RegExp(`cannot impersonate ${TERRAFORM.replaceAll('.', '\\.')}.*serviceAccountTokenCreator`));
    assert.equal(callsOf(f.calls(), 'terraform'), []);
  } finally {
    fs.rmSync(path.join(stacks, 'stacks/itemgen-dev/tfplan'), { force: true });
    f.cleanup();
  }
});

const pushedDigest: Record<string, string> = { gateway: digest('a'), runner: digest('b') };
const dockerPush = (repo: (i: 'gateway' | 'runner') => string) => `
  'buildx imagetools inspect'*) exit 1 ;;
  'image inspect --format'*/gateway:*) echo '${repo('gateway')}@${pushedDigest.gateway}' ;;
  'image inspect --format'*/runner:*) echo '${repo('runner')}@${pushedDigest.runner}' ;;
`;

test('push-images: the commit tag only (no latest), a private docker config with a token as the deployer, digests recorded', () => {
  const f = makeFakes({ gcloud: gcloudBase, docker: dockerPush((i) => imageRepository(dev, i)) }, { extraEnv, stdinFor: ['docker'] });
  try {
    const r = f.run('scripts/ci/push-images.sh', ['dev']);
    assert.is(r.status, 0, r.stderr);
    const calls = f.calls();
    const login = callsOf(calls, 'docker', 'login');
    assert.is(login.length, 1);
    assert.equal(login[0]!.argv, ['login', '-u', 'oauth2accesstoken', '--password-stdin', `https://${dev.region}-docker.pkg.dev`]);
    assert.is(login[0]!.stdin, 'fake-access-token', 'the token comes from gcloud auth print-access-token, through stdin');
    assert.match(login[0]!.env.DOCKER_CONFIG ?? '', /itemgen-ci\.[^/]+\/docker$/, 'a docker config in the script\'s private folder');
    assert.equal(identities(calls, 'gcloud'), [DEPLOYER]);
    const pushes = callsOf(calls, 'docker', 'push').map((c) => c.argv.at(-1));
    assert.equal(pushes, [`${GW}:${SHA}`, `${RUNNER}:${SHA}`]);
    assert.not.match(allArgv(calls), /:latest\b/, 'no latest tag anywhere');
    const record = fs.readFileSync(path.join(f.out, 'images/dev.env'), 'utf8');
    assert.match(record, new RegExp(`^GATEWAY_DIGEST='${pushedDigest.gateway}'$`, 'm'));
    assert.match(record, new RegExp(`^RUNNER_IMAGE='${RUNNER}@${pushedDigest.runner}'$`, 'm'));
  } finally {
    f.cleanup();
  }
});

test('first-apply: the repository alone, then both images pushed as terraform, then the whole stack with that gateway image by digest', () => {
  const f = makeFakes({
    gcloud: `${gcloudBase}
  'run services describe'*) echo 'ERROR: (gcloud.run.services.describe) Cannot find service' >&2; exit 1 ;;`,
    terraform: terraformBase,
    docker: dockerPush((i) => imageRepository(dev, i)),
  }, { extraEnv, stdinFor: ['docker'] });
  try {
    const r = f.run('scripts/ci/first-apply.sh', ['dev', '--yes']);
    assert.is(r.status, 0, r.stderr);
    const calls = f.calls();
    const steps = calls
      .filter((c) => (c.tool === 'terraform' && /^(apply|plan)$/.test(c.argv[1] ?? '')) || (c.tool === 'docker' && ['build', 'push'].includes(c.argv[0]!)))
      .map((c) => (c.tool === 'terraform' ? `terraform ${c.argv[1]}${c.argv.some((a) => a.startsWith('-target=')) ? ' -target' : ''}` : `docker ${c.argv[0]}`));
    assert.equal(steps, ['terraform apply -target', 'docker build', 'docker build', 'docker push', 'docker push', 'terraform plan', 'terraform apply']);
    const targeted = callsOf(calls, 'terraform').find((c) => c.argv.some((a) => a.startsWith('-target=')))!;
    assert.match(targeted.argv.find((a) => a.startsWith('-target='))!, /^-target=google_artifact_registry_repository\.[\w-]+$/);
    assert.equal(identities(calls, 'gcloud'), [TERRAFORM], 'every step as terraform: the deployer has no grants yet');
    const plan = callsOf(calls, 'terraform').find((c) => c.argv[1] === 'plan')!;
    assert.is(plan.env.TF_VAR_gateway_image, `${GW}@${pushedDigest.gateway}`, 'the service is created with the image just pushed');
    assert.is(plan.env.TF_VAR_database_password, PASSWORD);
    assert.not.ok(allArgv(calls).includes(PASSWORD));
  } finally {
    f.cleanup();
  }
  const again = makeFakes({ gcloud: `${gcloudBase}
  'run services describe'*) echo itemgen-dev-gateway ;;`, terraform: terraformBase }, { extraEnv });
  try {
    const r = again.run('scripts/ci/first-apply.sh', ['dev', '--yes']);
    assert.is(r.status, 1);
    assert.match(r.stderr, /exists already: this is not a first apply/);
    assert.equal(callsOf(again.calls(), 'terraform'), [], 'nothing applied');
  } finally {
    again.cleanup();
  }
});

test('push-images --from dev: prod gets a carbon copy by digest, checked to be the same bytes', () => {
  const prodGw = imageRepository(prod, 'gateway');
  const prodRunner = imageRepository(prod, 'runner');
  const run = (copied: string) => {
    const f = makeFakes({
      gcloud: gcloudBase,
      docker: `
  'buildx imagetools inspect ${prodGw}:'*) [ -e "$CI_OUT/copied-gateway" ] && echo '{"digest":"${copied}"}' || exit 1 ;;
  'buildx imagetools inspect ${prodRunner}:'*) [ -e "$CI_OUT/copied-runner" ] && echo '{"digest":"${pushedDigest.runner}"}' || exit 1 ;;
  'buildx imagetools create'*gateway*) touch "$CI_OUT/copied-gateway" ;;
  'buildx imagetools create'*runner*) touch "$CI_OUT/copied-runner" ;;`,
    }, { extraEnv, stdinFor: ['docker'] });
    fs.mkdirSync(path.join(f.out, 'images'), { recursive: true });
    fs.writeFileSync(path.join(f.out, 'images/dev.env'), `IMAGE_TAG='${SHA}'\nGATEWAY_DIGEST='${pushedDigest.gateway}'\nRUNNER_DIGEST='${pushedDigest.runner}'\n`);
    return { f, r: f.run('scripts/ci/push-images.sh', ['prod', '--from', 'dev']) };
  };
  const ok = run(pushedDigest.gateway!);
  try {
    assert.is(ok.r.status, 0, ok.r.stderr);
    const creates = callsOf(ok.f.calls(), 'docker', 'buildx', 'imagetools', 'create').map((c) => c.argv.slice(3));
    assert.equal(creates, [
      ['--prefer-index=false', '--tag', `${prodGw}:${SHA}`, `${GW}@${pushedDigest.gateway}`],
      ['--prefer-index=false', '--tag', `${prodRunner}:${SHA}`, `${RUNNER}@${pushedDigest.runner}`],
    ]);
    assert.equal(identities(ok.f.calls(), 'gcloud'), [serviceAccountEmail(prod, 'deployer')]);
    assert.equal(callsOf(ok.f.calls(), 'docker', 'push'), [], 'nothing rebuilt or pushed from the agent');
    assert.match(fs.readFileSync(path.join(ok.f.out, 'images/prod.env'), 'utf8'), new RegExp(`GATEWAY_IMAGE='${prodGw}@${pushedDigest.gateway}'`));
  } finally {
    ok.f.cleanup();
  }
  const bad = run(digest('e'));
  try {
    assert.is(bad.r.status, 1, bad.r.stderr);
    assert.match(bad.r.stderr, /not the same bytes/, bad.r.stderr);
  } finally {
    bad.f.cleanup();
  }
});

const serviceJson = (traffic: unknown[], latest = 'itemgen-dev-gateway-00002-new') => JSON.stringify({
  status: { latestCreatedRevisionName: latest, latestReadyRevisionName: latest, url: 'https://gw.example', traffic },
});
const imagesRecord = (out: string) => {
  fs.mkdirSync(path.join(out, 'images'), { recursive: true });
  fs.writeFileSync(path.join(out, 'images/dev.env'), `IMAGE_TAG='${SHA}'\nGATEWAY_DIGEST='${digest('a')}'\nRUNNER_DIGEST='${digest('b')}'\n`);
};

test('deploy-gateway by digest, no traffic, the serving revision recorded; promote returns traffic to latest', () => {
  const before = serviceJson([{ revisionName: 'itemgen-dev-gateway-00001-old', percent: 100, latestRevision: true }], 'itemgen-dev-gateway-00001-old');
  const after = serviceJson([{ revisionName: 'itemgen-dev-gateway-00001-old', percent: 100 }, { revisionName: 'itemgen-dev-gateway-00002-new', tag: 'sha-c0ffee012345', url: 'https://sha-c0ffee012345---gw.example' }]);
  const f = makeFakes({
    gcloud: `${gcloudBase}
  'run services describe'*) [ -e "$CI_OUT/deployed" ] && echo '${after}' || echo '${before}' ;;
  'run deploy'*) touch "$CI_OUT/deployed" ;;`,
  }, { extraEnv });
  try {
    imagesRecord(f.out);
    const r = f.run('scripts/ci/deploy-gateway.sh', ['dev']);
    assert.is(r.status, 0, r.stderr);
    const deploy = callsOf(f.calls(), 'gcloud', 'run', 'deploy');
    assert.is(deploy.length, 1);
    const argv = deploy[0]!.argv;
    assert.is(argv[argv.indexOf('--image') + 1], `${GW}@${digest('a')}`);
    // The service runs the metrics collector too: the image is the gateway container's.
    assert.is(argv[argv.indexOf('--container') + 1], 'gateway');
    assert.ok(argv.indexOf('--container') < argv.indexOf('--image'));
    assert.ok(argv.includes('--no-traffic'));
    assert.is(argv[argv.indexOf('--tag') + 1], 'sha-c0ffee012345');
    assert.is(deploy[0]!.env.CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT, DEPLOYER);
    const rec = (n: string) => fs.readFileSync(path.join(f.out, 'deploy/dev', n), 'utf8').trim();
    assert.is(rec('gateway-previous-revision'), 'itemgen-dev-gateway-00001-old');
    assert.is(rec('gateway-url'), 'https://sha-c0ffee012345---gw.example');

    const p = f.run('scripts/ci/promote-gateway.sh', ['dev'], { PATH: `${f.dir}/bin:${process.env.PATH}` });
    assert.is(p.status, 0, p.stderr);
    const traffic = callsOf(f.calls(), 'gcloud', 'run', 'services', 'update-traffic').map((c) => c.argv.filter((a) => a.startsWith('--to') || a.startsWith('--remove')));
    assert.equal(traffic, [['--to-latest'], ['--remove-tags']]);
  } finally {
    f.cleanup();
  }
});

const deploymentsJson = (image: string) => JSON.stringify({ items: [{ spec: { template: { spec: { containers: [{ image }] } } } }] });

test('deploy-runners pins the digest, records the image that ran before; a failed rollout leaves rollback.sh to pin it back', () => {
  const previous = `${RUNNER}@${digest('9')}`;
  const f = makeFakes({
    gcloud: gcloudBase,
    kubectl: `
  *'get deployments -o json'*) echo '${deploymentsJson(previous)}' ;;
  'apply '*) echo deployment.apps/itemgen-runner ;;
  *'rollout status'*) [ -e "$CI_OUT/rollout-ok" ] || exit 1 ;;`,
  }, { extraEnv });
  try {
    imagesRecord(f.out);
    const r = f.run('scripts/ci/deploy-runners.sh', ['dev']);
    assert.is(r.status, 1, 'the rollout fails');
    assert.match(r.stderr, /did not roll out/);
    const manifests = fs.readFileSync(path.join(f.out, 'deploy/dev/manifests.yaml'), 'utf8');
    assert.ok(manifests.includes(`image: ${RUNNER}@${digest('b')}`));
    assert.is(fs.readFileSync(path.join(f.out, 'deploy/dev/runner-previous-image'), 'utf8').trim(), previous);
    for (const c of callsOf(f.calls(), 'gcloud')) assert.is(c.env.CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT, DEPLOYER);
    assert.match(callsOf(f.calls(), 'kubectl', 'apply')[0]!.env.KUBECONFIG ?? '', /itemgen-ci\./);

    fs.writeFileSync(path.join(f.out, 'rollout-ok'), '');
    const rb = f.run('scripts/ci/rollback.sh', ['dev']);
    assert.is(rb.status, 0, rb.stderr);
    assert.match(rb.stderr, /stays on the revision that served before/);
    const back = fs.readFileSync(path.join(f.out, 'deploy/dev/rollback/manifests.yaml'), 'utf8');
    assert.ok(back.includes(`image: ${previous}`), 'runners pinned back to the digest that ran before');
    assert.equal(callsOf(f.calls(), 'gcloud', 'run'), [], 'gateway traffic untouched: it never left the old revision');
  } finally {
    f.cleanup();
  }
});

test('rollback after a promote moves traffic back; by digest: an existing revision, or a new one then latest', () => {
  const revisions = JSON.stringify([
    { metadata: { name: 'gw-00003-x', creationTimestamp: '2026-01-03T00:00:00Z' }, spec: { containers: [{ image: `${GW}@${digest('3')}` }] }, status: { conditions: [{ type: 'Ready', status: 'True' }] } },
    { metadata: { name: 'gw-00001-x', creationTimestamp: '2026-01-01T00:00:00Z' }, spec: { containers: [{ image: `${GW}@${digest('1')}` }] }, status: { conditions: [{ type: 'Ready', status: 'True' }] } },
  ]);
  const f = makeFakes({
    gcloud: `${gcloudBase}
  'run revisions list'*) echo '${revisions}' ;;
  'run services describe'*) echo '${serviceJson([], 'gw-00004-y')}' ;;`,
  }, { extraEnv });
  try {
    const out = path.join(f.out, 'deploy/dev');
    fs.mkdirSync(out, { recursive: true });
    fs.writeFileSync(path.join(out, 'gateway-promoted'), '');
    fs.writeFileSync(path.join(out, 'gateway-previous-revision'), 'gw-00001-x\n');
    const auto = f.run('scripts/ci/rollback.sh', ['dev']);
    assert.is(auto.status, 0, auto.stderr);
    const traffic = () => callsOf(f.calls(), 'gcloud', 'run', 'services', 'update-traffic').map((c) => c.argv.find((a) => a.startsWith('--to')) === '--to-latest' ? 'latest' : c.argv[c.argv.indexOf('--to-revisions') + 1]);
    assert.equal(traffic(), ['gw-00001-x=100']);

    const found = f.run('scripts/ci/rollback.sh', ['dev', '--gateway-digest', digest('3')]);
    assert.is(found.status, 0, found.stderr);
    assert.equal(traffic(), ['gw-00001-x=100', 'gw-00003-x=100']);
    assert.equal(callsOf(f.calls(), 'gcloud', 'run', 'deploy'), []);

    const fresh = f.run('scripts/ci/rollback.sh', ['dev', '--gateway-digest', digest('7')]);
    assert.is(fresh.status, 0, fresh.stderr);
    const deploy = callsOf(f.calls(), 'gcloud', 'run', 'deploy');
    assert.is(deploy.length, 1);
    assert.ok(deploy[0]!.argv.includes(`${GW}@${digest('7')}`) && deploy[0]!.argv.includes('--no-traffic'));
    assert.equal(traffic(), ['gw-00001-x=100', 'gw-00003-x=100', 'latest']);

    const bad = f.run('scripts/ci/rollback.sh', ['dev', '--runner-digest', 'latest']);
    assert.is(bad.status, 1);
    assert.match(bad.stderr, /--runner-digest takes sha256/);
  } finally {
    f.cleanup();
  }
});

// preflight: one fake gcloud whose answers each test picks through environment variables.
const servicesList = `'services list --enabled'*) printf '%s\\n' $FAKE_APIS ;;`;
const preflightGcloud = (services = servicesList) => `
  ${services}
  'org-policies describe constraints/iam.allowedPolicyMemberDomains'*) echo "\${FAKE_DRS:-{\\}}" ;;
  'org-policies describe constraints/iam.disableServiceAccountKeyCreation'*) echo "\${FAKE_KEYS:-{\\}}" ;;
  'compute regions describe'*) echo "{\\"quotas\\":[{\\"metric\\":\\"NVIDIA_L4_GPUS\\",\\"limit\\":\${FAKE_L4:-0}},{\\"metric\\":\\"PREEMPTIBLE_NVIDIA_L4_GPUS\\",\\"limit\\":\${FAKE_PL4:-0}}]}" ;;
`;
const allApis = requiredApis.join(' ');

test('preflight: each blocking finding fails with its message; key creation is informational', () => {
  const f = makeFakes({ gcloud: preflightGcloud() }, { extraEnv });
  try {
    const run = (env: Record<string, string>, args = ['dev']) => f.run('scripts/ci/preflight.sh', args, { FAKE_APIS: allApis, FAKE_PL4: '8', ...env });
    const ok = run({ FAKE_KEYS: '{"spec":{"rules":[{"enforce":true}]}}' });
    assert.is(ok.status, 0, ok.stderr);
    assert.match(ok.stderr, /disableServiceAccountKeyCreation is enforced.*creates no service-account keys/);
    assert.match(ok.stderr, /nothing blocks/);
    const calls = f.calls();
    assert.ok(callsOf(calls, 'gcloud', 'org-policies', 'describe').every((c) => c.argv.includes('--project=itemgen-dev') && c.argv.includes('--effective')));

    const drs = run({ FAKE_DRS: '{"spec":{"rules":[{"values":{"allowedValues":["C0abc123"]}}]}}' });
    assert.is(drs.status, 1);
    assert.match(drs.stderr, /BLOCKED: constraints\/iam\.allowedPolicyMemberDomains.*allUsers/);
    assert.is(run({ FAKE_DRS: '{"spec":{"rules":[{"allowAll":true}]}}' }).status, 0);

    const quota = run({ FAKE_PL4: '1' });
    assert.is(quota.status, 1);
    assert.match(quota.stderr, /BLOCKED: GPU quota in europe-west4: PREEMPTIBLE_NVIDIA_L4_GPUS is 1.*grows to 2/);
    assert.is(run({ FAKE_PL4: '0', FAKE_L4: '2' }).status, 0, 'spot GPUs fall back to the regular quota');
    const prodQuota = f.run('scripts/ci/preflight.sh', ['prod'], { FAKE_APIS: allApis, FAKE_L4: '4' });
    assert.is(prodQuota.status, 1);
    assert.match(prodQuota.stderr, /NVIDIA_L4_GPUS is 4, the GPU pool grows to 8/);

    const apis = run({ FAKE_APIS: requiredApis.filter((a) => a !== 'run.googleapis.com' && a !== 'compute.googleapis.com').join(' ') });
    assert.is(apis.status, 1);
    assert.match(apis.stderr, /BLOCKED: API\(s\) not enabled in itemgen-dev: compute\.googleapis\.com run\.googleapis\.com/);
    const early = run({ FAKE_APIS: 'serviceusage.googleapis.com' }, ['dev', '--bootstrap']);
    assert.is(early.status, 0, early.stderr);
    assert.match(early.stderr, /bootstrap\.sh enables them/);
  } finally {
    f.cleanup();
  }
});

test('bootstrap: preflight first, the lists of infra/bootstrap.ts, no secret on a command line, existing secrets kept', () => {
  const existing = 'itemgen-dev-runner-token';
  const f = makeFakes({
    // A new project: only serviceusage is on until bootstrap enables the rest.
    gcloud: `${preflightGcloud(`'services list --enabled'*) [ -e "$CI_OUT/enabled" ] && printf '%s\\n' $FAKE_APIS || echo serviceusage.googleapis.com ;;`)}
  'services enable'*) touch "$CI_OUT/enabled" ;;
  'config get-value account'*) echo alice@example.com ;;
  'secrets describe ${existing} '*) echo projects/x/secrets/${existing} ;;
  'secrets describe'*) exit 1 ;;
  'iam service-accounts describe'*) exit 1 ;;
  'iam roles describe'*) exit 1 ;;
  'storage buckets describe'*) exit 1 ;;
  'secrets create'*) for a in "$@"; do case $a in --data-file=*) cp "\${a#--data-file=}" "$CI_OUT/value-$3" ;; esac; done ;;`,
  }, { extraEnv });
  try {
    fs.mkdirSync(f.out, { recursive: true });
    const r = f.run('scripts/ci/bootstrap.sh', ['dev'], { FAKE_APIS: allApis, FAKE_PL4: '8' });
    assert.is(r.status, 0, r.stderr);
    const calls = f.calls().filter((c) => c.tool === 'gcloud');
    const words = calls.map((c) => c.argv.slice(0, 2).join(' '));
    const firstChange = words.findIndex((w) => /^(services enable|storage buckets|iam service-accounts|secrets create|projects add-iam-policy-binding)/.test(w));
    assert.is(words[0], 'services list', 'preflight (its API check) runs first');
    assert.ok(firstChange > 0 && words.slice(0, firstChange).every((w) => ['services list', 'org-policies describe', 'compute regions'].includes(w)), `only checks before the first change: ${words.slice(0, firstChange + 1).join(', ')}`);
    const enable = callsOf(calls, 'gcloud', 'services', 'enable')[0]!;
    assert.equal(enable.argv.slice(2, -1), requiredApis.filter((a) => a !== 'serviceusage.googleapis.com'));
    assert.ok(calls.every((c) => !c.env.CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT), 'bootstrap runs as the person, impersonating no one');

    const roles = (who: string) => callsOf(calls, 'gcloud', 'projects', 'add-iam-policy-binding')
      .filter((c) => c.argv.includes(`--member=serviceAccount:${who}`)).map((c) => c.argv.find((a) => a.startsWith('--role='))!.slice(7));
    // Exactly the lists: each custom role goes to its holder alone (the planner's read role is not terraform's).
    assert.equal(roles(TERRAFORM), terraformProjectRoles(dev).map((g) => g.role));
    assert.equal(roles(PLANNER), planProjectRoles(dev).map((g) => g.role));
    assert.ok(roles(TERRAFORM).includes('projects/itemgen-dev/roles/itemgenSecretIamAdmin'));
    assert.ok(roles(PLANNER).includes('projects/itemgen-dev/roles/itemgenPlanReader'));
    assert.ok(callsOf(calls, 'gcloud', 'iam', 'roles', 'create').some((c) => c.argv.includes('itemgenSecretIamAdmin')));

    const created = callsOf(calls, 'gcloud', 'secrets', 'create').map((c) => c.argv[2]);
    assert.equal(created, bootstrapSecrets.map((s) => `itemgen-dev-${s.id}`).filter((n) => n !== existing), 'every secret but the existing one');
    const values = fs.readdirSync(f.out).filter((n) => n.startsWith('value-')).map((n) => fs.readFileSync(path.join(f.out, n), 'utf8'));
    assert.is(values.length, created.length);
    const argv = allArgv(f.calls());
    for (const v of values) {
      assert.ok(v.length >= 32);
      for (const line of v.split('\n').filter((l) => l.length >= 16)) assert.not.ok(argv.includes(line), 'a secret value on a command line');
    }
    const value = (id: string) => fs.readFileSync(path.join(f.out, `value-itemgen-dev-${id}`), 'utf8');
    assert.match(value('database-password'), /^[0-9a-f]{64}$/, 'random, hex, no newline');
    assert.is(value('amqp-url'), `amqps://itemgen:${value('rabbitmq-password')}@${dev.network.rabbitmqAddress}:5671`);
    const cert = sh('openssl x509 -noout -text', value('rabbitmq-tls-cert'));
    assert.match(cert, new RegExp(`IP Address:${dev.network.rabbitmqAddress.replaceAll('.', '\\.')}`));
    assert.match(cert, /DNS:rabbitmq\.itemgen\.svc\.cluster\.local/);
    assert.match(cert, /DNS:\*\.rabbitmq-headless\.itemgen\.svc\.cluster\.local/);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'itemgen-tls-'));
    try {
      fs.writeFileSync(path.join(dir, 'ca'), value('rabbitmq-tls-ca'));
      fs.writeFileSync(path.join(dir, 'crt'), value('rabbitmq-tls-cert'));
      assert.match(sh(`openssl verify -CAfile ${dir}/ca ${dir}/crt`), /: OK/, 'the server certificate is the CA\'s');
      fs.writeFileSync(path.join(dir, 'key'), value('rabbitmq-tls-key'));
      assert.is(sh(`openssl x509 -noout -pubkey -in ${dir}/crt`), sh(`openssl pkey -pubout -in ${dir}/key`), 'key and certificate belong together');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }

    const bucket = callsOf(calls, 'gcloud', 'storage', 'buckets', 'create')[0]!.argv;
    assert.ok(bucket.includes('gs://itemgen-dev-tfstate') && bucket.includes('--uniform-bucket-level-access') && bucket.includes('--public-access-prevention'));
    assert.ok(callsOf(calls, 'gcloud', 'storage', 'buckets', 'update')[0]!.argv.includes('--versioning'));
    const bucketGrants = callsOf(calls, 'gcloud', 'storage', 'buckets', 'add-iam-policy-binding').map((c) => `${c.argv.find((a) => a.startsWith('--member='))} ${c.argv.find((a) => a.startsWith('--role='))}`);
    assert.equal(bucketGrants, [`--member=serviceAccount:${TERRAFORM} --role=roles/storage.objectAdmin`, `--member=serviceAccount:${PLANNER} --role=roles/storage.objectViewer`]);
    const secretGrant = callsOf(calls, 'gcloud', 'secrets', 'add-iam-policy-binding');
    assert.equal(secretGrant.map((c) => [c.argv[2], c.argv.find((a) => a.startsWith('--member='))]), [['itemgen-dev-database-password', `--member=serviceAccount:${TERRAFORM}`]]);
    const impersonation = callsOf(calls, 'gcloud', 'iam', 'service-accounts', 'add-iam-policy-binding');
    assert.equal(impersonation.map((c) => `${c.argv.find((a) => a.startsWith('--member='))!.slice(9)} -> ${c.argv[3]}`), [
      `serviceAccount:${deliveryAccountEmail(dev, 'jenkins')} -> ${TERRAFORM}`,
      `serviceAccount:${deliveryAccountEmail(dev, 'review')} -> ${PLANNER}`,
      `user:alice@example.com -> ${TERRAFORM}`,
    ]);
    assert.ok(impersonation.slice(0, 2).every((c) => c.argv.every((a) => !a.startsWith('--condition'))), 'standing grants for the two agents');
    const operator = impersonation[2]!;
    const condition = JSON.parse(Object.values(operator.files)[0]!) as { expression: string };
    const until = /^request\.time < timestamp\("([^"]+)"\)$/.exec(condition.expression)?.[1];
    assert.ok(until, condition.expression);
    const hours = (Date.parse(until) - Date.now()) / 3600e3;
    assert.ok(hours > 23 && hours <= 24, 'the operator\'s grant expires within a day');
    const accounts = callsOf(calls, 'gcloud', 'iam', 'service-accounts', 'create').map((c) => `${c.argv[3]}@${c.argv.find((a) => a.startsWith('--project='))!.slice(10)}`);
    assert.equal(accounts, ['itemgen-terraform@itemgen-dev', 'itemgen-planner@itemgen-dev', 'itemgen-jenkins@itemgen-dev', 'itemgen-review@itemgen-dev']);
  } finally {
    f.cleanup();
  }
});

test('cluster-secrets: the four Secrets from Secret Manager through files; the runners\' URL is the in-cluster plaintext listener', () => {
  const f = makeFakes({
    gcloud: `
  'secrets versions access latest --secret=itemgen-dev-'*) for a in "$@"; do case $a in --out-file=*) printf 'value-of-%s' "\${5#--secret=}" >"\${a#--out-file=}" ;; esac; done ;;
  'run services describe'*) echo https://itemgen-dev-gateway-abc.a.run.app ;;`,
    kubectl: `
  *'create secret generic'*) echo "kind: Secret # $*" ;;`,
  }, { extraEnv, stdinFor: ['kubectl'] });
  try {
    const r = f.run('scripts/ci/cluster-secrets.sh', ['dev']);
    assert.is(r.status, 0, r.stderr);
    const creates = callsOf(f.calls(), 'kubectl').filter((c) => c.argv.includes('create'));
    const byName: Record<string, Call> = Object.fromEntries(creates.map((c) => [c.argv[c.argv.indexOf('generic') + 1]!, c]));
    assert.equal(Object.keys(byName), ['rabbitmq', 'rabbitmq-tls', 'runner', 'keda-rabbitmq']);
    const keys = (name: string) => byName[name]!.argv.filter((a) => a.startsWith('--from-file=')).map((a) => a.slice(12).split('=')[0]);
    assert.equal(keys('rabbitmq-tls'), ['ca.crt', 'tls.crt', 'tls.key']);
    assert.equal(keys('runner'), ['runner-token', 'amqp-url', 'gateway-url']);
    const file = (name: string, key: string) => {
      const arg = byName[name]!.argv.find((a) => a.startsWith(`--from-file=${key}=`))!;
      return byName[name]!.files[arg.slice(`--from-file=${key}=`.length)];
    };
    assert.is(file('runner', 'amqp-url'), 'amqp://itemgen:value-of-itemgen-dev-rabbitmq-password@rabbitmq-amqp.itemgen.svc.cluster.local:5672');
    assert.is(file('runner', 'gateway-url'), 'https://itemgen-dev-gateway-abc.a.run.app');
    assert.is(file('rabbitmq-tls', 'tls.key'), 'value-of-itemgen-dev-rabbitmq-tls-key');
    assert.is(file('keda-rabbitmq', 'management-url'), 'http://itemgen:value-of-itemgen-dev-rabbitmq-password@rabbitmq-management.itemgen.svc.cluster.local:15672');
    assert.not.match(allArgv(f.calls()), /value-of-/, 'no secret value on a command line');
  } finally {
    f.cleanup();
  }
});

test.run();
