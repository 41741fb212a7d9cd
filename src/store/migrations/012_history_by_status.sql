-- A key's history by status (GET /v1/generations?status=…, docs/architecture.md, decision 18): a
-- page is the next entries of one (key, status) range, newest first, however many of the key's
-- generations have other statuses. generations_by_owner (api_key_id, seq) serves the unfiltered
-- list; filtering it by status read the key's whole history when the status was rare.
--
-- Built in the migration's transaction: it blocks writes (never reads) on generations while it
-- builds, about 0.3 s per 100k rows measured. For a table far larger, build it beforehand with
-- CREATE INDEX CONCURRENTLY and this same definition; the migration then keeps it. A concurrent
-- build that failed leaves an invalid index of this name, which IF NOT EXISTS would keep: it is
-- dropped and built again here.
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
             WHERE c.relname = 'generations_history_by_status' AND c.relnamespace = current_schema()::regnamespace
               AND NOT i.indisvalid) THEN
    DROP INDEX generations_history_by_status;
  END IF;
END
$$;

-- It holds no column a progress report changes (step, lease, version), so those can stay heap-only
-- updates; a transition changes status, which other indexes hold already, so it was never
-- heap-only and now writes one index entry more.
CREATE INDEX IF NOT EXISTS generations_history_by_status ON generations (api_key_id, status, seq)
  WHERE deleted_at IS NULL;
