// Prometheus' own checker, run on files written for one call: the alert rules and the dashboard's
// queries are checked by what Prometheus itself parses (Debian's `prometheus` package;
// scripts/test.sh installs it where missing).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const PROMTOOL = '/usr/bin/promtool';

/** Writes `files` (name → text) into a fresh folder, runs promtool with `args(dir)`, removes the folder. */
export function promtool(files: Record<string, string>, args: (dir: string) => string[]): { status: number | null; output: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'itemgen-promtool-'));
  try {
    for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text);
    const run = spawnSync(PROMTOOL, args(dir), { encoding: 'utf8' });
    if (run.error) throw run.error;
    return { status: run.status, output: `${run.stdout}${run.stderr}` };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
