-- PostgreSQL only, applied before the numbered migrations (and again, idempotently, on each upgrade):
-- the few DuckDB functions the core's queries use, so one SQL text serves both backends.
CREATE OR REPLACE FUNCTION json_extract_string(doc jsonb, path text) RETURNS text
  LANGUAGE sql IMMUTABLE AS $$ SELECT doc #>> string_to_array(substr(path, 3), '.') $$;
CREATE OR REPLACE FUNCTION json_extract(doc jsonb, path text) RETURNS jsonb
  LANGUAGE sql IMMUTABLE AS $$ SELECT doc #> string_to_array(substr(path, 3), '.') $$;
-- RFC 7396 at the top level (what the core patches): keys of the patch win, a null removes the key.
CREATE OR REPLACE FUNCTION json_merge_patch(target jsonb, patch jsonb) RETURNS jsonb
  LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN jsonb_typeof(patch) <> 'object' THEN patch ELSE
      (CASE WHEN jsonb_typeof(target) = 'object' THEN target ELSE '{}'::jsonb END || patch)
      - coalesce((SELECT array_agg(k) FROM jsonb_each(patch) AS e(k, v) WHERE v = 'null'::jsonb), '{}'::text[])
    END $$;
CREATE OR REPLACE FUNCTION list_value(VARIADIC items text[]) RETURNS text[]
  LANGUAGE sql IMMUTABLE AS $$ SELECT items $$;
CREATE OR REPLACE FUNCTION list_position(items text[], item text) RETURNS integer
  LANGUAGE sql IMMUTABLE AS $$ SELECT array_position(items, item) $$;
CREATE OR REPLACE FUNCTION list_contains(items text[], item text) RETURNS boolean
  LANGUAGE sql IMMUTABLE AS $$ SELECT item = ANY(items) $$;
CREATE OR REPLACE FUNCTION masque_any_value_step(state anyelement, value anyelement) RETURNS anyelement
  LANGUAGE sql IMMUTABLE AS $$ SELECT coalesce(state, value) $$;
CREATE OR REPLACE AGGREGATE any_value(anyelement) (SFUNC = masque_any_value_step, STYPE = anyelement);
