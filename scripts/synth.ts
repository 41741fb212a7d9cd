// `npm run synth`: writes the Kubernetes manifests of every environment to `k8s/dist/<env>/`
// (committed, reviewed in pull requests) and the Terraform JSON to
// `infra/cdktf.out/stacks/<stack>/cdk.tf.json` (read by `terraform plan`).
import { synthInfra } from '../infra/main.ts';
import { synthK8s } from '../k8s/main.ts';

const manifests = synthK8s('k8s/dist');
const stacks = synthInfra('infra/cdktf.out');
console.log(`k8s: ${manifests.join(', ')}`);
console.log(`terraform stacks: ${stacks.join(', ')}`);
