import { runKeysCli } from '../../src/gateway/keys-cli.ts';
await runKeysCli(['create','--name','diag','--max-unfinished','1000000'], (l) => console.log(l), { DATABASE_URL: process.argv[2] });
