# replicate — plain Makefile. `make` builds, `make unit` runs offline tests, `make check` runs everything
# (installs packages and starts the test S3 servers itself), `make demo`, `make bench`, `make fuzz`.
CC      ?= cc
PKGS    := libcurl libxml-2.0 libcrypto libcjson
WARN    := -Wall -Wextra -Wshadow -Wformat=2 -Wmissing-prototypes -Wstrict-prototypes -Wno-unused-parameter
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE $(WARN) -MMD -MP -I. $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS  += $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lcurl -lxml2 -lcrypto -lcjson) -lev -lm
ifeq ($(CI),true)
CFLAGS  += -Werror
endif
ifdef SANITIZE
CFLAGS  += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=$(SANITIZE)
endif

BUILD   := build$(if $(SANITIZE),-san)
LIB_SRC := $(wildcard s3/*.c manifest/*.c)
APP_SRC := $(wildcard replicator/*.c)
APP_LIB := $(filter-out replicator/main.c,$(APP_SRC))
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
APP_OBJ := $(APP_LIB:%.c=$(BUILD)/%.o)
UNIT_SRC:= $(wildcard tests/unit/test_*.c)
UNIT_BIN:= $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
TOOL_SRC:= $(wildcard tests/tools/*.c)
TOOL_BIN:= $(TOOL_SRC:tests/tools/%.c=$(BUILD)/tools/%)
ITEST_SRC:= $(wildcard tests/integration/*.c)
ITEST_BIN:= $(ITEST_SRC:tests/integration/%.c=$(BUILD)/itests/%)

.PHONY: all unit check integration demo bench fuzz deps clean format lint
all: replicate $(TOOL_BIN)

replicate: $(BUILD)/replicate
	cp $< $@

$(BUILD)/replicate: $(BUILD)/replicator/main.o $(APP_OBJ) $(LIB_OBJ)
	$(CC) $(LDFLAGS) -o $@ $(filter %.c %.o,$^) $(LDLIBS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c $(APP_OBJ) $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(filter %.c %.o,$^) $(LDLIBS) -lcmocka

$(BUILD)/itests/%: tests/integration/%.c $(APP_OBJ) $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(filter %.c %.o,$^) $(LDLIBS) -lcmocka

$(BUILD)/tools/%: tests/tools/%.c $(APP_OBJ) $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(filter %.c %.o,$^) $(LDLIBS)

# Offline tests: no server, seconds.
unit: $(UNIT_BIN)
	@scripts/run-unit.sh $(UNIT_BIN)

deps:
	@scripts/install-deps.sh

# Everything: packages, build, RGW servers, unit + integration tests; servers are stopped on any exit.
check: deps
	@$(MAKE) --no-print-directory all $(UNIT_BIN) $(ITEST_BIN)
	@scripts/check.sh $(BUILD)

integration: all $(ITEST_BIN)
	@scripts/check.sh $(BUILD) integration

demo: deps
	@$(MAKE) --no-print-directory all
	@scripts/demo.sh

bench: deps
	@$(MAKE) --no-print-directory all
	@scripts/bench.sh

format:
	clang-format -i $(LIB_SRC) $(APP_SRC) $(UNIT_SRC) $(TOOL_SRC) $(wildcard */*.h)

lint:
	cppcheck --quiet --std=c11 --enable=warning,performance,portability --error-exitcode=1 -I. s3 manifest replicator

clean:
	rm -rf build build-san replicate

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
