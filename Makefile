# corral -- build, test, demo, bench, asan.
# `make test` and `make demo` are the two commands the README promises; both work as
# the first command on a fresh Debian 12 machine (scripts/deps.sh installs packages).

# `make -j2 clean all` (clean with other goals): make would run clean beside the build, and
# making the build wait for it would not be enough, as make has already looked at the files
# clean removes.  So clean runs first, then a new make builds the other goals.
OTHER_GOALS := $(filter-out clean,$(MAKECMDGOALS))
ifneq ($(and $(filter clean,$(MAKECMDGOALS)),$(OTHER_GOALS)),)
.PHONY: clean $(OTHER_GOALS) clean-then-build
clean $(OTHER_GOALS): clean-then-build
	@:
clean-then-build:
	$(MAKE) clean
	$(MAKE) $(OTHER_GOALS)
else

CC      ?= cc
PKGS    := libevent libevent_openssl libpq openssl inih
WARN    := -Wall -Wextra -Werror -Wmissing-prototypes -Wstrict-prototypes -Wformat=2 \
           -Wpointer-arith -Wundef -Wshadow -Wno-unused-parameter
CFLAGS  ?= -O2 -g
BUILD   ?= build
BIN     ?= bin
# On a new machine pkg-config and the -dev packages exist only once `deps` has run, so
# pkg-config must not run while the Makefile is read: each of these is expanded at its
# first use, which is in a recipe (every build recipe waits for deps, below), and then
# keeps its value, so pkg-config runs once per make instead of once per compile.
# (The few other pkg-config calls below are expanded in recipes only.)
once           = $(eval $(1) := $$(shell $(2)))$($(1))
PKG_CFLAGS     = $(call once,PKG_CFLAGS,pkg-config --cflags $(PKGS))
PKG_LIBS       = $(call once,PKG_LIBS,pkg-config --libs $(PKGS))
CRITERION_LIBS = $(call once,CRITERION_LIBS,pkg-config --libs criterion)
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) -I. $(PKG_CFLAGS)
LIBS    = $(PKG_LIBS) -lpthread
TEST_LIBS = $(LIBS) $(CRITERION_LIBS)

