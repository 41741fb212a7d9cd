// Synthesizes the Terraform JSON of every environment: `<outdir>/stacks/<stack>/cdk.tf.json`, read by
// `terraform plan` in that folder. Pure TypeScript: needs neither a terraform binary nor a network.
// `npm run synth` calls synthInfra; `tsx infra/main.ts` runs it alone.
import { pathToFileURL } from 'node:url';
import { App } from 'cdktf';
import { environments } from './environments.ts';
import { ItemgenStack } from './stack.ts';

export function synthInfra(outdir: string): string[] {
  const app = new App({ outdir });
  const stacks = Object.values(environments).map((env) => new ItemgenStack(app, env));
  app.synth();
  return stacks.map((stack) => stack.node.id);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  console.log(`terraform stacks: ${synthInfra('infra/cdktf.out').join(', ')}`);
}
