-- Trusted definitions: the content each name@version was first worn with (trust on first use), so a
-- different file claiming the same name@version later is refused instead of minting its role.
CREATE TABLE trusted_definitions (
  masque        TEXT NOT NULL,
  version       TEXT NOT NULL,
  content_hash  TEXT NOT NULL,
  source_path   TEXT NOT NULL,
  pinned_by     TEXT,
  pinned_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
  via           TEXT NOT NULL,
  PRIMARY KEY (masque, version)
);
COMMENT ON TABLE trusted_definitions IS 'One row per name@version: the definition sessions may be granted from; changed only by an admin re-pin or by Masque''s own score write-back (history in definition_pinned events)';
COMMENT ON COLUMN trusted_definitions.masque IS 'Registry key (case-folded name) of the masque';
COMMENT ON COLUMN trusted_definitions.version IS 'Exact version pinned';
COMMENT ON COLUMN trusted_definitions.content_hash IS 'SHA-256 of the file bytes (of the flattened definition for a masque with extends)';
COMMENT ON COLUMN trusted_definitions.source_path IS 'File that was pinned, as resolved on the search path';
COMMENT ON COLUMN trusted_definitions.pinned_by IS 'Actor whose assume registered it, or the admin who re-pinned it';
COMMENT ON COLUMN trusted_definitions.pinned_at IS 'When it was (re-)pinned';
COMMENT ON COLUMN trusted_definitions.via IS 'first_use (the first granted assume), admin (masque registry pin) or write_back (score --write-back moved a pinned file''s pin along)';
