-- Dense (vector) search over one collection, callable from psql:
--   SELECT * FROM pgcontext.search('docs', '[0.1, ...]'::vector, 10);
--   SELECT * FROM pgcontext.search('docs', :'q'::vector, 10, '$.year >= 2020 && $.lang == "en"');
-- The filter is a SQL/JSON path predicate over the chunk metadata (the Python API compiles its
-- JSON filter language to one). Re-applied on every `pgcontext db upgrade`.

CREATE OR REPLACE FUNCTION pgcontext.search(
    collection_name text,
    query_embedding vector,
    k integer DEFAULT 10,
    filter jsonpath DEFAULT NULL,
    ef_search integer DEFAULT 40
) RETURNS SETOF pgcontext.search_hit
LANGUAGE plpgsql
-- ef_search is set per call; this SET clause confines that change to the call.
SET hnsw.ef_search = 40
AS $fn$
DECLARE
    col pgcontext.collection;
    model pgcontext.embedding_model;
    casted text;
    where_filter text := '';
    ids bigint[];
    scores double precision[];
    old_iterative text := current_setting('hnsw.iterative_scan', true);
BEGIN
    col := pgcontext._collection_named('pgcontext.search', collection_name);
    PERFORM pgcontext._check_between('pgcontext.search', 'k', k, '1', '1000');
    PERFORM pgcontext._check_between('pgcontext.search', 'ef_search', ef_search, '1', '1000');
    PERFORM pgcontext._check_query_embedding('pgcontext.search', query_embedding);
    SELECT * INTO model FROM pgcontext.embedding_model m WHERE m.id = col.model_id;
    IF vector_dims(query_embedding) <> model.dimensions THEN
        RAISE EXCEPTION 'pgcontext.search: the query vector has % dimensions, collection "%" (model %) has %',
            vector_dims(query_embedding), collection_name, model.name, model.dimensions
            USING ERRCODE = 'data_exception',
                  HINT = 'Embed the query with the collection''s own model.';
    END IF;

    -- The HNSW index returns at most ef_search rows: never ask for fewer than k.
    PERFORM set_config('hnsw.ef_search', greatest(ef_search, k)::text, true);
    casted := format('%s(%s)', col.vector_type, model.dimensions);
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
        'SELECT array_agg(id ORDER BY d), array_agg(1 - d ORDER BY d) FROM ('
        '  SELECT c.id, c.embedding::%1$s <=> $1::%1$s AS d FROM pgcontext.chunk c'
        '  WHERE c.collection_id = %2$s%3$s ORDER BY d LIMIT $2) hits',
        casted, col.id, where_filter)
    INTO ids, scores
    USING query_embedding, k, filter;

    IF old_iterative IS NOT NULL THEN
        PERFORM set_config('hnsw.iterative_scan', old_iterative, true);
    END IF;

    -- Fewer than k rows: the index scan gave up early (a selective filter); scan exactly.
    IF coalesce(cardinality(ids), 0) < k THEN
        EXECUTE format(
            'SELECT array_agg(id ORDER BY d), array_agg(1 - d ORDER BY d) FROM ('
            '  SELECT c.id, c.embedding <=> $1 AS d FROM pgcontext.chunk c'
            '  WHERE c.collection_id = %1$s%2$s ORDER BY d LIMIT $2) hits',
            col.id, where_filter)
        INTO ids, scores
        USING query_embedding, k, filter;
    END IF;

    RETURN QUERY SELECT * FROM pgcontext._hits(ids, scores);
END
$fn$;

COMMENT ON FUNCTION pgcontext.search(text, vector, integer, jsonpath, integer) IS
'Nearest chunks of a collection to a query vector (cosine), best first; score = 1 - cosine distance. '
'filter: SQL/JSON path predicate over chunk metadata. Uses the collection''s HNSW index, with '
'iterative scans under a filter and an exact scan when the index returns fewer than k rows.';
