// Synthesizes the Kubernetes manifests of every environment into `<outdir>/<env>/itemgen.yaml`, and
// its alert rules (alerts.ts, applied as GlobalRules) as a plain Prometheus rules file into
// `<outdir>/prometheus/<env>.rules.yaml`, for promtool and any other Prometheus; not in the
// environment's folder, which CI applies whole
// (`npm run synth` writes k8s/dist/, which is committed so every change shows as a manifest diff;
// a test fails when it is stale). Each environment's folder is emptied first, so a renamed or
// removed object never leaves an old file behind. Output is a pure function of the sources: names
// are explicit, nothing depends on time or on the machine.
import fs from 'node:fs';
import path from 'node:path';
import { App } from 'cdk8s';
import { environments } from '../infra/environments.ts';
import { rulesFile } from './alerts.ts';
import { ItemgenChart } from './chart.ts';

/** The runner image is tagged with the product's version, so a release is a reviewed manifest change. */
function runnerImageTag(): string {
  const pkg = JSON.parse(fs.readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

/** Writes each environment's manifests and returns the paths of the files written. */
export function synthK8s(outdir: string): string[] {
  const tag = runnerImageTag();
  const written: string[] = [];
  for (const env of Object.values(environments)) {
    const dir = path.join(outdir, env.name);
    fs.rmSync(dir, { recursive: true, force: true });
    const app = new App({ outdir: dir, outputFileExtension: '.yaml' });
    new ItemgenChart(app, 'itemgen', { env, runnerImageTag: tag });
    app.synth();
    written.push(...fs.readdirSync(dir).sort().map((file) => path.join(dir, file)));
  }
  const rulesDir = path.join(outdir, 'prometheus');
  fs.rmSync(rulesDir, { recursive: true, force: true });
  fs.mkdirSync(rulesDir, { recursive: true });
  for (const env of Object.values(environments)) {
    const file = path.join(rulesDir, `${env.name}.rules.yaml`);
    fs.writeFileSync(file, rulesFile(env));
    written.push(file);
  }
  return written;
}
