-- Webhooks (docs/architecture.md, decision on webhooks): where a generation's events go, the
-- per-key signing secret, the outbox of messages to deliver and the record of every attempt.

-- Null when the generation has no webhook. Events: a non-empty subset of start, progress, completed.
ALTER TABLE generations ADD COLUMN webhook_url text CHECK (length(webhook_url) <= 2048);
ALTER TABLE generations ADD COLUMN webhook_events text[];

-- `whsec_` + base64 of 24 random bytes (the Standard Webhooks format), set by the gateway the first
-- time the key's secret is asked for or needed (src/store/sql/ensureWebhookSecret.ts), the
-- anonymous owner's included. Never changed afterwards.
ALTER TABLE api_keys ADD COLUMN webhook_secret text;

-- One row per message still to deliver. `id` is the message's webhook-id, the same for every
-- attempt at it. Written by the trigger below in the transaction of the change that causes it.
CREATE TABLE webhook_outbox (
  id              text PRIMARY KEY,
  generation_id   uuid NOT NULL,
  event           text NOT NULL CHECK (event IN ('start', 'progress', 'completed')),
  next_attempt_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  -- Attempts made so far (counted when one is leased).
  attempts        integer NOT NULL DEFAULT 0,
  -- While set and in the future, one gateway instance is delivering it.
  lease_until     timestamptz,
  -- Bumped when a newer step refreshes a progress message: a delivery of an older revision does
  -- not clear it, so the newest step is always sent.
  revision        integer NOT NULL DEFAULT 0,
  -- Start of the retry window.
  created_at      timestamptz NOT NULL DEFAULT clock_timestamp()
);
-- Progress is coalesced: at most one message per generation, refreshed by each step.
CREATE UNIQUE INDEX webhook_outbox_progress ON webhook_outbox (generation_id) WHERE event = 'progress';
CREATE INDEX webhook_outbox_due ON webhook_outbox (next_attempt_at);

-- One row per attempt, for GET /v1/generations/{id}/webhook-deliveries.
CREATE TABLE webhook_deliveries (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  message_id    text NOT NULL,
  generation_id uuid NOT NULL,
  event         text NOT NULL,
  url           text NOT NULL,
  attempt       integer NOT NULL,
  attempted_at  timestamptz NOT NULL,
  -- Null when no answer came (refused, network error, timeout).
  status_code   integer,
  duration_ms   integer NOT NULL,
  error         text,
  will_retry    boolean NOT NULL
);
CREATE INDEX webhook_deliveries_by_generation ON webhook_deliveries (generation_id, attempted_at DESC);

-- The events of a state change, written with it (no dual write): pending → processing is `start`;
-- a step while processing refreshes the one `progress` message; reaching completed, failed or
-- canceled is `completed` (and a progress message not yet sent is dropped: it would only repeat it).
CREATE FUNCTION generations_webhook_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.status = 'pending' AND NEW.status = 'processing' THEN
    IF 'start' = ANY (NEW.webhook_events) THEN
      INSERT INTO webhook_outbox (id, generation_id, event) VALUES ('msg_' || gen_random_uuid(), NEW.id, 'start');
    END IF;
  ELSIF NEW.status IN ('completed', 'failed', 'canceled') AND OLD.status IN ('pending', 'processing') THEN
    DELETE FROM webhook_outbox WHERE generation_id = NEW.id AND event = 'progress' AND (lease_until IS NULL OR lease_until < clock_timestamp());
    IF 'completed' = ANY (NEW.webhook_events) THEN
      INSERT INTO webhook_outbox (id, generation_id, event) VALUES ('msg_' || gen_random_uuid(), NEW.id, 'completed');
    END IF;
  ELSIF NEW.status = 'processing' AND OLD.status = 'processing' AND 'progress' = ANY (NEW.webhook_events) THEN
    INSERT INTO webhook_outbox AS o (id, generation_id, event) VALUES ('msg_' || gen_random_uuid(), NEW.id, 'progress')
    ON CONFLICT (generation_id) WHERE event = 'progress' DO UPDATE SET revision = o.revision + 1;
  END IF;
  RETURN NULL;
END
$$;

CREATE TRIGGER generations_webhooks AFTER UPDATE OF status, step ON generations
  FOR EACH ROW WHEN (NEW.webhook_url IS NOT NULL AND (OLD.status IS DISTINCT FROM NEW.status OR OLD.step IS DISTINCT FROM NEW.step))
  EXECUTE FUNCTION generations_webhook_events();

-- Wakes the deliverers of every gateway instance when a message is written or made due.
CREATE FUNCTION webhook_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('itemgen_webhook_due', '');
  RETURN NULL;
END
$$;

CREATE TRIGGER webhook_outbox_written AFTER INSERT ON webhook_outbox
  FOR EACH STATEMENT EXECUTE FUNCTION webhook_outbox_notify();
CREATE TRIGGER webhook_outbox_due_changed AFTER UPDATE OF next_attempt_at ON webhook_outbox
  FOR EACH STATEMENT EXECUTE FUNCTION webhook_outbox_notify();
