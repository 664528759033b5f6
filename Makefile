# replicate — plain Makefile. `make` builds, `make unit` runs offline tests, `make check` runs everything
# (installs packages and starts the test S3 servers itself), `make demo`, `make bench`, `make fuzz`.
CC      ?= cc
PKGS    := libcurl libxml-2.0 libcrypto libcjson libisal zlib
WARN    := -Wall -Wextra -Wshadow -Wformat=2 -Wmissing-prototypes -Wstrict-prototypes -Wno-unused-parameter
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE -pthread $(WARN) -MMD -MP -I. $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS  += $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lcurl -lxml2 -lcrypto -lcjson -lisal -lz) -lev -lm -pthread
ifeq ($(CI),true)
CFLAGS  += -Werror
endif
ifdef SANITIZE
CFLAGS  += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=$(SANITIZE)
endif

BUILD   := build$(if $(SANITIZE),-san)
# check, demo and bench build with one job per core unless make was given -j (the build is a minute on one core)
SUBJOBS  = $(if $(findstring -j,$(MAKEFLAGS)),,-j$(shell nproc 2>/dev/null || echo 2))
LIB_SRC := $(wildcard s3/*.c manifest/*.c)
APP_SRC := $(wildcard replicator/*.c)
APP_LIB := $(filter-out replicator/main.c,$(APP_SRC))
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
APP_OBJ := $(APP_LIB:%.c=$(BUILD)/%.o)
UNIT_SRC:= $(wildcard tests/unit/test_*.c)
UNIT_BIN:= $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_SRC:= $(wildcard tests/fuzz/fuzz_*.c)
UNIT_BIN+= $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/tests/replay_%)
TOOL_SRC:= $(wildcard tests/tools/*.c)
TOOL_BIN:= $(TOOL_SRC:tests/tools/%.c=$(BUILD)/tools/%)
ITEST_SRC:= $(wildcard tests/integration/*.c)
ITEST_BIN:= $(ITEST_SRC:tests/integration/%.c=$(BUILD)/itests/%)

.PHONY: all unit check integration demo bench fuzz deps clean format lint install uninstall deb
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
# the fault proxy's provider mode (Amazon S3 behaviour on top of RGW) lives in its own file
$(BUILD)/tools/faultproxy: tests/tools/proxy/aws.c tests/tools/proxy/aws.h
# the fault proxy's additional-checksum modes live in their own file
$(BUILD)/tools/faultproxy: tests/tools/proxy/checksum.c tests/tools/proxy/checksum.h
# the synthetic S3 endpoint of the scale bench: its buckets and its HTTP server
$(BUILD)/tools/synth_s3: tests/tools/synth/model.c tests/tools/synth/http.c tests/tools/synth/model.h tests/tools/synth/http.h

# Saved fuzz inputs (tests/fuzz/corpus/NAME) replayed as unit tests with any compiler (tests/fuzz/replay_main.c),
# the target and the code under it built with ASan+UBSan when the compiler has them.
REPLAY_SAN := $(if $(SANITIZE),,$(shell echo 'int main(void){return 0;}' | $(CC) -x c -fsanitize=address,undefined -o /dev/null - 2>/dev/null && echo -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer))
$(BUILD)/replay/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(REPLAY_SAN) -c -o $@ $<
$(BUILD)/tests/replay_fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/replay_main.c $(APP_LIB:%.c=$(BUILD)/replay/%.o) $(LIB_SRC:%.c=$(BUILD)/replay/%.o)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(REPLAY_SAN) -DFUZZ_CORPUS='"tests/fuzz/corpus/$*"' $(LDFLAGS) -o $@ $(filter %.c %.o,$^) $(LDLIBS) -lcmocka

# libFuzzer targets (clang; `make fuzz` installs it): each runs FUZZ_SECONDS on a scratch dir + the corpus.
FUZZ_CC  ?= clang
FUZZ_SECONDS ?= 60
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzz/%)
$(BUILD)/fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CFLAGS) -O1 -fsanitize=fuzzer-no-link $(FUZZ_SAN) -c -o $@ $<
$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(APP_LIB:%.c=$(BUILD)/fuzz/obj/%.o) $(LIB_SRC:%.c=$(BUILD)/fuzz/obj/%.o)
	$(FUZZ_CC) $(CFLAGS) -O1 -fsanitize=fuzzer $(FUZZ_SAN) -o $@ $^ $(LDLIBS)
.PRECIOUS: $(BUILD)/replay/%.o $(BUILD)/fuzz/obj/%.o
fuzz:
	@scripts/install-deps.sh fuzz
	@$(MAKE) --no-print-directory $(FUZZ_BIN)
	@FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz.sh $(FUZZ_BIN)

# Offline tests: no server, seconds.
unit: $(UNIT_BIN) $(BUILD)/replicate
	@scripts/run-unit.sh $(UNIT_BIN)
	@scripts/check-docs.sh $(BUILD)/replicate

deps:
	@scripts/install-deps.sh

# Everything: packages, build, RGW servers, unit + integration tests; servers are stopped on any exit.
check: deps
	@$(MAKE) --no-print-directory $(SUBJOBS) all $(UNIT_BIN) $(ITEST_BIN)
	@scripts/check-docs.sh $(BUILD)/replicate
	@scripts/check.sh $(BUILD)

integration: all $(ITEST_BIN)
	@scripts/check.sh $(BUILD) integration

demo: deps
	@$(MAKE) --no-print-directory $(SUBJOBS) all
	@scripts/demo.sh

bench: deps
	@$(MAKE) --no-print-directory $(SUBJOBS) all
	@scripts/bench.sh

format:
	clang-format -i $(LIB_SRC) $(APP_SRC) $(UNIT_SRC) $(TOOL_SRC) $(wildcard */*.h)

