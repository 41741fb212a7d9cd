// Creates a scheduler by the name the API uses, from a diffusers scheduler_config.json. A model
// folder's config (usually PNDM's for SD 1.5) carries the noise schedule; the request picks the
// algorithm, as diffusers' `Scheduler.from_config(pipe.scheduler.config)` does.
import { createDdimScheduler } from './ddim.ts';
import { createDpmpp2mScheduler } from './dpmpp-2m.ts';
import { createEulerAncestralScheduler } from './euler-ancestral.ts';
import { createEulerScheduler } from './euler.ts';
import { createLcmScheduler } from './lcm.ts';
import { createPndmScheduler } from './pndm.ts';
import type { Scheduler, SchedulerConfig, SchedulerName } from './types.ts';

export { SCHEDULER_NAMES, type Scheduler, type SchedulerConfig, type SchedulerName } from './types.ts';

const FACTORIES: Record<SchedulerName, (config: SchedulerConfig) => Scheduler> = {
  ddim: createDdimScheduler,
  pndm: createPndmScheduler,
  euler: createEulerScheduler,
  euler_a: createEulerAncestralScheduler,
  dpmpp_2m: createDpmpp2mScheduler,
  lcm: createLcmScheduler,
};

export function createScheduler(name: SchedulerName, config: SchedulerConfig): Scheduler {
  const factory = FACTORIES[name];
  if (!factory) throw new Error(`unknown scheduler ${JSON.stringify(name)}`);
  return factory(config);
}
