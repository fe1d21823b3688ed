-- Document versions: the one rule that keeps queued work from replacing newer state.
--
-- Whoever queues work for a document (an `ingest` run; later, table-sync triggers that
-- queue a row id and an operation) takes a version for it from
-- pgcontext.document_version_seq at the moment it queues, never from a clock. Deleting a
-- document takes a version too, kept in pgcontext.document_tombstone. Every write of a
-- document goes through write_document and every delete through delete_documents, which
-- lock the document's key (collection, source) until the transaction ends and then:
--   * refuse a version not newer than the stored document's or its tombstone's
--     ('superseded': the caller leaves the document and its chunks alone);
--   * with the same content hash, only take the newer version ('unchanged');
--   * otherwise insert or replace the document ('added', 'updated'; the caller then
--     replaces its chunks in the same transaction).
-- So a stale job, whether still queued or claimed by a slow worker, cannot win against a
-- newer one in either commit order, and a job queued before a delete cannot resurrect
-- the document; work queued after the delete may bring it back.
--
-- The key's lock is a row lock (a batch of any size needs no room in the lock table): the
-- document's own row while it is stored (a stored document never has a tombstone: a write
-- removes it, a delete removes the document); otherwise its row in document_tombstone, a
-- real tombstone or a placeholder (version -1) that the writer removes. Writers and
-- deleters take their keys in source order (bytewise, as Python sorts), and within a key
-- the tombstone row before the document row, so they do not deadlock.

CREATE OR REPLACE FUNCTION pgcontext.write_document(
    collection_id integer,
    source text,
    title text,
    metadata jsonb,
    content_hash text,
    char_count integer,
    version bigint,
    OUT document_id bigint,
    OUT outcome text
)
LANGUAGE plpgsql
AS $fn$
DECLARE
    deleted bigint;
    stored record;
    tombstone_locked boolean := false;
BEGIN
    -- A concurrent writer or deleter of this key waits here until this transaction ends;
    -- the statements below then see what it committed.
    SELECT d.id, d.version, d.content_hash INTO stored
    FROM pgcontext.document d
    WHERE d.collection_id = write_document.collection_id AND d.source = write_document.source
    FOR UPDATE;
    IF NOT FOUND THEN
        -- Not stored (or deleted while this waited): the key's tombstone row is the lock.
        INSERT INTO pgcontext.document_tombstone AS t (collection_id, source, version)
        VALUES (write_document.collection_id, write_document.source, -1)
        ON CONFLICT ON CONSTRAINT document_tombstone_pkey DO UPDATE SET version = t.version
        RETURNING t.version INTO deleted;
        IF deleted >= write_document.version THEN
            outcome := 'superseded';  -- deleted after this work was queued
            RETURN;
        END IF;
        tombstone_locked := true;
        -- Another writer may have added it before this one took the key.
        SELECT d.id, d.version, d.content_hash INTO stored
        FROM pgcontext.document d
        WHERE d.collection_id = write_document.collection_id
          AND d.source = write_document.source
        FOR UPDATE;
    END IF;
    IF stored.id IS NULL THEN
        INSERT INTO pgcontext.document
            (collection_id, source, title, metadata, content_hash, char_count, version)
        VALUES (write_document.collection_id, write_document.source, write_document.title,
                write_document.metadata, write_document.content_hash,
                write_document.char_count, write_document.version)
        RETURNING id INTO document_id;
        outcome := 'added';
    ELSIF stored.version >= write_document.version THEN
        document_id := stored.id;
        outcome := 'superseded';
    ELSIF stored.content_hash = write_document.content_hash THEN
        UPDATE pgcontext.document d SET version = write_document.version WHERE d.id = stored.id;
        document_id := stored.id;
        outcome := 'unchanged';
    ELSE
        UPDATE pgcontext.document d
        SET title = write_document.title, metadata = write_document.metadata,
            content_hash = write_document.content_hash, char_count = write_document.char_count,
            version = write_document.version, updated_at = now()
        WHERE d.id = stored.id;
        document_id := stored.id;
        outcome := 'updated';
    END IF;
    IF tombstone_locked THEN
        -- The placeholder, or a tombstone older than this write: served.
        DELETE FROM pgcontext.document_tombstone t
        WHERE t.collection_id = write_document.collection_id
          AND t.source = write_document.source;
    END IF;
