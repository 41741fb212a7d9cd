-- What ran, live previews and the served models (issue 12).

-- The runner's account of a completed generation: effective prompt and negative prompt, model
-- (name, hash) and execution provider; and where its time went (ms per stage). NULL for rows
-- completed before, or by a runner that does not say.
ALTER TABLE generations ADD COLUMN ran jsonb;
ALTER TABLE generations ADD COLUMN timings jsonb;
-- The step of the latest preview while processing, set by the same statement that stores the
-- preview, so a read of the row knows without reading the bytes.
ALTER TABLE generations ADD COLUMN preview_step integer;

-- The latest preview of each processing generation, one row each (a progress report overwrites
-- it). Kept out of the change announcement (NOTIFY payloads stop at 8000 bytes); streams read it.
CREATE TABLE generation_previews (
  generation_id uuid PRIMARY KEY REFERENCES generations (id) ON DELETE CASCADE,
  step          integer NOT NULL,
  png           bytea NOT NULL,
  updated_at    timestamptz NOT NULL
);

-- A generation that ends (completed, failed, canceled, by whichever statement) loses its preview,
-- and so does one claimed again: the new attempt starts from fresh noise.
CREATE FUNCTION generations_drop_preview() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM generation_previews WHERE generation_id = NEW.id;
  NEW.preview_step := NULL;
  RETURN NEW;
END
$$;
CREATE TRIGGER generations_drop_preview BEFORE UPDATE OF status, attempts ON generations
  FOR EACH ROW WHEN (NEW.status IN ('completed', 'failed', 'canceled') AND OLD.status IS DISTINCT FROM NEW.status
                     OR NEW.attempts IS DISTINCT FROM OLD.attempts)
  EXECUTE FUNCTION generations_drop_preview();

-- The models runners serve, as each registers its own at start (the gateway loads none).
CREATE TABLE models (
  name         text PRIMARY KEY,
  hash         text NOT NULL,
  description  jsonb NOT NULL,
  last_seen_at timestamptz NOT NULL
);
