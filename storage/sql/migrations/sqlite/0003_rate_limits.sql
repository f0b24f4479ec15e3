-- Per-credential overrides of rate classes, as space-separated
-- "class=rate:burst" items (class names never contain spaces, '=' or ':').
ALTER TABLE clients ADD COLUMN rate_limits text NOT NULL DEFAULT '';
