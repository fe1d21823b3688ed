-- Views for ingest status, readable from psql: SELECT * FROM pgcontext.collection_status;

CREATE OR REPLACE VIEW pgcontext.collection_status AS
SELECT c.name,
       m.name AS model,
       m.revision AS model_revision,
       m.dimensions,
       c.vector_type,
       c.chunk_tokens,
       c.chunk_overlap,
       c.text_search_config::text AS text_search_config,
       (SELECT count(*) FROM pgcontext.document d WHERE d.collection_id = c.id) AS documents,
       (SELECT count(*) FROM pgcontext.chunk ch WHERE ch.collection_id = c.id) AS chunks,
       (SELECT max(d.updated_at) FROM pgcontext.document d WHERE d.collection_id = c.id)
           AS last_ingest,
       c.created_at
FROM pgcontext.collection c
JOIN pgcontext.embedding_model m ON m.id = c.model_id;

CREATE OR REPLACE VIEW pgcontext.queue_status AS
SELECT c.name AS collection,
       q.status,
       count(*) AS jobs,
       max(q.updated_at) AS last_change
FROM pgcontext.ingest_queue q
JOIN pgcontext.collection c ON c.id = q.collection_id
GROUP BY c.name, q.status;
