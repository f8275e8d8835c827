# scoreah: PGXS build.  `make && make install`, then `make installcheck`
# against a running server (pg_regress), `make prove_installcheck` for TAP,
# `make unittest` for the C unit tests of src/algo (no server needed).
# test/run_tests.sh does all of it on throwaway clusters.

EXTENSION = scoreah scoreah_vector
EXTVERSION = 0.2.0

# The algorithms: no pages, no buffers; also built into the unit tests
ALGO_SRCS = $(sort $(wildcard src/algo/*.c))
ALGO_OBJS = $(ALGO_SRCS:.c=.o)

# The access method, one file per duty (src/README)
AM_OBJS = src/scoreah.o src/options.o src/cost.o src/validate.o \
	src/page.o src/chain.o src/cache.o src/layout.o \
	src/build.o src/build_shape.o src/build_parallel.o src/build_write.o src/calibrate.o src/insert.o \
	src/scan.o src/scan_order.o src/scan_score.o src/vacuum.o src/info.o src/check.o \
	src/vector.o src/kernelfuncs.o src/keys.o

MODULE_big = scoreah
OBJS = $(AM_OBJS) $(ALGO_OBJS)

DATA = $(wildcard sql/scoreah--*.sql sql/scoreah_vector--*.sql)

# pg_regress: sql/NAME.sql -> expected/NAME.out; setup first (helpers)
REGRESS = setup $(sort $(filter-out setup scoreah--% scoreah_vector--%,$(notdir $(basename $(wildcard sql/*.sql)))))
REGRESS_OPTS = --load-extension=scoreah

# TAP: test/t/*.pl (PostgreSQL::Test::Cluster)
TAP_TESTS = 1
PROVE_TESTS = $(or $(TAP),test/t/*.pl)

EXTRA_CLEAN = test/unit/build

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS tracks no header dependencies: every object sees these
ALGO_HEADERS = $(wildcard src/algo/*.h)
$(OBJS): src/scoreah.h $(ALGO_HEADERS)

# The exact distance kernels must round alike in every variant (see
# src/algo/exact.c): no multiply-add contraction, in the object or in the
# bitcode the JIT may inline from.
src/algo/exact.o: CFLAGS += -ffp-contract=off
src/algo/exact.bc: BITCODE_CFLAGS += -ffp-contract=off

# after the include: Makefile.global resets PROVE_FLAGS
PROVE_FLAGS += -I ./test/perl

# TAP alone (PGXS runs it from installcheck only together with pg_regress)
.PHONY: prove_installcheck
prove_installcheck:
	$(prove_installcheck)

# ---- C unit tests of src/algo, without a server ----
#   make unittest
#   make unittest UNIT_CC=aarch64-linux-gnu-gcc UNIT_RUN=qemu-aarch64 UNIT_LDFLAGS=-static
UNIT_CC ?= $(CC)
UNIT_RUN ?=
UNIT_LDFLAGS ?=
UNIT_CFLAGS = -std=gnu99 -O2 -g -Wall -Wextra -Wno-unused-parameter -Werror \
	-DSCOREAH_STANDALONE -Isrc/algo
UNIT_DIR = test/unit/build/$(notdir $(UNIT_CC))
UNIT_SRCS = $(sort $(wildcard test/unit/*.c))
UNIT_OBJS = $(patsubst src/algo/%.c,$(UNIT_DIR)/algo_%.o,$(ALGO_SRCS)) \
	$(patsubst test/unit/%.c,$(UNIT_DIR)/%.o,$(UNIT_SRCS))

$(UNIT_DIR)/algo_exact.o: UNIT_CFLAGS += -ffp-contract=off
$(UNIT_DIR)/algo_%.o: src/algo/%.c $(ALGO_HEADERS)
	@mkdir -p $(UNIT_DIR)
	$(UNIT_CC) $(UNIT_CFLAGS) -c -o $@ $<
$(UNIT_DIR)/%.o: test/unit/%.c test/unit/unit.h $(ALGO_HEADERS)
	@mkdir -p $(UNIT_DIR)
	$(UNIT_CC) $(UNIT_CFLAGS) -c -o $@ $<
$(UNIT_DIR)/unit_tests: $(UNIT_OBJS)
	$(UNIT_CC) $(UNIT_LDFLAGS) -o $@ $^ -lm

.PHONY: unittest
unittest: $(UNIT_DIR)/unit_tests
	$(UNIT_RUN) $(UNIT_DIR)/unit_tests $(UNIT_ONLY)
