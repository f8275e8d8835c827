# scoreah: PGXS build.  `make && make install`, then `make installcheck`
# against a running server (pg_regress), `make prove_installcheck` for TAP.
# test/run_tests.sh does all of it on a throwaway cluster.

EXTENSION = scoreah
EXTVERSION = 0.1.0

MODULE_big = scoreah
OBJS = src/scoreah.o src/vector.o src/distance.o src/kmeans.o src/pq.o \
	src/utils.o src/build.o src/insert.o src/scan.o src/vacuum.o \
	src/introspect.o

DATA = sql/scoreah--$(EXTVERSION).sql
HEADERS = src/scoreah.h src/scoreah_algo.h

# pg_regress: sql/NAME.sql -> expected/NAME.out
REGRESS = $(sort $(filter-out scoreah--%,$(notdir $(basename $(wildcard sql/*.sql)))))
REGRESS_OPTS = --load-extension=scoreah

# TAP: test/t/*.pl (PostgreSQL::Test::Cluster)
TAP_TESTS = 1
PROVE_TESTS = $(or $(TAP),test/t/*.pl)

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS tracks no header dependencies: every object sees the page layouts
$(OBJS): src/scoreah.h src/scoreah_algo.h

# The exact distance kernels must round alike in every variant (see
# src/distance.c): no multiply-add contraction, in the object or in the
# bitcode the JIT may inline from.
src/distance.o: CFLAGS += -ffp-contract=off
src/distance.bc: BITCODE_CFLAGS += -ffp-contract=off

# after the include: Makefile.global resets PROVE_FLAGS
PROVE_FLAGS += -I ./test/perl

# TAP alone (PGXS runs it from installcheck only together with pg_regress)
.PHONY: prove_installcheck
prove_installcheck:
	$(prove_installcheck)
