#!/usr/bin/env node
// The `itemgen` command (package.json bin): runs the TypeScript CLI through tsx, a dependency of
// the package, so no build step stands between a checkout and the command.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');
