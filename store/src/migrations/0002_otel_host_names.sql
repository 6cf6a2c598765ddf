-- perfstore schema, version 2: host metrics take their OpenTelemetry semantic-convention names.
-- Append-only: never edit a shipped step. A store where the new name already exists (sent
-- over StatsD by hand) keeps the old series as it was rather than fail the upgrade.
UPDATE OR IGNORE series SET name = 'system.cpu.logical.count' WHERE name = 'system.cpu.logical_cpus';
UPDATE OR IGNORE series SET name = 'system.memory.linux.available' WHERE name = 'system.memory.available';
