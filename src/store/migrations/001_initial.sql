-- Jobs ("generations") and the API keys that own them.

CREATE TABLE api_keys (
  id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name           text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
  -- sha256 of the key, hex; keys are 256 random bits so a fast hash is enough.
  key_hash       text NOT NULL UNIQUE,
  prefix         text NOT NULL,
  max_unfinished integer NOT NULL CHECK (max_unfinished > 0),
  created_at     timestamptz NOT NULL DEFAULT now(),
  revoked_at     timestamptz
);

-- The owner of generations submitted while the gateway runs open (loopback, no keys configured).
-- Its hash matches no key, so it can never be presented.
INSERT INTO api_keys (id, name, key_hash, prefix, max_unfinished)
VALUES ('00000000-0000-0000-0000-000000000000', 'anonymous (open embedded mode)', '-', '-', 1000);

CREATE TABLE generations (
  id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  -- Submission order: list cursor, queue position, dispatch order.
  seq              bigint GENERATED ALWAYS AS IDENTITY,
  -- No foreign key: every insert would share-lock the one api_keys row of its owner, and under
  -- concurrent submits of one key those locks serialize (multixacts). Keys are never deleted
  -- (only revoked) and the gateway inserts only the id it has just authenticated.
  api_key_id       uuid NOT NULL,
  idempotency_key  text CHECK (length(idempotency_key) BETWEEN 1 AND 255),
  request_hash     text,
  params           jsonb NOT NULL,
  status           text NOT NULL DEFAULT 'pending'
                   CHECK (status IN ('pending', 'processing', 'completed', 'failed', 'canceled')),
  -- Bumped by every transition and progress report: the SSE event id.
  version          integer NOT NULL DEFAULT 1,
  step             integer NOT NULL DEFAULT 0,
  total_steps      integer NOT NULL,
  -- Claim count; a runner's reports must carry the attempt it claimed, so a runner whose lease
  -- expired and was re-claimed cannot report over its successor.
  attempts         integer NOT NULL DEFAULT 0,
  runner_id        text,
  lease_expires_at timestamptz,
  error_code       text,
  error_message    text,
  images           jsonb,
  created_at       timestamptz NOT NULL DEFAULT now(),
  started_at       timestamptz,
  finished_at      timestamptz,
  updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX generations_idempotency ON generations (api_key_id, idempotency_key)
  WHERE idempotency_key IS NOT NULL;
CREATE INDEX generations_by_owner ON generations (api_key_id, seq);
CREATE INDEX generations_pending ON generations (seq) WHERE status = 'pending';

-- The transactional outbox: a row per generation whose message the broker has not confirmed yet,
-- written by the same statement that inserts the generation. Kept apart from `generations` so
-- dispatch bookkeeping never rewrites the wide, heavily indexed job row.
-- It only ever holds the jobs in flight to the broker, so it needs no index but its key.
CREATE TABLE dispatch_outbox (
  generation_id uuid PRIMARY KEY,
  created_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
  -- While set and in the future, one dispatcher is publishing it.
  lease_until   timestamptz
);

-- Unfinished generations per key, for the cap checked at submit, so the check costs the same with
-- ten or ten thousand jobs waiting. Spread over slots (by backend) so concurrent submits of one key
-- do not queue on one counter row; the count is their sum.
CREATE TABLE api_key_usage (
  api_key_id uuid NOT NULL,
  slot       smallint NOT NULL,
  unfinished integer NOT NULL,
  PRIMARY KEY (api_key_id, slot)
);

CREATE FUNCTION generations_count_unfinished() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  delta integer;
BEGIN
  IF TG_OP = 'INSERT' THEN
    delta := 1;
  ELSIF OLD.status IN ('pending', 'processing') AND NEW.status NOT IN ('pending', 'processing') THEN
    delta := -1;
  ELSE
    RETURN NULL;
  END IF;
  INSERT INTO api_key_usage AS u (api_key_id, slot, unfinished)
  VALUES (NEW.api_key_id, pg_backend_pid() % 64, delta)
  ON CONFLICT (api_key_id, slot) DO UPDATE SET unfinished = u.unfinished + delta;
  RETURN NULL;
END
$$;

CREATE TRIGGER generations_unfinished_inserted AFTER INSERT ON generations
  FOR EACH ROW EXECUTE FUNCTION generations_count_unfinished();
CREATE TRIGGER generations_unfinished_finished AFTER UPDATE OF status ON generations
  FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION generations_count_unfinished();

-- Every versioned change is announced, so any gateway instance can push it to its SSE clients.
CREATE FUNCTION generations_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('itemgen_generation_changed', NEW.id::text || ' ' || NEW.version::text);
  RETURN NULL;
END
$$;

CREATE TRIGGER generations_changed AFTER UPDATE ON generations
  FOR EACH ROW WHEN (OLD.version <> NEW.version) EXECUTE FUNCTION generations_notify();
