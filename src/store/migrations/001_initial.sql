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
  seq              bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
  api_key_id       uuid NOT NULL REFERENCES api_keys (id),
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
  dispatched_at    timestamptz,
  dispatch_lease_until timestamptz,
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
CREATE INDEX generations_unfinished_by_owner ON generations (api_key_id)
  WHERE status IN ('pending', 'processing');
CREATE INDEX generations_pending ON generations (seq) WHERE status = 'pending';
CREATE INDEX generations_undispatched ON generations (seq)
  WHERE status = 'pending' AND dispatched_at IS NULL;

-- Every versioned change is announced, so any gateway instance can push it to its SSE clients.
CREATE FUNCTION generations_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('itemgen_generation_changed', NEW.id::text || ' ' || NEW.version::text);
  RETURN NULL;
END
$$;

CREATE TRIGGER generations_changed AFTER UPDATE ON generations
  FOR EACH ROW WHEN (OLD.version <> NEW.version) EXECUTE FUNCTION generations_notify();