CORE_SRC   := $(wildcard common/*.c pool/*.c proxy/*.c)
CORE_SRC   := $(filter-out proxy/main.c,$(CORE_SRC))
# The function runner (functions/runner/, main.c is corral-fn's main), the load
# generator (functions/storm/, main.c likewise) and example functions, one shared
# object each (functions/examples/NAME.c -> $(BIN)/functions/NAME.so).
FN_SRC     := $(filter-out functions/runner/main.c,$(wildcard functions/runner/*.c))
STORM_SRC  := $(filter-out functions/storm/main.c,$(wildcard functions/storm/*.c))
EXAMPLES   := $(patsubst functions/examples/%.c,$(BIN)/functions/%.so,$(wildcard functions/examples/*.c))
# Functions the integration tests run (tests/functions/NAME.c -> $(BIN)/test-functions/NAME.so).
TEST_FNS   := $(patsubst tests/functions/%.c,$(BIN)/test-functions/%.so,$(wildcard tests/functions/*.c))
# Everything `make test` and `make demo` run.
PROGRAMS   := $(BIN)/corral $(BIN)/corral-fn $(BIN)/corral-storm $(EXAMPLES)
UNIT_SRC   := $(wildcard tests/unit/*.c)
ITEST_SRC  := $(wildcard tests/integration/*.c)

CORE_OBJ   := $(CORE_SRC:%.c=$(BUILD)/%.o)
COMMON_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(wildcard common/*.c))
FN_OBJ     := $(FN_SRC:%.c=$(BUILD)/%.o)
STORM_OBJ  := $(STORM_SRC:%.c=$(BUILD)/%.o)
UNIT_OBJ   := $(UNIT_SRC:%.c=$(BUILD)/%.o)
ITEST_OBJ  := $(ITEST_SRC:%.c=$(BUILD)/%.o)

.PHONY: all deps test unit integration demo bench bench-fn asan valgrind clean format format-check

all: deps $(PROGRAMS)

# Every rule that compiles or links has deps as an order-only prerequisite (| deps): with
# -j nothing compiles before the packages are there, and deps (phony) runs each time but
# never makes a target out of date.
deps:
	@./scripts/deps.sh

$(BIN)/corral: $(CORE_OBJ) $(BUILD)/proxy/main.o | deps
	@mkdir -p $(BIN)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BIN)/corral-fn: $(COMMON_OBJ) $(FN_OBJ) $(BUILD)/functions/runner/main.o | deps
	@mkdir -p $(BIN)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS) -ldl

$(BIN)/corral-storm: $(COMMON_OBJ) $(STORM_OBJ) $(BUILD)/functions/storm/main.o | deps
	@mkdir -p $(BIN)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)

# Functions are loaded with dlopen: position-independent, linked against libpq.
$(BIN)/functions/%.so: functions/examples/%.c $(wildcard functions/*.h functions/examples/*.h) | deps
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -fPIC -shared -o $@ $< $(shell pkg-config --libs libpq)

$(BIN)/test-functions/%.so: tests/functions/%.c $(wildcard functions/*.h) | deps
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -fPIC -shared -o $@ $<

$(BIN)/unit-tests: $(CORE_OBJ) $(FN_OBJ) $(STORM_OBJ) $(UNIT_OBJ) | deps
	@mkdir -p $(BIN)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(TEST_LIBS) -ldl

$(BIN)/integration-tests: $(ITEST_OBJ) | deps
	@mkdir -p $(BIN)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(TEST_LIBS)

$(BUILD)/%.o: %.c | deps
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

# The dashboard page is assembled into this object (.incbin), which -MMD cannot see.
$(BUILD)/proxy/dashboard_html.o: proxy/dashboard.html

-include $(CORE_OBJ:.o=.d) $(FN_OBJ:.o=.d) $(STORM_OBJ:.o=.d) $(UNIT_OBJ:.o=.d) $(ITEST_OBJ:.o=.d) \
	 $(BUILD)/proxy/main.d $(BUILD)/functions/runner/main.d $(BUILD)/functions/storm/main.d

# node-postgres for the drivers/node_postgres_* tests (tests/integration/drivers/node/):
# `npm ci` installs exactly what package-lock.json records, into node_modules there, when
# it is missing or older than the lockfile, so the tests themselves never go to the
# network.  npm ci leaves node_modules/.package-lock.json behind; touched, it is the stamp.
# Without the registry this fails, and says so: the tests would fail anyway.
NODE_DRIVERS := tests/integration/drivers/node
NODE_STAMP   := $(NODE_DRIVERS)/node_modules/.package-lock.json
$(NODE_STAMP): $(NODE_DRIVERS)/package.json $(NODE_DRIVERS)/package-lock.json | deps
	@cd $(NODE_DRIVERS) && npm ci --no-audit --no-fund || { \
	    echo "npm ci failed in $(NODE_DRIVERS): the node-postgres driver tests" \
	         "need its packages (package-lock.json) from the npm registry" \
	         "(registry.npmjs.org, or npm's registry= setting); is it reachable?" >&2; exit 1; }
	@touch $@

# Unit tests first, then the integration suite against a throwaway PostgreSQL that
# tests/integration/run.sh starts and stops; its Criterion summary ends the output.
test: deps $(PROGRAMS) $(TEST_FNS) $(NODE_STAMP) $(BIN)/unit-tests $(BIN)/integration-tests
	./$(BIN)/unit-tests --jobs 2
	CORRAL_BIN=$(CURDIR)/$(BIN)/corral CORRAL_BINDIR=$(CURDIR)/$(BIN) \
	    ./tests/integration/run.sh ./$(BIN)/integration-tests

# The differential test of transaction pooling at length (tests/integration/test_differential.c):
# DIFF_SEQUENCES random sequences from DIFF_SEED, every failing one reported (corral is
# restarted after each failure, at most 6 times per test); e.g. make test-diff DIFF_SEQUENCES=20000.
DIFF_SEQUENCES ?= 4000
DIFF_SEED      ?= $(shell date +%s)
.PHONY: test-diff
test-diff: deps $(PROGRAMS) $(BIN)/integration-tests
	CORRAL_BIN=$(CURDIR)/$(BIN)/corral CORRAL_BINDIR=$(CURDIR)/$(BIN) \
	CORRAL_DIFF_SEQUENCES=$(DIFF_SEQUENCES) CORRAL_DIFF_SEED=$(DIFF_SEED) CORRAL_DIFF_KEEP_GOING=1 \
	    ./tests/integration/run.sh ./$(BIN)/integration-tests --filter 'differential/*'

# PostgreSQL 15's own regression suite (parallel_schedule) directly, then through corral
# in session and in transaction mode; prints passed / failed per mode and the tests that
# fail only through corral (scripts/regress.sh; not part of make test: minutes, and
# fetches the suite once into build/regress/).  REGRESS_SCHEDULE=serial runs it as
# make installcheck does (one test at a time).
.PHONY: regress
regress: deps $(BIN)/corral
	CORRAL_BIN=$(CURDIR)/$(BIN)/corral ./scripts/regress.sh

unit: deps $(BIN)/unit-tests
	./$(BIN)/unit-tests --jobs 2

demo: deps $(PROGRAMS)
	./scripts/demo.sh

# PostgreSQL direct vs PgBouncer vs corral (1 and 2 workers), pgbench, medians of rounds;
# e.g. make bench BENCH_ARGS="--rounds 1 --duration 5 --scenarios select" (run.sh --help).
bench: deps bin/corral
	./tests/bench/run.sh $(BENCH_ARGS)

# corral-fn's own cost: cold start (with and without a DB connect through corral) and
# warm invocation overhead, p50/p99 (scripts/bench-fn.sh).
bench-fn: deps $(PROGRAMS) $(TEST_FNS)
	./scripts/bench-fn.sh

# ASan + UBSan build of everything in its own build and bin dirs, then the same tests
# (corral itself runs sanitized under the integration suite; leaks fail a test's stop;
# tests/lsan.supp holds the one leak inside Criterion's runner that is not ours).
asan: deps
	LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0 \
	$(MAKE) BUILD=build-asan BIN=build-asan/bin \
	    CFLAGS="-O1 -g -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer" \
	    LDFLAGS="-fsanitize=address,undefined" test

# The integration suite with corral under valgrind (memory errors, leaks).
valgrind: deps $(PROGRAMS) $(TEST_FNS) $(NODE_STAMP) bin/integration-tests
	CORRAL_BIN=$(CURDIR)/scripts/valgrind-corral.sh CORRAL_BINDIR=$(CURDIR)/bin \
	    ./tests/integration/run.sh ./bin/integration-tests

# libFuzzer harnesses for the wire codec (tests/fuzz/), each run for FUZZ_SECONDS from
# its seed corpus; new inputs go to $(BUILD)/fuzz/corpus, crashes to $(BUILD)/fuzz/.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 30
FUZZERS      := startup messages tracker sql
FUZZ_CFLAGS   = -std=c11 -D_GNU_SOURCE $(WARN) -O1 -g -fno-omit-frame-pointer \
                -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
                -I. $(shell pkg-config --cflags libevent)
FUZZ_DEPS    := proxy/pgproto.c proxy/pgproto.h pool/params.c pool/params.h common/macros.h \
                proxy/tracker.c proxy/tracker.h tests/unit/backend_sim.c tests/unit/backend_sim.h \
                proxy/sql_lex.c proxy/sql_lex.h proxy/pin_scan.c proxy/pin_scan.h \
                proxy/set_carry.c proxy/set_carry.h proxy/prepared_sql.c proxy/prepared_sql.h

.PHONY: fuzz
fuzz:
	@command -v $(FUZZ_CC) >/dev/null 2>&1 || { echo "fuzz: $(FUZZ_CC) not found;" \
	    "install it with: sudo apt-get install -y clang-14 libclang-rt-14-dev" \
	    "(then FUZZ_CC=clang-14 if there is no clang)"; exit 1; }
	$(MAKE) $(FUZZERS:%=$(BUILD)/fuzz/fuzz_%)
	@set -e; for f in $(FUZZERS); do \
	    mkdir -p $(BUILD)/fuzz/corpus/$$f; \
	    echo "== fuzz_$$f for $(FUZZ_SECONDS)s"; \
	    $(BUILD)/fuzz/fuzz_$$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	        -artifact_prefix=$(BUILD)/fuzz/$$f- \
	        $(BUILD)/fuzz/corpus/$$f tests/fuzz/corpus/$$f; \
	done

$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_DEPS) | deps
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $< proxy/pgproto.c pool/params.c proxy/tracker.c \
	    tests/unit/backend_sim.c proxy/sql_lex.c proxy/pin_scan.c proxy/set_carry.c \
	    proxy/prepared_sql.c \
	    $(shell pkg-config --libs libevent)

# Every C file but those .clang-format-ignore lists (files that do not match the style yet;
# clang-format 14 does not read that list itself).
FORMAT_FILES = $(filter-out $(shell sed -e '/^\#/d' .clang-format-ignore), \
                            $(sort $(wildcard */*.[ch] */*/*.[ch])))

format:
	clang-format -i $(FORMAT_FILES)

format-check:
	clang-format --dry-run -Werror $(FORMAT_FILES)

clean:
	rm -rf build build-asan bin

endif # clean with other goals
