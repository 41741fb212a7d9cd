// Preloaded (`node --import tsx --import ./scripts/chaos/orphan-guard.ts src/…/main.ts`) into the
// gateway and runner processes the chaos harness starts. The harness holds each child's stdin
// open; end of file means the harness died without stopping us (SIGKILL, a crash), so this process
// stops itself the way an operator would (SIGTERM: the entry point's own clean shutdown), then
// dies for good if that takes too long. It changes nothing else about the entry point.
process.stdin.on('end', () => {
  process.kill(process.pid, 'SIGTERM');
  setTimeout(() => process.kill(process.pid, 'SIGKILL'), 10_000).unref();
});
process.stdin.resume();
// stdin must not keep the process alive by itself: the entry point decides when it is done.
(process.stdin as unknown as { unref?: () => void }).unref?.();
