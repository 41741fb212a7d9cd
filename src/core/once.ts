// Settle-once: a delivery can be acked, requeued or rejected, and whichever of these comes first is
// the answer. The queues hand the same guard to all three, so a handler that (say) rejects and then,
// through a shared error path, requeues too, still settles its message exactly once.

/**
 * A guard for a group of actions: wrap each action with it, and only the first call of any of
 * them runs; later calls of any of them (the same one included) do nothing.
 */
export function settleOnce(): (action: () => void) => () => void {
  let settled = false;
  return (action) => () => {
    if (settled) return;
    settled = true;
    action();
  };
}
