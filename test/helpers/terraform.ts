// The Terraform JSON of every infra/ stack, synthesized once per test process (through synthInfra,
// as `npm run synth` does) into a temporary folder, with lookups that tests assert on.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { environments, type Environment } from '../../infra/environments.ts';
import { synthInfra } from '../../infra/main.ts';
import { stackName } from '../../infra/stack.ts';

/** A resource's, data source's or output's body as synthesized. */
export type Block = Record<string, any>;

export interface StackJson {
  resource: Record<string, Record<string, Block>>;
  data?: Record<string, Record<string, Block>>;
  output?: Record<string, Block>;
  variable?: Record<string, Block>;
  provider: Record<string, Block[]>;
  terraform: Block;
}

let synthesized: { names: string[]; stacks: Map<string, StackJson> } | undefined;

export function synth() {
  if (!synthesized) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'itemgen-infra-'));
    try {
      const names = synthInfra(dir);
      const read = (name: string) => JSON.parse(fs.readFileSync(path.join(dir, 'stacks', name, 'cdk.tf.json'), 'utf8'));
      synthesized = { names, stacks: new Map(names.map((name) => [name, read(name) as StackJson])) };
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
  return synthesized;
}

/** Each environment with its synthesized stack. */
export function eachStack(): [Environment, StackJson][] {
  const { stacks } = synth();
  return Object.values(environments).map((env) => {
    const stack = stacks.get(stackName(env));
    if (!stack) throw new Error(`no stack for ${env.name}`);
    return [env, stack];
  });
}

/** Bodies of every resource of a type. */
export function resources(stack: StackJson, type: string): Block[] {
  return Object.values(stack.resource[type] ?? {});
}

/** The body of the one resource of a type whose `field` is `value` (by default the only one of its type). */
export function one(stack: StackJson, type: string, match?: [field: string, value: unknown]): Block {
  const found = resources(stack, type).filter((r) => !match || r[match[0]] === match[1]);
  if (found.length !== 1) throw new Error(`${found.length} ${type} resources match ${JSON.stringify(match)}`);
  return found[0]!;
}

// Fields that name a resource, for references to attributes only Google knows (an account's email,
// a custom role's full name).
const NAME_FIELDS = ['account_id', 'role_id', 'secret_id', 'repository_id', 'name'];

/**
 * Replaces each `${type.name.attribute}` reference by the attribute's synthesized value, or by the
 * referred resource's own name (account id, role id, …) when the attribute is computed by Google.
 * References to data sources and functions are left as they are.
 */
export function resolve(stack: StackJson, value: string): string {
  return value.replace(/\$\{(google_[a-z0-9_]+)\.([A-Za-z0-9_-]+)\.([a-z_]+)\}/g, (whole, type: string, name: string, attribute: string) => {
    const body = stack.resource[type]?.[name];
    if (!body) return whole;
    const direct = body[attribute];
    if (typeof direct === 'string' || typeof direct === 'number') return String(direct);
    const field = NAME_FIELDS.find((f) => typeof body[f] === 'string');
    return field ? String(body[field]) : whole;
  });
}

/** Whether `ip` lies inside `cidr` (IPv4). */
export function inCidr(ip: string, cidr: string): boolean {
  const [base, bits] = cidr.split('/');
  const mask = Number(bits) === 0 ? 0 : (~0 << (32 - Number(bits))) >>> 0;
  return ((ipNumber(ip) & mask) >>> 0) === ((ipNumber(base!) & mask) >>> 0);
}

export function cidrsOverlap(a: string, b: string): boolean {
  return inCidr(a.split('/')[0]!, b) || inCidr(b.split('/')[0]!, a);
}

function ipNumber(ip: string): number {
  return ip.split('.').reduce((n, octet) => ((n << 8) | Number(octet)) >>> 0, 0);
}
