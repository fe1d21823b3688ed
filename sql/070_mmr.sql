-- Maximal marginal relevance: from candidate chunks, pick k that are relevant to the query
-- and unlike each other. Each step takes the candidate with the highest
--   lambda * sim(query, c) - (1 - lambda) * max over picked p of sim(c, p)
-- with cosine similarity; lambda = 1 is plain relevance order, lambda = 0 pure diversity.
-- Ties keep the candidates' input order. Any search function can feed it:
--   SELECT m.rank, c.text
--   FROM pgcontext.mmr(:'qvec'::vector,
--          ARRAY(SELECT chunk_id FROM pgcontext.hybrid_search('docs', 'bulk load', :'qvec', 40)),
--          10, 0.5) m
--   JOIN pgcontext.chunk c ON c.id = m.chunk_id ORDER BY m.rank;

CREATE OR REPLACE FUNCTION pgcontext.mmr(
    query_embedding vector,
    candidate_ids bigint[],
    k integer DEFAULT 10,
    lambda double precision DEFAULT 0.5
) RETURNS TABLE (
    chunk_id bigint,
    rank integer,
    relevance double precision,
    redundancy double precision
)
LANGUAGE plpgsql
AS $fn$
DECLARE
    ids bigint[];
    vectors vector[];
    relevances double precision[];
    closest double precision[];  -- per candidate: highest similarity to anything picked
    picked boolean[];
    n integer;
    best integer;
    best_score double precision;
    score double precision;
    similarity double precision;
BEGIN
    PERFORM pgcontext._check_between('pgcontext.mmr', 'k', k, '1', '1000');
    -- As pgcontext.search: with no direction, every relevance would be NaN (read as 0).
    PERFORM pgcontext._check_query_embedding('pgcontext.mmr', query_embedding);
    PERFORM pgcontext._check_between('pgcontext.mmr', 'lambda', lambda, '0', '1');
    -- The first occurrence of each id, in input order; ids that are not chunks are skipped.
    SELECT array_agg(c.id ORDER BY u.ord), array_agg(c.embedding ORDER BY u.ord)
    INTO ids, vectors
    FROM (SELECT DISTINCT ON (x.id) x.id, x.ord
          FROM unnest(candidate_ids) WITH ORDINALITY AS x(id, ord)
          ORDER BY x.id, x.ord) u
    JOIN pgcontext.chunk c ON c.id = u.id;
    n := coalesce(array_length(ids, 1), 0);
    IF n = 0 THEN
        RETURN;
    END IF;
    IF vector_dims(vectors[1]) <> vector_dims(query_embedding) THEN
        RAISE EXCEPTION 'pgcontext.mmr: the query vector has % dimensions, the chunks have %',
            vector_dims(query_embedding), vector_dims(vectors[1])
            USING ERRCODE = 'data_exception';
    END IF;
    relevances := array_fill(0::double precision, ARRAY[n]);
    closest := array_fill('-Infinity'::double precision, ARRAY[n]);
    picked := array_fill(false, ARRAY[n]);
    FOR i IN 1..n LOOP
        -- A zero vector has no direction: <=> gives NaN, which would sort above everything.
        relevances[i] := coalesce(nullif(1 - (vectors[i] <=> query_embedding), 'NaN'), 0);
    END LOOP;
    FOR r IN 1..least(k, n) LOOP
        best := NULL;
        FOR i IN 1..n LOOP
            CONTINUE WHEN picked[i];
            score := lambda * relevances[i]
                     - (1 - lambda) * CASE WHEN r = 1 THEN 0 ELSE closest[i] END;
            IF best IS NULL OR score > best_score THEN
                best := i;
                best_score := score;
            END IF;
        END LOOP;
        picked[best] := true;
        chunk_id := ids[best];
        rank := r;
        relevance := relevances[best];
        redundancy := CASE WHEN r = 1 THEN 0 ELSE closest[best] END;
        RETURN NEXT;
        FOR i IN 1..n LOOP
            CONTINUE WHEN picked[i];
            similarity := coalesce(nullif(1 - (vectors[i] <=> vectors[best]), 'NaN'), 0);
            IF similarity > closest[i] THEN
                closest[i] := similarity;
            END IF;
        END LOOP;
    END LOOP;
END;
$fn$;
