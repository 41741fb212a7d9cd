-- Where a generation's trace continues (docs/architecture.md, decision 15): the W3C traceparent of
-- the submit request, kept with the row because the work on it happens later and elsewhere (the
-- dispatcher's publish, a sweep's republish, webhook deliveries) and must join the submit's trace.
-- Null when traces were off at submit.
ALTER TABLE generations ADD COLUMN traceparent text;
