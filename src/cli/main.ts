// `itemgen`: the command line of the itemgen API, built on the SDK (src/client/) alone.
// Usage: `itemgen --help`. Exit codes: 0 done, 1 the generation failed or the API refused, 2 bad input.
import { run } from './commands.ts';

process.exitCode = await run(process.argv.slice(2), {
  env: process.env,
  stdout: process.stdout,
  stderr: process.stderr,
});
