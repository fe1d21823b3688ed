-- Hybrid search: dense (HNSW) and keyword (BM25) candidates fused by reciprocal rank fusion,
-- in one statement. score = sum over the lists a chunk is in of weight / (rrf_k + rank).
-- ef_search reaches the dense side (at least candidates and k), k1 and b the BM25 side.
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
    ef_search integer DEFAULT 100,
    k1 double precision DEFAULT 0.9,
    b double precision DEFAULT 0.4
) RETURNS SETOF pgcontext.search_hit
LANGUAGE plpgsql
AS $fn$
DECLARE
    ids bigint[];
    scores double precision[];
BEGIN
    -- The limits of pgcontext.limits, in this order; the query and its vector are checked by
    -- pgcontext.keyword_search and pgcontext.search.
    PERFORM pgcontext._check_between('pgcontext.hybrid_search', p.name, p.value, p.low, p.high)
    FROM (VALUES ('k', k::double precision, '1', '1000'),
                 ('candidates', candidates, '1', '1000'),
                 ('rrf_k', rrf_k, '1', '100000'),
                 ('dense_weight', dense_weight, '0', '1e6'),
                 ('keyword_weight', keyword_weight, '0', '1e6'),
                 ('ef_search', ef_search, '1', '1000'),
                 ('k1', k1, '0', '100'),
                 ('b', b, '0', '1')) AS p(name, value, low, high);
    IF dense_weight = 0 AND keyword_weight = 0 THEN
        RAISE EXCEPTION 'pgcontext.hybrid_search: dense_weight and keyword_weight are both 0'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    WITH dense AS (
        SELECT d.chunk_id AS id, d.ordinality AS rank
        FROM pgcontext.search(collection_name, query_embedding, greatest(candidates, k), filter,
                              least(greatest(ef_search, candidates, k), 1000))
             WITH ORDINALITY AS d
    ), keyword AS (
        SELECT w.chunk_id AS id, w.ordinality AS rank
        FROM pgcontext.keyword_search(collection_name, query, greatest(candidates, k), filter,
                                      k1, b)
             WITH ORDINALITY AS w
    ), fused AS (
        SELECT ranked.id, sum(ranked.weight / (rrf_k + ranked.rank)) AS rrf
        FROM (SELECT id, dense_weight AS weight, rank FROM dense
              UNION ALL
              SELECT id, keyword_weight, rank FROM keyword) ranked
        GROUP BY ranked.id
        ORDER BY rrf DESC, ranked.id
        LIMIT k
    )
    SELECT array_agg(f.id ORDER BY f.rrf DESC, f.id), array_agg(f.rrf ORDER BY f.rrf DESC, f.id)
    INTO ids, scores
    FROM fused f;
    RETURN QUERY SELECT * FROM pgcontext._hits(ids, scores);
END
$fn$;
