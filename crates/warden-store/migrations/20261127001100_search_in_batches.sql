-- Full-text search is indexed in batches instead of row by row: the index
-- cost one small FTS5 segment per commit, which made it the dearest part of
-- logging a call. Rows up to `indexed_up_to` are in the index; newer ones are
-- added by the log's flusher about once a second, and always before a search.
DROP TRIGGER activity_fts_insert;
CREATE TABLE activity_fts_state (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    indexed_up_to  INTEGER NOT NULL
);
INSERT INTO activity_fts_state (id, indexed_up_to)
    SELECT 1, coalesce(max(id), 0) FROM activity;
-- Only a row that is in the index can be taken out of it. Should the newest
-- rows ever go (so that ids would be handed out again), the mark follows the
-- newest remaining row, so that rows added later are indexed too.
DROP TRIGGER activity_fts_delete;
CREATE TRIGGER activity_fts_delete AFTER DELETE ON activity
BEGIN
    INSERT INTO activity_fts (activity_fts, rowid, kind, agent, server, tool, arguments, detail)
    SELECT 'delete', old.id, old.kind, old.agent, old.server, old.tool, old.arguments, old.detail
    WHERE old.id <= (SELECT indexed_up_to FROM activity_fts_state WHERE id = 1);
    UPDATE activity_fts_state SET indexed_up_to = (SELECT coalesce(max(id), 0) FROM activity)
    WHERE id = 1 AND indexed_up_to > (SELECT coalesce(max(id), 0) FROM activity);
END;
-- A call's outcome row carries no decision and no risk: those indexes need
-- only the rows that do (every query on them names a value).
DROP INDEX activity_decision_time;
DROP INDEX activity_risk_time;
CREATE INDEX activity_decision_time ON activity (decision, time_us) WHERE decision IS NOT NULL;
CREATE INDEX activity_risk_time ON activity (risk, time_us) WHERE risk IS NOT NULL;
