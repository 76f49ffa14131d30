-- Full-text search over tool names and (redacted) arguments, and indexes for
-- every filter the activity views offer.
CREATE VIRTUAL TABLE activity_fts USING fts5(
    kind, agent, server, tool, arguments, detail,
    content = 'activity', content_rowid = 'id'
);
INSERT INTO activity_fts (rowid, kind, agent, server, tool, arguments, detail)
    SELECT id, kind, agent, server, tool, arguments, detail FROM activity;
CREATE TRIGGER activity_fts_insert AFTER INSERT ON activity BEGIN
    INSERT INTO activity_fts (rowid, kind, agent, server, tool, arguments, detail)
    VALUES (new.id, new.kind, new.agent, new.server, new.tool, new.arguments, new.detail);
END;
CREATE TRIGGER activity_fts_delete AFTER DELETE ON activity BEGIN
    INSERT INTO activity_fts (activity_fts, rowid, kind, agent, server, tool, arguments, detail)
    VALUES ('delete', old.id, old.kind, old.agent, old.server, old.tool, old.arguments, old.detail);
END;
CREATE INDEX activity_person_time ON activity (on_behalf_of, time_us);
CREATE INDEX activity_decision_time ON activity (decision, time_us);
CREATE INDEX activity_risk_time ON activity (risk, time_us);
CREATE INDEX activity_kind_time ON activity (kind, time_us);
