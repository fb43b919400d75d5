# secmsg - one make-based build for everything.
#
#   make            build the programs (into build/)
#   make check      install missing dependencies, build with ASan+UBSan,
#                   run every test (unit, integration, system, lint)
#   make demo       run secmsgd in the foreground with a throwaway PKI
#   make install    install into $(DESTDIR)$(PREFIX) (and /etc, the unit dir)
#
# O=DIR picks the build directory, SAN=address,undefined or SAN=thread a
# sanitizer build (make check does both itself).

PREFIX     ?= /usr/local
bindir     ?= $(PREFIX)/bin
sbindir    ?= $(PREFIX)/sbin
mandir     ?= $(PREFIX)/share/man
datadir    ?= $(PREFIX)/share
sysconfdir ?= /etc
DESTDIR    ?=
PKG_CONFIG ?= pkg-config
O          ?= build
SAN        ?=

CC ?= cc
WARN    = -std=c11 -Wall -Wextra -Werror -Wshadow -Wmissing-prototypes \
          -Wimplicit-fallthrough -Wstrict-prototypes -Wformat=2
HARDEN  = -fstack-protector-strong -fPIE
CPPFLAGS_BASE = -D_GNU_SOURCE -I. -Iproto
ifeq ($(SAN),)
OPT     = -O2 -g
CPPFLAGS_BASE += -D_FORTIFY_SOURCE=2
else
OPT     = -O1 -g -fno-omit-frame-pointer -fsanitize=$(SAN) -fno-sanitize-recover=all
endif
LDHARDEN = -pie -Wl,-z,relro,-z,now

PKGS_CRYPTO = libcrypto
PKGS_DAEMON = libcrypto libsystemd jansson
CFLAGS_PKG  := $(shell $(PKG_CONFIG) --cflags $(PKGS_DAEMON) readline cmocka 2>/dev/null)
LIBS_CRYPTO := $(shell $(PKG_CONFIG) --libs $(PKGS_CRYPTO) 2>/dev/null)
LIBS_DAEMON := $(shell $(PKG_CONFIG) --libs $(PKGS_DAEMON) 2>/dev/null) -liniparser -lpthread
LIBS_CLIENT := $(shell $(PKG_CONFIG) --libs libcrypto readline 2>/dev/null) -liniparser -lpthread
LIBS_CTL    := $(shell $(PKG_CONFIG) --libs libcrypto jansson 2>/dev/null) -liniparser
LIBS_CMOCKA := $(shell $(PKG_CONFIG) --libs cmocka 2>/dev/null)
INIPARSER_CFLAGS = -I/usr/include/iniparser

override CFLAGS   := $(WARN) $(OPT) $(HARDEN) $(CFLAGS_PKG) $(INIPARSER_CFLAGS) $(CFLAGS)
override CPPFLAGS := $(CPPFLAGS_BASE) -DSYSCONFDIR='"$(sysconfdir)"' $(CPPFLAGS)
override LDFLAGS  := $(LDHARDEN) $(if $(SAN),-fsanitize=$(SAN)) $(LDFLAGS)

