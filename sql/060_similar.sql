-- "More like this", in plain SQL: the chunks nearest to a chunk, or to a document (its
-- chunks' mean direction), within the same collection and by its own HNSW index.
-- k is 1..1000 as for pgcontext.search (similar_to_chunk returns at most 999: the search
-- that feeds it counts the chunk itself).
--   SELECT source, score FROM pgcontext.similar_to_chunk(42, 5);
--   SELECT source, score FROM pgcontext.similar_to_document('pgdocs', 'sql-copy', 5);

CREATE OR REPLACE FUNCTION pgcontext.similar_to_chunk(
    chunk bigint, k integer DEFAULT 10, filter jsonpath DEFAULT NULL
) RETURNS SETOF pgcontext.search_hit
LANGUAGE plpgsql
AS $fn$
DECLARE
    origin record;
BEGIN
    PERFORM pgcontext._check_between('pgcontext.similar_to_chunk', 'k', k, '1', '1000');
    SELECT c.embedding, k2.name INTO origin
    FROM pgcontext.chunk c JOIN pgcontext.collection k2 ON k2.id = c.collection_id
    WHERE c.id = chunk;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'pgcontext.similar_to_chunk: no chunk with id %', chunk
            USING ERRCODE = 'no_data_found';
    END IF;
    RETURN QUERY
    -- One more than k for the chunk itself, within search's own limit of 1000.
    SELECT s.* FROM pgcontext.search(origin.name, origin.embedding, least(k + 1, 1000), filter) s
    WHERE s.chunk_id <> chunk
    LIMIT k;
END
$fn$;

CREATE OR REPLACE FUNCTION pgcontext.similar_to_document(
    collection_name text, document_source text, k integer DEFAULT 10,
    filter jsonpath DEFAULT NULL
) RETURNS SETOF pgcontext.search_hit
LANGUAGE plpgsql
AS $fn$
DECLARE
    doc_id bigint;
    centroid vector;
BEGIN
    PERFORM pgcontext._check_between('pgcontext.similar_to_document', 'k', k, '1', '1000');
    SELECT d.id, avg(c.embedding) INTO doc_id, centroid
    FROM pgcontext.document d
    JOIN pgcontext.collection k2 ON k2.id = d.collection_id AND k2.name = collection_name
    JOIN pgcontext.chunk c ON c.document_id = d.id
    WHERE d.source = document_source
    GROUP BY d.id;
    IF doc_id IS NULL THEN
        RAISE EXCEPTION 'pgcontext.similar_to_document: collection "%" has no document "%"',
            collection_name, document_source USING ERRCODE = 'no_data_found';
    END IF;
    -- The document's own chunks are left out: "more like this" means other documents.
    RETURN QUERY
    SELECT s.* FROM pgcontext.search(collection_name, centroid, least(k * 4 + 50, 1000), filter) s
    WHERE s.document_id <> doc_id
    LIMIT k;
END
$fn$;
