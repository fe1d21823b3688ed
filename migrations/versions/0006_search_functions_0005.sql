-- The search functions as revision 0005 left them (sql/ at that revision), verbatim:
-- migration 0006's downgrade puts them back after dropping pgcontext.search_hit.

CREATE OR REPLACE FUNCTION pgcontext.search(
    collection_name text,
    query_embedding vector,
    k integer DEFAULT 10,
    filter jsonpath DEFAULT NULL,
    ef_search integer DEFAULT 40
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
-- ef_search is set per call; this SET clause confines that change to the call.
SET hnsw.ef_search = 40
AS $fn$
DECLARE
    col record;
    casted text;
    where_filter text := '';
    ids bigint[];
    distances double precision[];
    old_iterative text := current_setting('hnsw.iterative_scan', true);
BEGIN
    SELECT c.id, c.vector_type, m.dimensions, m.name AS model_name INTO col
    FROM pgcontext.collection c
    JOIN pgcontext.embedding_model m ON m.id = c.model_id
    WHERE c.name = collection_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'pgcontext.search: no collection named "%"', collection_name
            USING ERRCODE = 'no_data_found',
                  HINT = 'SELECT name FROM pgcontext.collection lists the collections.';
    END IF;
    IF k IS NULL OR k < 1 OR k > 1000 THEN
        RAISE EXCEPTION 'pgcontext.search: k must be between 1 and 1000, not %', k
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF ef_search IS NULL OR ef_search < 1 OR ef_search > 1000 THEN
        RAISE EXCEPTION 'pgcontext.search: ef_search must be between 1 and 1000, not %', ef_search
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF query_embedding IS NULL THEN
        RAISE EXCEPTION 'pgcontext.search: query_embedding is NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass the query''s embedding, made with the collection''s model.';
    END IF;
    -- Cosine distance to a zero vector is NaN: every score would be NaN.
    IF vector_norm(query_embedding) = 0 THEN
        RAISE EXCEPTION 'pgcontext.search: query_embedding is all zeros: it has no direction'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF vector_dims(query_embedding) <> col.dimensions THEN
        RAISE EXCEPTION 'pgcontext.search: the query vector has % dimensions, collection "%" (model %) has %',
            vector_dims(query_embedding), collection_name, col.model_name, col.dimensions
            USING ERRCODE = 'data_exception',
                  HINT = 'Embed the query with the collection''s own model.';
    END IF;

    -- The HNSW index returns at most ef_search rows: never ask for fewer than k.
    PERFORM set_config('hnsw.ef_search', greatest(ef_search, k)::text, true);
    casted := format('%s(%s)', col.vector_type, col.dimensions);
    IF filter IS NOT NULL THEN
        where_filter := ' AND c.metadata @@ $3';
        -- pgvector >= 0.8: keep scanning the index until k rows pass the filter.
        BEGIN
            PERFORM set_config('hnsw.iterative_scan', 'relaxed_order', true);
        EXCEPTION WHEN OTHERS THEN
            NULL;  -- pgvector 0.7 has no iterative scans: the exact fallback below covers it
        END;
    END IF;

    -- The literal collection id lets the planner match the collection's partial HNSW index,
    -- whose expression is the cast to the collection's own type and dimensions.
    EXECUTE format(
        'SELECT array_agg(id ORDER BY d), array_agg(d ORDER BY d) FROM ('
        '  SELECT c.id, c.embedding::%1$s <=> $1::%1$s AS d FROM pgcontext.chunk c'
        '  WHERE c.collection_id = %2$s%3$s ORDER BY d LIMIT $2) hits',
        casted, col.id, where_filter)
    INTO ids, distances
    USING query_embedding, k, filter;

    IF old_iterative IS NOT NULL THEN
        PERFORM set_config('hnsw.iterative_scan', old_iterative, true);
    END IF;

    -- Fewer than k rows: the index scan gave up early (a selective filter); scan exactly.
    IF coalesce(cardinality(ids), 0) < k THEN
        EXECUTE format(
            'SELECT array_agg(id ORDER BY d), array_agg(d ORDER BY d) FROM ('
            '  SELECT c.id, c.embedding <=> $1 AS d FROM pgcontext.chunk c'
            '  WHERE c.collection_id = %1$s%2$s ORDER BY d LIMIT $2) hits',
            col.id, where_filter)
        INTO ids, distances
        USING query_embedding, k, filter;
    END IF;

    RETURN QUERY
    SELECT c.id, c.document_id, d.source, d.title, 1 - hit.distance, c.text,
           c.position, c.char_start, c.char_end, c.metadata
    FROM unnest(ids, distances) WITH ORDINALITY AS hit(id, distance, rank)
    JOIN pgcontext.chunk c ON c.id = hit.id
    JOIN pgcontext.document d ON d.id = c.document_id
    ORDER BY hit.rank;
END
$fn$;

COMMENT ON FUNCTION pgcontext.search(text, vector, integer, jsonpath, integer) IS
'Nearest chunks of a collection to a query vector (cosine), best first; score = 1 - cosine distance. '
'filter: SQL/JSON path predicate over chunk metadata. Uses the collection''s HNSW index, with '
'iterative scans under a filter and an exact scan when the index returns fewer than k rows.';

CREATE OR REPLACE FUNCTION pgcontext.keyword_search(
    collection_name text,
    query text,
    k integer DEFAULT 10,
    filter jsonpath DEFAULT NULL,
    k1 double precision DEFAULT 0.9,
    b double precision DEFAULT 0.4
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
LANGUAGE plpgsql STABLE
AS $fn$
DECLARE
    col record;
    terms tsquery;
BEGIN
    SELECT c.id, c.text_search_config, coalesce(s.chunks, 0) AS n,
           CASE WHEN coalesce(s.chunks, 0) > 0 THEN s.tokens::double precision / s.chunks
                ELSE 1 END AS avglen
    INTO col
    FROM pgcontext.collection c LEFT JOIN pgcontext.collection_stats s ON s.collection_id = c.id
    WHERE c.name = collection_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'pgcontext.keyword_search: no collection named "%"', collection_name
            USING ERRCODE = 'no_data_found';
    END IF;
    IF k IS NULL OR k < 1 OR k > 1000 THEN
        RAISE EXCEPTION 'pgcontext.keyword_search: k must be between 1 and 1000, not %', k
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- The limits of pgcontext.limits. NaN sorts above every number in PostgreSQL,
    -- so NOT BETWEEN refuses it too.
    IF query IS NULL THEN
        RAISE EXCEPTION 'pgcontext.keyword_search: query is NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF length(query) > 10000 THEN
        RAISE EXCEPTION 'pgcontext.keyword_search: the query has % characters, more than 10000',
            length(query) USING ERRCODE = 'program_limit_exceeded';
    END IF;
    IF k1 IS NULL OR NOT k1 BETWEEN 0 AND 100 THEN
        RAISE EXCEPTION 'pgcontext.keyword_search: k1 must be between 0 and 100, not %', k1
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF b IS NULL OR NOT b BETWEEN 0 AND 1 THEN
        RAISE EXCEPTION 'pgcontext.keyword_search: b must be between 0 and 1, not %', b
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Any query term may match (OR): BM25 ranks, the index only finds candidates.
    terms := nullif(replace(plainto_tsquery(col.text_search_config, query)::text, '&', '|'), '')
             ::tsquery;
    IF terms IS NULL THEN
        RETURN;  -- only stop words
    END IF;
    RETURN QUERY
    WITH query_terms AS (
        SELECT DISTINCT l.lexeme FROM unnest(to_tsvector(col.text_search_config, query)) AS l
    ), stats AS MATERIALIZED (  -- once, not once per candidate
        SELECT q.lexeme,
               ln(1 + (col.n - t.chunks + 0.5) / (t.chunks + 0.5)) AS idf
        FROM query_terms q JOIN pgcontext.term_stats t
          ON t.collection_id = col.id AND t.term = q.lexeme
    ), scored AS (
        SELECT c.id, x.bm25
        FROM pgcontext.chunk c
        CROSS JOIN LATERAL (
            -- One pass over the candidate's lexemes gives both tf and the chunk's length.
            SELECT sum(st.idf * u.tf * (k1 + 1)
                       / (u.tf + k1 * (1 - b + b * u.len / col.avglen))) AS bm25
            FROM (SELECT l.lexeme, coalesce(cardinality(l.positions), 1) AS tf,
                         sum(coalesce(cardinality(l.positions), 1)) OVER () AS len
                  FROM unnest(c.tsv) AS l) u
            JOIN stats st ON st.lexeme = u.lexeme
        ) x
        WHERE c.collection_id = col.id AND c.tsv @@ terms
          AND (filter IS NULL OR c.metadata @@ filter)
        ORDER BY x.bm25 DESC, c.id
        LIMIT k
    )
    SELECT c.id, c.document_id, d.source, d.title, s.bm25, c.text, c.position,
           c.char_start, c.char_end, c.metadata
    FROM scored s
    JOIN pgcontext.chunk c ON c.id = s.id
    JOIN pgcontext.document d ON d.id = c.document_id
    ORDER BY s.bm25 DESC, c.id;
END
$fn$;

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

CREATE OR REPLACE FUNCTION pgcontext.similar_to_chunk(
    chunk bigint, k integer DEFAULT 10, filter jsonpath DEFAULT NULL
) RETURNS TABLE (
    chunk_id bigint, document_id bigint, source text, title text, score double precision,
    text text, "position" integer, char_start integer, char_end integer, metadata jsonb
)
LANGUAGE plpgsql
AS $fn$
DECLARE
    origin record;
BEGIN
    IF k IS NULL OR k < 1 OR k > 1000 THEN
        RAISE EXCEPTION 'pgcontext.similar_to_chunk: k must be between 1 and 1000, not %', k
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
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
) RETURNS TABLE (
    chunk_id bigint, document_id bigint, source text, title text, score double precision,
    text text, "position" integer, char_start integer, char_end integer, metadata jsonb
)
LANGUAGE plpgsql
AS $fn$
DECLARE
    doc_id bigint;
    centroid vector;
BEGIN
    IF k IS NULL OR k < 1 OR k > 1000 THEN
        RAISE EXCEPTION 'pgcontext.similar_to_document: k must be between 1 and 1000, not %', k
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
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
    IF k IS NULL OR k < 1 OR k > 1000 THEN
        RAISE EXCEPTION 'pgcontext.mmr: k must be between 1 and 1000, not %', k
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF query_embedding IS NULL THEN
        RAISE EXCEPTION 'pgcontext.mmr: query_embedding is NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- As pgcontext.search: with no direction, every relevance would be NaN (read as 0).
    IF vector_norm(query_embedding) = 0 THEN
        RAISE EXCEPTION 'pgcontext.mmr: query_embedding is all zeros: it has no direction'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF lambda IS NULL OR lambda < 0 OR lambda > 1 THEN
        RAISE EXCEPTION 'pgcontext.mmr: lambda must be between 0 and 1, not %', lambda
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
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
