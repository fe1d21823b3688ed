-- BM25 keyword search in SQL. Term statistics are kept per collection by statement
-- triggers on pgcontext.chunk (they see COPY too); the score is Okapi BM25 over the
-- candidates the GIN index finds:
--   idf(t) = ln(1 + (N - df + 0.5) / (df + 0.5))
--   score  = sum over query terms of idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len / avglen))
-- with N chunks, df chunks holding t, tf occurrences in the chunk, len its length in lexemes.
--   SELECT * FROM pgcontext.keyword_search('docs', 'bulk load csv', 10);

CREATE OR REPLACE FUNCTION pgcontext.chunk_bm25_insert() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    -- Sorted upserts: concurrent writers take row locks in one order and never deadlock.
    INSERT INTO pgcontext.collection_stats AS s (collection_id, chunks, tokens)
    SELECT collection_id, count(*), sum(pgcontext.tsvector_length(tsv))
    FROM new_rows GROUP BY collection_id ORDER BY collection_id
    ON CONFLICT (collection_id) DO UPDATE
        SET chunks = s.chunks + EXCLUDED.chunks, tokens = s.tokens + EXCLUDED.tokens;
    INSERT INTO pgcontext.term_stats AS t (collection_id, term, chunks)
    SELECT n.collection_id, l.lexeme, count(*)
    FROM new_rows n, unnest(n.tsv) AS l GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (collection_id, term) DO UPDATE SET chunks = t.chunks + EXCLUDED.chunks;
    RETURN NULL;
END
$fn$;

CREATE OR REPLACE FUNCTION pgcontext.chunk_bm25_delete() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    UPDATE pgcontext.collection_stats s
    SET chunks = s.chunks - d.chunks, tokens = s.tokens - d.tokens
    FROM (SELECT collection_id, count(*) AS chunks, sum(pgcontext.tsvector_length(tsv)) AS tokens
          FROM old_rows GROUP BY collection_id ORDER BY collection_id) d
    WHERE s.collection_id = d.collection_id;
    UPDATE pgcontext.term_stats t
    SET chunks = t.chunks - d.chunks
    FROM (SELECT o.collection_id, l.lexeme, count(*) AS chunks
          FROM old_rows o, unnest(o.tsv) AS l GROUP BY 1, 2 ORDER BY 1, 2) d
    WHERE t.collection_id = d.collection_id AND t.term = d.lexeme;
    RETURN NULL;
END
$fn$;

CREATE OR REPLACE TRIGGER chunk_bm25_insert AFTER INSERT ON pgcontext.chunk
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION pgcontext.chunk_bm25_insert();
CREATE OR REPLACE TRIGGER chunk_bm25_delete AFTER DELETE ON pgcontext.chunk
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
    EXECUTE FUNCTION pgcontext.chunk_bm25_delete();

CREATE OR REPLACE FUNCTION pgcontext.keyword_search(
    collection_name text,
    query text,
    k integer DEFAULT 10,
    filter jsonpath DEFAULT NULL,
    k1 double precision DEFAULT 0.9,
    b double precision DEFAULT 0.4
) RETURNS SETOF pgcontext.search_hit
LANGUAGE plpgsql STABLE
AS $fn$
DECLARE
    col pgcontext.collection;
    n bigint;  -- chunks in the collection; bigint as before, so idf stays numeric
    avglen double precision;
    terms tsquery;
    ids bigint[];
    scores double precision[];
BEGIN
    col := pgcontext._collection_named('pgcontext.keyword_search', collection_name);
    PERFORM pgcontext._check_between('pgcontext.keyword_search', 'k', k, '1', '1000');
    -- The limits of pgcontext.limits.
    IF query IS NULL THEN
        RAISE EXCEPTION 'pgcontext.keyword_search: query is NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF length(query) > 10000 THEN
        RAISE EXCEPTION 'pgcontext.keyword_search: the query has % characters, more than 10000',
            length(query) USING ERRCODE = 'program_limit_exceeded';
    END IF;
    PERFORM pgcontext._check_between('pgcontext.keyword_search', 'k1', k1, '0', '100');
    PERFORM pgcontext._check_between('pgcontext.keyword_search', 'b', b, '0', '1');
    SELECT s.chunks, s.tokens::double precision / s.chunks INTO n, avglen
    FROM pgcontext.collection_stats s WHERE s.collection_id = col.id AND s.chunks > 0;
    IF NOT FOUND THEN  -- an empty collection: SELECT INTO has set both to NULL
        n := 0;
        avglen := 1;
    END IF;
    -- Any query term may match (OR): BM25 ranks, the index only finds candidates.
    terms := nullif(replace(plainto_tsquery(col.text_search_config, query)::text, '&', '|'), '')
             ::tsquery;
    IF terms IS NULL THEN
        RETURN;  -- only stop words
    END IF;
    WITH query_terms AS (
        SELECT DISTINCT l.lexeme FROM unnest(to_tsvector(col.text_search_config, query)) AS l
    ), stats AS MATERIALIZED (  -- once, not once per candidate
        SELECT q.lexeme,
               ln(1 + (n - t.chunks + 0.5) / (t.chunks + 0.5)) AS idf
        FROM query_terms q JOIN pgcontext.term_stats t
          ON t.collection_id = col.id AND t.term = q.lexeme
    ), scored AS (
        SELECT c.id, x.bm25
        FROM pgcontext.chunk c
        CROSS JOIN LATERAL (
            -- One pass over the candidate's lexemes gives both tf and the chunk's length.
            SELECT sum(st.idf * u.tf * (k1 + 1)
                       / (u.tf + k1 * (1 - b + b * u.len / avglen))) AS bm25
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
    SELECT array_agg(s.id ORDER BY s.bm25 DESC, s.id), array_agg(s.bm25 ORDER BY s.bm25 DESC, s.id)
    INTO ids, scores
    FROM scored s;
    RETURN QUERY SELECT * FROM pgcontext._hits(ids, scores);
END
$fn$;