lint:
	cppcheck --quiet --std=c11 --enable=warning,performance,portability --error-exitcode=1 -I. s3 manifest replicator

# Installation: `make install` (PREFIX=/usr/local), `make install DESTDIR=/tmp/x PREFIX=/usr`, `make uninstall`
# with the same variables removes exactly those files. Units go to /lib/systemd/system for PREFIX=/usr (where
# Debian keeps packaged units), else to PREFIX/lib/systemd/system (systemd reads /usr/local/lib/systemd/system
# too). ExecStart= names the installed binary. `make deb` builds build/replicate_VERSION-1_ARCH.deb
# (scripts/deb.sh: a hardened build, this install with PREFIX=/usr, dpkg-deb, lintian).
PREFIX  ?= /usr/local
DESTDIR ?=
BINDIR  := $(PREFIX)/bin
MAN1DIR := $(PREFIX)/share/man/man1
DOCDIR  := $(PREFIX)/share/doc/replicate
BASHCOMPDIR := $(PREFIX)/share/bash-completion/completions
UNITDIR := $(if $(filter /usr /usr/,$(PREFIX)),/lib/systemd/system,$(PREFIX)/lib/systemd/system)
UNITS   := replicate@.service replicate@.timer replicate-failure@.service
DOCS    := app.env.example replicate.cron
INSTALLED := $(BINDIR)/replicate $(MAN1DIR)/replicate.1.gz $(BASHCOMPDIR)/replicate \
             $(UNITS:%=$(UNITDIR)/%) $(DOCS:%=$(DOCDIR)/%)

install: $(BUILD)/replicate
	install -d '$(DESTDIR)$(BINDIR)' '$(DESTDIR)$(MAN1DIR)' '$(DESTDIR)$(BASHCOMPDIR)' '$(DESTDIR)$(UNITDIR)' \
	  '$(DESTDIR)$(DOCDIR)'
	install -m 0755 $(BUILD)/replicate '$(DESTDIR)$(BINDIR)/replicate'
	gzip -9n <replicator/replicate.1 >'$(DESTDIR)$(MAN1DIR)/replicate.1.gz'
	chmod 0644 '$(DESTDIR)$(MAN1DIR)/replicate.1.gz'
	install -m 0644 scripts/completion/replicate.bash '$(DESTDIR)$(BASHCOMPDIR)/replicate'
	for u in $(UNITS); do \
	  sed 's|/usr/bin/replicate|$(BINDIR)/replicate|' "scripts/systemd/$$u" >'$(DESTDIR)$(UNITDIR)/'"$$u" && \
	  chmod 0644 '$(DESTDIR)$(UNITDIR)/'"$$u" || exit 1; \
	done
	install -m 0644 $(DOCS:%=scripts/systemd/%) '$(DESTDIR)$(DOCDIR)/'

# Removes the files install wrote and DOCDIR (ours alone); shared directories such as bin/ stay.
uninstall:
	rm -f $(foreach f,$(INSTALLED),'$(DESTDIR)$(f)')
	if [ -d '$(DESTDIR)$(DOCDIR)' ]; then rmdir --ignore-fail-on-non-empty '$(DESTDIR)$(DOCDIR)'; fi

deb:
	@scripts/deb.sh

clean:
	rm -rf build build-san replicate

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
