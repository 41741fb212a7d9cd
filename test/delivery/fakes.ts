// Fake gcloud, kubectl, terraform, docker (and friends) for the CI scripts' tests: what cannot run
// here. Each fake records its argv, the identity variables and the files it was handed to a JSON
// log, then answers with the bash `case` branches a test gives it (its canned output).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** One recorded call. `files`: contents of the files named by --data-file= / --from-file=k= / --condition-from-file=. */
export interface Call {
  tool: string;
  argv: string[];
  env: Record<string, string>;
  files: Record<string, string>;
  stdin?: string;
}

const RECORDED_ENV = [
  'CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT',
  'GOOGLE_IMPERSONATE_SERVICE_ACCOUNT',
  'GOOGLE_APPLICATION_CREDENTIALS',
  'TF_VAR_database_password',
  'TF_VAR_gateway_image',
  'DOCKER_CONFIG',
  'KUBECONFIG',
  'CLOUDSDK_CONFIG',
];

export interface Fakes {
  dir: string;
  out: string;
  calls(): Call[];
  run(script: string, args: string[], env?: Record<string, string>): { status: number | null; stdout: string; stderr: string };
  cleanup(): void;
}

/**
 * `responses`: for each tool, bash `case "$*" in` branches (`pattern) commands ;;`); a call no
 * branch matches succeeds silently. `stdinFor`: tools whose stdin is recorded (docker login).
 */
export function makeFakes(responses: Record<string, string>, opts: { stdinFor?: string[]; extraEnv?: Record<string, string> } = {}): Fakes {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'itemgen-fakes-'));
  const bin = path.join(dir, 'bin');
  const out = path.join(dir, 'ci-out');
  const log = path.join(dir, 'calls.jsonl');
  fs.mkdirSync(bin);
  fs.writeFileSync(log, '');
  const tools = new Set(['gcloud', 'kubectl', 'terraform', 'docker', 'gke-gcloud-auth-plugin', 'curl', ...Object.keys(responses)]);
  for (const tool of tools) {
    const readStdin = opts.stdinFor?.includes(tool) ? 'stdin=$(cat)' : 'stdin=""';
    const script = `#!/usr/bin/env bash
${readStdin}
files='{}'
for a in "$@"; do
  f=''
  case $a in
    --data-file=*) f=\${a#--data-file=} ;;
    --condition-from-file=*) f=\${a#--condition-from-file=} ;;
    --from-file=*=*) f=\${a#--from-file=*=} ;;
  esac
  if [ -n "$f" ] && [ -r "$f" ]; then files=$(jq -c --arg k "$f" --rawfile v "$f" '. + {($k): $v}' <<<"$files"); fi
done
envj=$(jq -nc '$ENV | with_entries(select([.key] | inside(${JSON.stringify(RECORDED_ENV).replaceAll("'", '')})))')
jq -nc --arg tool ${JSON.stringify(tool)} --argjson env "$envj" --argjson files "$files" --arg stdin "$stdin" \\
  '{tool: $tool, argv: $ARGS.positional, env: $env, files: $files, stdin: $stdin}' --args -- "$@" >>${JSON.stringify(log)}
case "$*" in
${responses[tool] ?? ''}
  *) ;;
esac
`;
    fs.writeFileSync(path.join(bin, tool), script, { mode: 0o755 });
  }
  return {
    dir,
    out,
    calls: () => fs.readFileSync(log, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Call),
    run(script, args, env = {}) {
      const clean: Record<string, string> = {};
      for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !RECORDED_ENV.includes(k)) clean[k] = v;
      const r = spawnSync(script, args, {
        encoding: 'utf8',
        env: { ...clean, PATH: `${bin}:${process.env.PATH}`, CI_OUT: out, CI: 'true', IMAGE_TAG: SHA, ...opts.extraEnv, ...env },
      });
      return { status: r.status, stdout: r.stdout, stderr: r.stderr };
    },
    cleanup: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

export const SHA = 'c0ffee0123456789abcdef0123456789abcdef01';
export const digest = (c: string) => `sha256:${c.repeat(64).slice(0, 64)}`;

/** Every argv word of every call, for "this value never reached a command line". */
export const allArgv = (calls: Call[]) => calls.flatMap((c) => c.argv).join('\n');
export const callsOf = (calls: Call[], tool: string, ...prefix: string[]) =>
  calls.filter((c) => c.tool === tool && prefix.every((p, i) => c.argv[i] === p));

/** Runs bash `-c` for small checks (e.g. openssl on a recorded certificate). */
export function sh(command: string, input?: string): string {
  return spawnSync('bash', ['-c', command], { encoding: 'utf8', input }).stdout;
}
