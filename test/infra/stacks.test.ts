import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { environments } from '../../infra/environments.ts';
import { eachStack, synth } from '../helpers/terraform.ts';

test('one stack per environment, named itemgen-<env>', () => {
  assert.equal(synth().names, ['itemgen-dev', 'itemgen-prod']);
  assert.equal(eachStack().map(([env]) => env.name), Object.keys(environments));
});

test('each stack configures the Google provider for its own project and region', () => {
  for (const [env, stack] of eachStack()) {
    assert.equal(stack.provider.google?.map((p) => [p.project, p.region]), [[env.project, env.region]]);
  }
});

test('each stack requires a Terraform that sends write-only arguments (1.11 or later)', () => {
  for (const [, stack] of eachStack()) assert.is(stack.terraform.required_version, '>= 1.11');
});

test('infra/ imports provider submodules only, never the whole provider package', () => {
  const dir = path.resolve(import.meta.dirname, '../../infra');
  for (const file of fs.readdirSync(dir).filter((f) => f.endsWith('.ts'))) {
    const source = fs.readFileSync(path.join(dir, file), 'utf8');
    const imports = [...source.matchAll(/from '(@cdktf\/provider-google[^']*)'/g)].map((m) => m[1]!);
    for (const specifier of imports) assert.match(specifier, /^@cdktf\/provider-google\/lib\/[a-z0-9-]+\/index\.js$/, file);
  }
});

test.run();
