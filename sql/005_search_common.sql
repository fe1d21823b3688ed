-- What every search function shares, said once: the collection lookup, the range and query
-- vector checks, and the hit rows (a chunk with its document). The hit's type,
-- pgcontext.search_hit, is created by migration 0006 (a type cannot be replaced in place).
-- Private: the leading underscore says so; psql users call the search functions.

CREATE OR REPLACE FUNCTION pgcontext._collection_named(caller text, collection_name text)
RETURNS pgcontext.collection
LANGUAGE plpgsql STABLE
AS $fn$
DECLARE
    found_collection pgcontext.collection;
BEGIN
    SELECT * INTO found_collection FROM pgcontext.collection c WHERE c.name = collection_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION '%: no collection named "%"', caller, collection_name
            USING ERRCODE = 'no_data_found',
                  HINT = 'SELECT name FROM pgcontext.collection lists the collections.';
    END IF;
    RETURN found_collection;
END
$fn$;

-- The bounds come as text so that the message shows them as pgcontext.limits writes them
-- (1e6, not 1e+06). NaN sorts above every number in PostgreSQL, so NOT BETWEEN refuses it.
CREATE OR REPLACE FUNCTION pgcontext._check_between(
    caller text, name text, value double precision, low text, high text
) RETURNS void
LANGUAGE plpgsql IMMUTABLE
AS $fn$
BEGIN
    IF value IS NULL OR NOT value BETWEEN low::double precision AND high::double precision THEN
        RAISE EXCEPTION '%: % must be between % and %, not %', caller, name, low, high, value
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END
$fn$;

CREATE OR REPLACE FUNCTION pgcontext._check_query_embedding(caller text, query_embedding vector)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
AS $fn$
BEGIN
    IF query_embedding IS NULL THEN
        RAISE EXCEPTION '%: query_embedding is NULL', caller
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass the query''s embedding, made with the collection''s model.';
    END IF;
    -- Cosine distance to a zero vector is NaN: every score would be NaN.
    IF vector_norm(query_embedding) = 0 THEN
        RAISE EXCEPTION '%: query_embedding is all zeros: it has no direction', caller
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END
$fn$;

-- The hits of a search, in the order of `ids`, each scored by the same place in `scores`.
CREATE OR REPLACE FUNCTION pgcontext._hits(ids bigint[], scores double precision[])
RETURNS SETOF pgcontext.search_hit
LANGUAGE sql STABLE
AS $fn$
    SELECT c.id, c.document_id, d.source, d.title, hit.score, c.text, c.position,
           c.char_start, c.char_end, c.metadata
    FROM unnest(ids, scores) WITH ORDINALITY AS hit(id, score, rank)
    JOIN pgcontext.chunk c ON c.id = hit.id
    JOIN pgcontext.document d ON d.id = c.document_id
    ORDER BY hit.rank
$fn$;
