-- Why each person is who she is, and what people decided about it: the merges that built her
-- with their evidence, the decisions a person made (keep two records apart, or together),
-- the identifiers too widely shared to merge on, and the pairs that might be one person,
-- left for a person to decide. Decisions, suggestions and evidence name source records by
-- their keys (instance id, external id): person ids change when people merge and split, the
-- records that describe them do not.

-- One row per merge of a person into another: by a shared identifier, or by hand.
CREATE TABLE person_merge (
    id          UUID PRIMARY KEY,
    kept_id     UUID NOT NULL,
    merged_id   UUID NOT NULL,
    -- `shared_email`, `shared_phone` (the identifier both carried) or `manual`.
    rule        TEXT NOT NULL CHECK (rule IN ('shared_email', 'shared_phone', 'manual')),
    -- The normalised address or number; NULL for a manual merge.
    identifier  TEXT,
    -- The source records on each side that carried it (or that the person chose):
    -- {"kept_sources": [{"instance_id", "external_id"}], "merged_sources": [...]}.
    evidence    JSONB NOT NULL,
    -- Who merged by hand (the admin token's name, `cli`); NULL for an automatic merge.
    actor       TEXT,
    merged_at   TIMESTAMPTZ NOT NULL,
    -- Set when the two were split again (an unmerge, or the identifier became shared).
    undone_at   TIMESTAMPTZ,
    undone_by   TEXT
);
CREATE INDEX person_merge_kept_idx ON person_merge (kept_id);
CREATE INDEX person_merge_merged_idx ON person_merge (merged_id);

-- A person's decision about two source records of people: `apart` (an unmerge, a rejected
-- suggestion) or `together` (a manual merge, an accepted suggestion). The pair is stored in
-- key order, (a_instance_id, a_external_id) < (b_instance_id, b_external_id).
CREATE TABLE person_decision (
    a_instance_id  TEXT NOT NULL,
    a_external_id  TEXT NOT NULL,
    b_instance_id  TEXT NOT NULL,
    b_external_id  TEXT NOT NULL,
    verdict        TEXT NOT NULL CHECK (verdict IN ('apart', 'together')),
    actor          TEXT NOT NULL,
    decided_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (a_instance_id, a_external_id, b_instance_id, b_external_id)
);
CREATE INDEX person_decision_b_idx ON person_decision (b_instance_id, b_external_id);

-- Two people who share an identifier only they carry, with names that do not match: maybe
-- one person (a new surname), maybe two (a family mailbox). Each side is named by the source
-- record that carries the identifier; the pair is in key order like person_decision's.
CREATE TABLE person_suggestion (
    a_instance_id  TEXT NOT NULL,
    a_external_id  TEXT NOT NULL,
    b_instance_id  TEXT NOT NULL,
    b_external_id  TEXT NOT NULL,
    kind           TEXT NOT NULL CHECK (kind IN ('email', 'phone')),
    identifier     TEXT NOT NULL,
    -- 0 to 1: how alike the two names are.
    score          REAL NOT NULL,
    a_name         TEXT NOT NULL,
    b_name         TEXT NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (a_instance_id, a_external_id, b_instance_id, b_external_id, identifier)
);
CREATE INDEX person_suggestion_identifier_idx ON person_suggestion (identifier);

-- An identifier carried by three or more people whose names do not all match (a front desk
-- number, `info@`): it no longer merges anyone.
CREATE TABLE shared_identifier (
    kind        TEXT NOT NULL CHECK (kind IN ('email', 'phone')),
    identifier  TEXT NOT NULL,
    -- How many source records of people carry it, and their names.
    carriers    INT NOT NULL,
    names       TEXT[] NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (kind, identifier)
);
