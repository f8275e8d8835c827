-- scoreah 0.1.0 -> 0.2.0
-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION scoreah UPDATE TO '0.2.0'" to load this file. \quit

-- The kernel self-test and benchmark are for DBAs, not for every role.
REVOKE ALL ON FUNCTION scoreah_kernel_selftest(integer, integer, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION scoreah_kernel_benchmark(integer, integer, integer) FROM PUBLIC;

