-- A source record's raw payload and normalised fields are written once per item and read
-- back whole (to re-process an item, or to merge a person's sources), never queried inside.
-- `json` keeps the text as given; `jsonb` converted it to a binary form on every write,
-- which made writing a batch's source records a fifth slower for nothing.
ALTER TABLE source_record
    ALTER COLUMN raw TYPE json USING raw::json,
    ALTER COLUMN raw SET DEFAULT 'null',
    ALTER COLUMN data TYPE json USING data::json,
    ALTER COLUMN data SET DEFAULT 'null';