END
$fn$;

-- Delete documents (with their chunks) and leave a tombstone for each source named, stored
-- or not, so that work queued before now cannot bring them back. Returns the sources that
-- had a stored document. Key by key in source order, the tombstone row then the document
-- row, as writers take them.
CREATE OR REPLACE FUNCTION pgcontext.delete_documents(collection_id integer, sources text[])
RETURNS SETOF text
LANGUAGE plpgsql
AS $fn$
DECLARE
    key text;
BEGIN
    FOR key IN SELECT DISTINCT u COLLATE "C" FROM unnest(sources) u ORDER BY 1 LOOP
        INSERT INTO pgcontext.document_tombstone AS t (collection_id, source, version)
        VALUES (delete_documents.collection_id, key, nextval('pgcontext.document_version_seq'))
        ON CONFLICT ON CONSTRAINT document_tombstone_pkey
        DO UPDATE SET version = EXCLUDED.version, deleted_at = now();
        RETURN QUERY
        DELETE FROM pgcontext.document d
        WHERE d.collection_id = delete_documents.collection_id AND d.source = key
        RETURNING d.source;
    END LOOP;
END
$fn$;

-- Tombstones nobody needs any more, dropped (returns how many). A tombstone only refuses
-- work for its source queued before the delete; work queued after it has a newer version
-- and passes anyway. So a tombstone goes once no unfinished job (queued, running, or
-- failed, which `retry` may revive) carries its source with an older version, and it is
-- older than `grace`: a write whose version was taken outside any job (an import batch,
-- inside its own transaction) may still be in flight for that long. A collection with an
-- unfinished job that lists no documents (queued before revision 0004) keeps them all.
CREATE OR REPLACE FUNCTION pgcontext.forget_tombstones(grace interval DEFAULT '1 hour')
RETURNS integer
LANGUAGE sql
AS $fn$
    WITH forgotten AS (
        DELETE FROM pgcontext.document_tombstone t
        WHERE t.deleted_at < now() - grace
          AND NOT EXISTS (
              SELECT 1 FROM pgcontext.queued_document qd
              WHERE qd.collection_id = t.collection_id AND qd.source = t.source
                AND qd.version < t.version)
          AND NOT EXISTS (
              SELECT 1 FROM pgcontext.ingest_queue q
              WHERE q.collection_id = t.collection_id AND q.status <> 'done'
                AND NOT EXISTS (
                    SELECT 1 FROM pgcontext.queued_document qd WHERE qd.job_id = q.id))
        RETURNING 1)
    SELECT count(*)::integer FROM forgotten;
$fn$;

-- A done job no longer lists its documents as queued (queued_document). A failed job keeps
-- them: `retry` may bring it back, and until then re-ingesting the stored content still
-- queues a newer version to supersede it. A trigger rather than a line in
-- finish_ingest_job, so that the queue's functions work at revisions without this table
-- (the 0004 downgrade drops this function and, with it, the trigger).
CREATE OR REPLACE FUNCTION pgcontext.forget_done_job_documents() RETURNS trigger
LANGUAGE plpgsql
AS $fn$
BEGIN
    DELETE FROM pgcontext.queued_document q WHERE q.job_id = NEW.id;
    RETURN NULL;
END
$fn$;

CREATE OR REPLACE TRIGGER ingest_queue_done_forgets_documents
AFTER UPDATE OF status ON pgcontext.ingest_queue
FOR EACH ROW WHEN (NEW.status = 'done' AND OLD.status <> 'done')
EXECUTE FUNCTION pgcontext.forget_done_job_documents();
