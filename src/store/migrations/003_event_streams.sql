-- Event streams held open, per key, for the cap on them that every gateway instance enforces.
-- Each instance renews its own streams' rows every keep-alive interval; a row whose instance died
-- runs out by itself.
CREATE TABLE event_streams (
  id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  api_key_id uuid NOT NULL,
  expires_at timestamptz NOT NULL
);
CREATE INDEX event_streams_by_key ON event_streams (api_key_id, expires_at);

-- GET /v1/events reads a key's unfinished generations and those finished since a point in time.
-- Neither index holds a column a progress report changes, so those stay heap-only updates.
CREATE INDEX generations_unfinished_by_owner ON generations (api_key_id) WHERE status IN ('pending', 'processing');
CREATE INDEX generations_finished_by_owner ON generations (api_key_id, finished_at) WHERE finished_at IS NOT NULL;

-- The announcement names the owner too, for the stream of all of a key's generations. Readers of
-- the old payload take its first word, which is unchanged.
CREATE OR REPLACE FUNCTION generations_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('itemgen_generation_changed', NEW.id::text || ' ' || NEW.version::text || ' ' || NEW.api_key_id::text);
  RETURN NULL;
END
$$;
