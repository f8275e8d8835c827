-- Helpers the other pg_regress files share (pg_regress runs this file
-- first, and all of them in one database).

-- Helper: run a query (SELECT id ... ORDER BY ... LIMIT n) once with a
-- sequential scan and once through the index; say which index was used
-- and whether both gave the same ids in the same order.
CREATE FUNCTION check_index(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	seq int[];
	idx int[];
	line text;
	used text := 'no index';
	old_seq text := current_setting('enable_seqscan');
	old_idx text := current_setting('enable_indexscan');
BEGIN
	PERFORM set_config('enable_seqscan', 'on', true);
	PERFORM set_config('enable_indexscan', 'off', true);
	EXECUTE format('SELECT array_agg(id) FROM (%s) s', q) INTO seq;
	PERFORM set_config('enable_seqscan', 'off', true);
	PERFORM set_config('enable_indexscan', 'on', true);
	FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q LOOP
		IF line ~ 'Scan using' THEN
			used := substring(line from 'Scan using (\S+)');
		END IF;
	END LOOP;
	EXECUTE format('SELECT array_agg(id) FROM (%s) s', q) INTO idx;
	PERFORM set_config('enable_seqscan', old_seq, true);
	PERFORM set_config('enable_indexscan', old_idx, true);
	IF seq IS NOT DISTINCT FROM idx THEN
		RETURN format('%s: same order, %s rows', used, coalesce(cardinality(idx), 0));
	END IF;
	RETURN format('%s: DIFFERENT, seqscan %s, index %s', used, seq, idx);
END
$$;

-- The ordinary role the privilege tests use: no grants beyond PUBLIC's.
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_scoreah_user;
RESET client_min_messages;
CREATE ROLE regress_scoreah_user LOGIN;