PROTO_SRC  := $(wildcard proto/*.c)
DAEMON_SRC := $(filter-out daemon/main.c,$(wildcard daemon/*.c))
CLIENT_SRC := $(filter-out client/main.c,$(wildcard client/*.c))
CTL_SRC    := $(filter-out ctl/main.c,$(wildcard ctl/*.c))
BENCH_SRC  := $(wildcard bench/*.c)
TLIB_SRC   := $(wildcard tests/lib/*.c)
UNIT_SRC   := $(wildcard tests/unit/test_*.c)
INTEG_SRC  := $(wildcard tests/integration/test_*.c)

obj = $(patsubst %.c,$(O)/%.o,$(1))
PROTO_LIB  := $(O)/libsecmsg-proto.a
DAEMON_LIB := $(O)/libsecmsgd.a
CLIENT_LIB := $(O)/libsecmsg-client.a
CTL_LIB    := $(O)/libsecmsgctl.a
TLIB       := $(O)/libsecmsg-test.a

PROGRAMS := $(if $(wildcard daemon/main.c),$(O)/secmsgd) \
            $(if $(wildcard client/main.c),$(O)/secmsg-client) \
            $(if $(wildcard ctl/main.c),$(O)/secmsgctl) \
            $(if $(BENCH_SRC),$(O)/secmsg-bench)
UNIT_BINS  := $(patsubst tests/unit/%.c,$(O)/tests/unit/%,$(UNIT_SRC))
INTEG_BINS := $(patsubst tests/integration/%.c,$(O)/tests/integration/%,$(INTEG_SRC))

.PHONY: all check demo install uninstall bench fuzz clean deps tests lint-man format-check
.DEFAULT_GOAL := all

all: $(PROTO_LIB) $(PROGRAMS)

tests: all $(UNIT_BINS) $(INTEG_BINS)

deps:
	@scripts/deps.sh

$(O)/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	@$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c -o $@ $<

$(O)/tests/%.o: CPPFLAGS += -Itests/lib

$(PROTO_LIB): $(call obj,$(PROTO_SRC))
	@mkdir -p $(dir $@)
	@rm -f $@ && $(AR) rcs $@ $^
$(DAEMON_LIB): $(call obj,$(DAEMON_SRC))
	@rm -f $@ && $(AR) rcs $@ $^
$(CLIENT_LIB): $(call obj,$(CLIENT_SRC))
	@rm -f $@ && $(AR) rcs $@ $^
$(CTL_LIB): $(call obj,$(CTL_SRC))
	@rm -f $@ && $(AR) rcs $@ $^
$(TLIB): $(call obj,$(TLIB_SRC))
	@rm -f $@ && $(AR) rcs $@ $^

$(O)/secmsgd: $(call obj,daemon/main.c) $(DAEMON_LIB) $(PROTO_LIB)
	@echo "  LD      $@"
	@$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS_DAEMON)
$(O)/secmsg-client: $(call obj,client/main.c) $(CLIENT_LIB) $(PROTO_LIB)
	@echo "  LD      $@"
	@$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS_CLIENT)
$(O)/secmsgctl: $(call obj,ctl/main.c) $(CTL_LIB) $(PROTO_LIB)
	@echo "  LD      $@"
	@$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS_CTL)
$(O)/secmsg-bench: $(call obj,$(BENCH_SRC)) $(PROTO_LIB)
	@echo "  LD      $@"
	@$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS_CRYPTO) -lpthread

# Unit and integration tests link the same objects that ship: test_client_*
# the client's, test_ctl_* secmsgctl's, every other test the daemon's.
TLIBS_COMMON = $(if $(TLIB_SRC),$(TLIB))
$(O)/tests/unit/test_client_%: $(O)/tests/unit/test_client_%.o $(TLIBS_COMMON) $(CLIENT_LIB) $(PROTO_LIB)
	@echo "  LD      $@"
	@$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS_CLIENT) $(LIBS_DAEMON) $(LIBS_CMOCKA)
$(O)/tests/unit/test_ctl_%: $(O)/tests/unit/test_ctl_%.o $(TLIBS_COMMON) $(CTL_LIB) $(PROTO_LIB)
	@echo "  LD      $@"
	@$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS_CTL) $(LIBS_DAEMON) $(LIBS_CMOCKA)
$(O)/tests/unit/%: $(O)/tests/unit/%.o $(TLIBS_COMMON) $(DAEMON_LIB) $(PROTO_LIB)
	@echo "  LD      $@"
	@$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS_DAEMON) $(LIBS_CMOCKA)
$(O)/tests/integration/%: $(O)/tests/integration/%.o $(TLIBS_COMMON) $(DAEMON_LIB) $(PROTO_LIB)
	@echo "  LD      $@"
	@$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS_DAEMON) $(LIBS_CMOCKA)

check: deps
	$(MAKE) --no-print-directory O=build/asan SAN=address,undefined tests
	$(MAKE) --no-print-directory all
	tests/run.sh build/asan build

demo: deps all
	@scripts/demo.sh $(O)

bench: deps all
	@echo "make bench: the benchmark (bench/) is not written yet (issue 7)."

fuzz:
	@echo "make fuzz: the fuzz targets (tests/fuzz/) are not written yet (issue 8)."

install: all
	@echo "make install: arrives with the systemd units and man pages (issue 6)."

uninstall:
	@echo "make uninstall: arrives with the systemd units and man pages (issue 6)."

format-check:
	@scripts/format-check.sh

clean:
	rm -rf build

-include $(shell find $(O) -name '*.d' 2>/dev/null)
