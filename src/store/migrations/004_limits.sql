-- Limits per key, shared by every gateway instance (docs/architecture.md, decision 9).

-- Compute budget: what a generation costs to run (src/core/request.ts generationCost), and per
-- key the cost of its unfinished ones, kept by the same trigger as their count. A key's cap on it;
-- NULL: the gateway's default (DEFAULT_MAX_UNFINISHED_COST).
ALTER TABLE generations ADD COLUMN cost integer NOT NULL DEFAULT 0;
ALTER TABLE api_key_usage ADD COLUMN unfinished_cost bigint NOT NULL DEFAULT 0;
ALTER TABLE api_keys ADD COLUMN max_unfinished_cost bigint CHECK (max_unfinished_cost > 0);

CREATE OR REPLACE FUNCTION generations_count_unfinished() RETURNS trigger LANGUAGE plpgsql AS $$
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
  INSERT INTO api_key_usage AS u (api_key_id, slot, unfinished, unfinished_cost)
  VALUES (NEW.api_key_id, pg_backend_pid() % 64, delta, delta * NEW.cost)
  ON CONFLICT (api_key_id, slot) DO UPDATE
    SET unfinished = u.unfinished + delta, unfinished_cost = u.unfinished_cost + delta * NEW.cost;
  RETURN NULL;
END
$$;

-- Rate limits: token buckets ("submit:<key>", "request:<key>", "address:<ip>"). A gateway takes a
-- few tokens at a time and spends them itself (src/gateway/rate-limit.ts), so a bucket row is
-- written once per few requests, not once per request.
CREATE TABLE rate_buckets (
  bucket       text PRIMARY KEY,
  tokens       double precision NOT NULL,
  refreshed_at timestamptz NOT NULL
);

-- Refills the bucket for the time since its last use (a new one starts full), then takes up to
-- `want` whole tokens. Returns how many it took and what is left.
CREATE FUNCTION take_rate_tokens(
  p_bucket text, p_capacity double precision, p_per_second double precision, p_want integer,
  OUT granted integer, OUT tokens_left double precision)
LANGUAGE plpgsql AS $$
DECLARE
  stamp timestamptz := clock_timestamp();
  available double precision;
BEGIN
  INSERT INTO rate_buckets AS b (bucket, tokens, refreshed_at) VALUES (p_bucket, p_capacity, stamp)
  ON CONFLICT (bucket) DO UPDATE
    SET tokens = least(p_capacity, b.tokens + p_per_second * greatest(0, extract(epoch FROM stamp - b.refreshed_at))),
        refreshed_at = stamp
  RETURNING b.tokens INTO available;
  granted := least(p_want, floor(available))::integer;
  tokens_left := available - granted;
  UPDATE rate_buckets SET tokens = tokens_left WHERE bucket = p_bucket;
END
$$;
