-- A processing generation whose lease ran out has lost its runner; the gateway dispatches it again
-- (src/store/sql/redispatchExpiredLeases.ts), once per claim: this records the claim (attempt) it
-- was dispatched again after. Runners therefore drop a message whose job another runner holds
-- instead of holding it until that lease ends.
ALTER TABLE generations ADD COLUMN redispatched_attempt integer;

-- The few processing rows, for that sweep. Only `status` (in the predicate) and `seq` are indexed,
-- so progress reports (lease, step, version) stay heap-only updates.
CREATE INDEX generations_processing ON generations (seq) WHERE status = 'processing';
