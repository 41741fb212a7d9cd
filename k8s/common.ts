// What the constructs of k8s/ share: the labels pods are selected by, the container security
// context the namespace's `restricted` Pod Security level demands, and the conversion of the
// quantities written in infra/environments.ts into cdk8s-plus types.
import { Size } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';

/** The label every pod of one component carries; Services, NetworkPolicies and PDBs select on it. */
const NAME_LABEL = 'app.kubernetes.io/name';

export function selectorLabels(component: string): Record<string, string> {
  return { [NAME_LABEL]: component };
}

/**
 * Pod Security `restricted`: no root, no privilege escalation, no capabilities, the runtime's
 * seccomp profile. The user is given as a number so the kubelet can check it is not root.
 */
export function restrictedContainer(uid: number, readOnlyRootFilesystem: boolean): kplus.ContainerSecurityContextProps {
  return {
    ensureNonRoot: true,
    user: uid,
    group: uid,
    privileged: false,
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem,
    capabilities: { drop: [kplus.Capability.ALL] },
    seccompProfile: { type: kplus.SeccompProfileType.RUNTIME_DEFAULT },
  };
}

/** `500m` or `2` (cores) as a cdk8s-plus Cpu. */
export function cpu(quantity: string): kplus.Cpu {
  const m = /^(\d+)(m?)$/.exec(quantity);
  if (!m) throw new Error(`unsupported CPU quantity ${quantity} (write 500m or 2)`);
  return m[2] === 'm' ? kplus.Cpu.millis(Number(m[1])) : kplus.Cpu.units(Number(m[1]));
}

/** `512Mi` or `2Gi` as a cdk8s Size. */
export function memory(quantity: string): Size {
  return Size.mebibytes(mebibytes(quantity));
}

export function mebibytes(quantity: string): number {
  const m = /^(\d+)(Mi|Gi)$/.exec(quantity);
  if (!m) throw new Error(`unsupported memory quantity ${quantity} (write 512Mi or 2Gi)`);
  return Number(m[1]) * (m[2] === 'Gi' ? 1024 : 1);
}
