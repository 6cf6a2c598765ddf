-- perfstore schema, version 3: stacks are collected when the last profile row naming them
-- goes, in the same transaction; this index makes "is this stack still used?" a lookup.
CREATE INDEX IF NOT EXISTS profile_by_stack ON profile (stack_id);
-- Stores written by earlier versions may hold stacks that the disk cap orphaned.
DELETE FROM stack WHERE NOT EXISTS (SELECT 1 FROM profile WHERE profile.stack_id = stack.id);
