-- Group commit on submit (docs/architecture.md, decision 17): a submit statement inserts many
-- generations at once, and the cap it checks is one locked row per key instead of a sum of slots.
--
-- One counter row per key (slot 0). The 64 slots spread concurrent single-row submits of one key
-- over rows, at the price of a 64-row sum in every cap check and a cap that concurrent submits
-- could pass. Batched submits write the counter once per statement, so one row no longer queues
-- them; the submit locks it (FOR UPDATE), which reads the newest committed count and makes the
-- cap exact however many statements or gateway instances run at once.
WITH spread AS (DELETE FROM api_key_usage WHERE slot <> 0 RETURNING api_key_id, unfinished, unfinished_cost)
INSERT INTO api_key_usage AS u (api_key_id, slot, unfinished, unfinished_cost)
SELECT api_key_id, 0, sum(unfinished)::integer, sum(unfinished_cost) FROM spread GROUP BY api_key_id
ON CONFLICT (api_key_id, slot) DO UPDATE
  SET unfinished = u.unfinished + EXCLUDED.unfinished, unfinished_cost = u.unfinished_cost + EXCLUDED.unfinished_cost;

-- Every key has its row before its first submit, so the submit always finds one to lock.
INSERT INTO api_key_usage (api_key_id, slot, unfinished, unfinished_cost)
SELECT id, 0, 0, 0 FROM api_keys ON CONFLICT DO NOTHING;

CREATE FUNCTION api_keys_add_usage() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  -- A first key takes over the anonymous owner's row in the same statement (insertApiKey).
  INSERT INTO api_key_usage (api_key_id, slot, unfinished, unfinished_cost) VALUES (NEW.id, 0, 0, 0)
  ON CONFLICT DO NOTHING;
  RETURN NULL;
END
$$;

CREATE TRIGGER api_keys_usage_added AFTER INSERT ON api_keys
  FOR EACH ROW EXECUTE FUNCTION api_keys_add_usage();

-- Inserts are counted once per statement and key, from the statement's new rows: the per-row
-- trigger cost a quarter of a single-row submit, and 64 upserts of one row in a batched one.
DROP TRIGGER generations_unfinished_inserted ON generations;

CREATE FUNCTION generations_count_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO api_key_usage AS u (api_key_id, slot, unfinished, unfinished_cost)
  SELECT api_key_id, 0, count(*), sum(cost) FROM added GROUP BY api_key_id
  ON CONFLICT (api_key_id, slot) DO UPDATE
    SET unfinished = u.unfinished + EXCLUDED.unfinished, unfinished_cost = u.unfinished_cost + EXCLUDED.unfinished_cost;
  RETURN NULL;
END
$$;

CREATE TRIGGER generations_unfinished_inserted AFTER INSERT ON generations
  REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION generations_count_inserted();

-- Finishing still counts per row (transitions are single-row statements), now on slot 0.
CREATE OR REPLACE FUNCTION generations_count_unfinished() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.status IN ('pending', 'processing') AND NEW.status NOT IN ('pending', 'processing') THEN
    INSERT INTO api_key_usage AS u (api_key_id, slot, unfinished, unfinished_cost)
    VALUES (NEW.api_key_id, 0, -1, -NEW.cost)
    ON CONFLICT (api_key_id, slot) DO UPDATE
      SET unfinished = u.unfinished - 1, unfinished_cost = u.unfinished_cost - NEW.cost;
  END IF;
  RETURN NULL;
END
$$;
