-- Hybrid search: dense (HNSW) and keyword (BM25) candidates fused by reciprocal rank fusion,
-- in one statement. score = sum over the lists a chunk is in of weight / (rrf_k + rank).
--   SELECT * FROM pgcontext.hybrid_search('docs', 'bulk load csv', :'qvec'::vector, 10);

CREATE OR REPLACE FUNCTION pgcontext.hybrid_search(
    collection_name text,
    query text,
    query_embedding vector,
    k integer DEFAULT 10,
    filter jsonpath DEFAULT NULL,
    candidates integer DEFAULT 100,
    rrf_k integer DEFAULT 60,
    dense_weight double precision DEFAULT 1,
    keyword_weight double precision DEFAULT 1,
    ef_search integer DEFAULT 100
) RETURNS TABLE (
    chunk_id bigint,
    document_id bigint,
    source text,
    title text,
    score double precision,
    text text,
    "position" integer,
    char_start integer,
    char_end integer,
    metadata jsonb
)
LANGUAGE plpgsql
AS $fn$
BEGIN
    -- The limits of pgcontext.limits; the query and its vector are checked by
    -- pgcontext.keyword_search and pgcontext.search. NaN sorts above every number, so
    -- NOT BETWEEN refuses it too.
    IF k IS NULL OR k < 1 OR k > 1000 THEN
        RAISE EXCEPTION 'pgcontext.hybrid_search: k must be between 1 and 1000, not %', k
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF candidates IS NULL OR candidates < 1 OR candidates > 1000 THEN
        RAISE EXCEPTION 'pgcontext.hybrid_search: candidates must be between 1 and 1000, not %',
            candidates USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF rrf_k IS NULL OR rrf_k < 1 OR rrf_k > 100000 THEN
        RAISE EXCEPTION 'pgcontext.hybrid_search: rrf_k must be between 1 and 100000, not %',
            rrf_k USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF dense_weight IS NULL OR NOT dense_weight BETWEEN 0 AND 1e6 THEN
        RAISE EXCEPTION 'pgcontext.hybrid_search: dense_weight must be between 0 and 1e6, not %',
            dense_weight USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF keyword_weight IS NULL OR NOT keyword_weight BETWEEN 0 AND 1e6 THEN
        RAISE EXCEPTION 'pgcontext.hybrid_search: keyword_weight must be between 0 and 1e6, not %',
            keyword_weight USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF dense_weight = 0 AND keyword_weight = 0 THEN
        RAISE EXCEPTION 'pgcontext.hybrid_search: dense_weight and keyword_weight are both 0'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF ef_search IS NULL OR ef_search < 1 OR ef_search > 1000 THEN
        RAISE EXCEPTION 'pgcontext.hybrid_search: ef_search must be between 1 and 1000, not %',
            ef_search USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY
    WITH dense AS (
        SELECT d.id, d.rank
        FROM pgcontext.search(collection_name, query_embedding, greatest(candidates, k), filter,
                              least(greatest(ef_search, candidates, k), 1000))
             WITH ORDINALITY AS d(id, document_id, source, title, score, text, "position",
                                  char_start, char_end, metadata, rank)
    ), keyword AS (
        SELECT w.id, w.rank
        FROM pgcontext.keyword_search(collection_name, query, greatest(candidates, k), filter)
             WITH ORDINALITY AS w(id, document_id, source, title, score, text, "position",
                                  char_start, char_end, metadata, rank)
    ), fused AS (
        SELECT ranked.id, sum(ranked.weight / (rrf_k + ranked.rank)) AS rrf
        FROM (SELECT id, dense_weight AS weight, rank FROM dense
              UNION ALL
              SELECT id, keyword_weight, rank FROM keyword) ranked
        GROUP BY ranked.id
        ORDER BY rrf DESC, ranked.id
        LIMIT k
    )
    SELECT c.id, c.document_id, doc.source, doc.title, f.rrf, c.text, c.position,
           c.char_start, c.char_end, c.metadata
    FROM fused f
    JOIN pgcontext.chunk c ON c.id = f.id
    JOIN pgcontext.document doc ON doc.id = c.document_id
    ORDER BY f.rrf DESC, c.id;
END
$fn$;
