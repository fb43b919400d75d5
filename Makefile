# secmsg - one make-based build for everything.
#
#   make            build the programs (into build/)
#   make check      install missing dependencies, build with ASan+UBSan,
#                   run every test (unit, integration, system, lint)
#   make demo       run secmsgd in the foreground with a throwaway PKI
#   make install    install into $(DESTDIR)$(PREFIX) (and /etc, the unit dir)
#   make mutants    check that the tests catch one-line mutants of the
#                   security checks (tests/mutants/)
#   make deb        Debian packages in build/deb/ (debian/, scripts/deb.sh)
#
# O=DIR picks the build directory, SAN=address,undefined or SAN=thread a
# sanitizer build (make check does both itself).
#
# Packages: make demo, make bench and make check install what is missing
# (as root; scripts/deps.sh) and then build in a sub-make, because the
# pkg-config flags below are read when make reads this file, which must be
# after the libraries are there. Every other goal that builds (make, make
# install, ...) installs nothing: it stops at once, before compiling,
# naming the missing packages and the apt-get command.

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

SELF_INSTALLING := demo bench check deps mutants
NOT_BUILDING    := clean uninstall deb
ifneq ($(filter-out $(SELF_INSTALLING) $(NOT_BUILDING),$(or $(MAKECMDGOALS),all)),)
ifneq ($(shell scripts/deps.sh --check >&2 && echo ok),ok)
$(error build dependencies missing (see above))
endif
endif

PKGS_CRYPTO = libcrypto
PKGS_DAEMON = libcrypto libsystemd jansson sqlite3
# cmocka apart: without it (only the tests need it) the others still count.
CFLAGS_PKG  := $(shell $(PKG_CONFIG) --cflags $(PKGS_DAEMON) readline 2>/dev/null) \
               $(shell $(PKG_CONFIG) --cflags cmocka 2>/dev/null)
LIBS_CRYPTO := $(shell $(PKG_CONFIG) --libs $(PKGS_CRYPTO) 2>/dev/null)
LIBS_DAEMON := $(shell $(PKG_CONFIG) --libs $(PKGS_DAEMON) 2>/dev/null) -liniparser -lpthread
LIBS_CLIENT := $(shell $(PKG_CONFIG) --libs libcrypto readline ncursesw 2>/dev/null) -liniparser -lpthread
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
STRESS_SRC := $(wildcard tests/stress/test_*.c)

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
STRESS_BINS := $(patsubst tests/stress/%.c,$(O)/tests/stress/%,$(STRESS_SRC))

.PHONY: all check demo install uninstall bench fuzz clean deps tests lint-man mutants deb
.DEFAULT_GOAL := all

all: $(PROTO_LIB) $(PROGRAMS)

tests: all $(UNIT_BINS) $(INTEG_BINS) $(STRESS_BINS) $(O)/tests/shim/syncshim.so

# An LD_PRELOAD shim for test_durable.c, without sanitizers (it is loaded
# into secmsgd, never linked).
$(O)/tests/shim/syncshim.so: tests/shim/syncshim.c
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	@$(CC) -O2 -Wall -Wextra -Werror -shared -fPIC -o $@ $< -ldl

deps:
	@scripts/deps.sh check

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
# Tests that wrap a function of the objects they link (see each file's top).
$(O)/tests/unit/test_session: override LDFLAGS += -Wl,--wrap=free
$(O)/tests/unit/test_standin: override LDFLAGS += -Wl,--wrap=key_verify
$(O)/tests/unit/%: $(O)/tests/unit/%.o $(TLIBS_COMMON) $(DAEMON_LIB) $(PROTO_LIB)
	@echo "  LD      $@"
	@$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS_DAEMON) $(LIBS_CMOCKA)
$(O)/tests/integration/%: $(O)/tests/integration/%.o $(TLIBS_COMMON) $(DAEMON_LIB) $(PROTO_LIB)
	@echo "  LD      $@"
	@$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS_DAEMON) $(LIBS_CMOCKA)
$(O)/tests/stress/%: $(O)/tests/stress/%.o $(TLIBS_COMMON) $(DAEMON_LIB) $(PROTO_LIB)
	@echo "  LD      $@"
	@$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS_DAEMON) $(LIBS_CMOCKA)

check: deps
	$(MAKE) --no-print-directory O=build/asan SAN=address,undefined tests
	$(MAKE) --no-print-directory O=build/tsan SAN=thread build/tsan/secmsgd
	$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=0
	$(MAKE) --no-print-directory all
	tests/run.sh build/asan build build/tsan

# The sub-makes read the pkg-config flags after deps.sh installed the
# libraries (on a fresh machine, this make read them before: empty).
demo:
	@scripts/deps.sh build
	@$(MAKE) --no-print-directory all
	@scripts/demo.sh $(O)

bench:
	@scripts/deps.sh bench
	@$(MAKE) --no-print-directory all
	bench/run-matrix.sh $(O)

# One-line mutants of the security checks, each in a scratch copy of the
# tree, which starts from a copy of build/asan (built here first, so that
# a mutant rebuilds only what it touches); fails if a test misses one
# (tests/mutants/list, README).
mutants: deps
	$(MAKE) --no-print-directory O=build/asan SAN=address,undefined tests
	@MUTANTS_BUILD=build/asan tests/mutants/run.sh

# ---- fuzz: libFuzzer targets (tests/fuzz/fuzz_*.c) ----
# make fuzz [FUZZ_SECONDS=N] builds every target with clang into
# $(FUZZ_O) (proto/, the daemon objects the targets drive and the harness
# helpers, all with ASan+UBSan and fuzzer coverage) and runs each for N
# seconds (default 60) on its seed corpus tests/fuzz/corpus/NAME plus a
# writable corpus in $(FUZZ_O)/corpus-NAME, printing the executions per target; any crash,
# leak or timeout fails. FUZZ_SECONDS=0 only builds.
FUZZ_SECONDS  ?= 60
FUZZ_CC       ?= clang
FUZZ_O        ?= build/fuzz
FUZZ_TARGETS  := $(patsubst tests/fuzz/fuzz_%.c,%,$(filter-out \
                 tests/fuzz/fuzz_common.c,$(wildcard tests/fuzz/fuzz_*.c)))
FUZZ_CPPFLAGS := -D_GNU_SOURCE -I. -Iproto -Itests/fuzz -DSYSCONFDIR='"$(sysconfdir)"'
FUZZ_CFLAGS   := $(WARN) -O1 -g -fno-omit-frame-pointer \
                 -fsanitize=address,undefined -fno-sanitize-recover=all \
                 $(CFLAGS_PKG) $(INIPARSER_CFLAGS)
# fuzz_varlink defines control.c's neighbours (admin, server, the log)
# itself, so those objects are not taken from the library for it.
FUZZ_LIB_SRC  := $(PROTO_SRC) $(addprefix daemon/,config.c control.c conn.c \
                 session.c relay.c registry.c sources.c users.c identity.c convs.c queue.c \
                 log.c http.c metrics.c) tests/fuzz/fuzz_common.c
FUZZ_LIB      := $(FUZZ_O)/libsecmsg-fuzz.a
FUZZ_LIBS     := $(shell $(PKG_CONFIG) --libs libcrypto jansson libsystemd sqlite3 \
                 2>/dev/null) -liniparser -lpthread
FUZZ_BINS     := $(addprefix $(FUZZ_O)/fuzz_,$(FUZZ_TARGETS))

fuzz: $(FUZZ_BINS)
	@if [ "$(FUZZ_SECONDS)" != 0 ]; then \
		FUZZ_O=$(FUZZ_O) FUZZ_NOBUILD=1 tests/fuzz/smoke.sh $(FUZZ_SECONDS); \
	fi

$(FUZZ_O)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	@$(FUZZ_CC) $(FUZZ_CPPFLAGS) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c -o $@ $<
$(FUZZ_LIB): $(patsubst %.c,$(FUZZ_O)/obj/%.o,$(FUZZ_LIB_SRC))
	@rm -f $@ && $(AR) rcs $@ $^
$(FUZZ_O)/fuzz_%: $(FUZZ_O)/obj/tests/fuzz/fuzz_%.o $(FUZZ_LIB)
	@echo "  LD      $@"
	@$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $^ $(FUZZ_LIBS)
.PRECIOUS: $(FUZZ_O)/obj/%.o

ifneq ($(filter fuzz,$(MAKECMDGOALS)),)
-include $(shell find $(FUZZ_O) -name '*.d' 2>/dev/null)
endif

# ---- install / uninstall ----
# Directories for systemd's files come from pkg-config (systemd.pc), each
# overridable: make install UNITDIR=... SYSUSERSDIR=... TMPFILESDIR=...
# With DESTDIR empty, install also creates the secmsgadm group
# (systemd-sysusers), /etc/secmsg/users (systemd-tmpfiles) and reloads
# systemd; uninstall disables and stops the units first. The configuration
# and the users directory are never overwritten nor removed.
#
# install records every file it puts in place, by absolute path, in
# $(sysconfdir)/secmsg/install-manifest (under DESTDIR), whatever PREFIX
# was, and its own directories (a trailing /), files first; uninstall
# removes exactly those files and directories (if empty), then the
# manifest. Without a manifest (an installation older than it),
# uninstall needs the PREFIX given on its command line, and refuses
# otherwise rather than guess.
docdir      ?= $(datadir)/doc/secmsg
bashcompdir ?= $(datadir)/bash-completion/completions
INSTALL     ?= install
sd_var = $(shell $(PKG_CONFIG) --variable=$(1) systemd 2>/dev/null)
ifndef UNITDIR
UNITDIR := $(or $(call sd_var,systemdsystemunitdir),/lib/systemd/system)
endif
ifndef SYSUSERSDIR
SYSUSERSDIR := $(or $(call sd_var,sysusersdir),/usr/lib/sysusers.d)
endif
ifndef TMPFILESDIR
TMPFILESDIR := $(or $(call sd_var,tmpfilesdir),/usr/lib/tmpfiles.d)
endif
UNITS       := secmsgd.service secmsgd.socket secmsgd-control.socket secmsgd-metrics.socket
# secmsgctl is in bindir: members of secmsgadm use it, and sbin is not on
# their PATH.
SBIN_PROGS  := $(filter $(O)/secmsgd,$(PROGRAMS))
BIN_PROGS   := $(filter-out $(SBIN_PROGS),$(PROGRAMS))
COMPLETION  := $(firstword $(wildcard etc/secmsgctl.bash-completion \
               etc/secmsgctl.bash etc/bash-completion/secmsgctl \
               etc/completion/secmsgctl.bash etc/completion/secmsgctl))
MANPAGES    := $(wildcard man/*.[1-8])
DOCS        := etc/secmsgd.conf etc/client.conf README.md
# The units and snippets name /usr/sbin, /usr/bin and /etc/secmsg; point
# them at the directories of this installation.
SED_PATHS    = sed -e 's|/usr/sbin/|$(sbindir)/|g' -e 's|/usr/bin/|$(bindir)/|g' \
               -e 's|/etc/secmsg|$(sysconfdir)/secmsg|g'
D_CONF       = $(DESTDIR)$(sysconfdir)/secmsg
MANIFEST     = $(sysconfdir)/secmsg/install-manifest
# Every file install puts in place (the configuration file aside).
INSTALLED    = $(addprefix $(sbindir)/,$(notdir $(SBIN_PROGS))) \
               $(addprefix $(bindir)/,$(notdir $(BIN_PROGS))) \
               $(addprefix $(UNITDIR)/,$(UNITS)) \
               $(SYSUSERSDIR)/secmsgd.conf $(TMPFILESDIR)/secmsgd.conf \
               $(foreach p,$(MANPAGES),$(mandir)/man$(subst .,,$(suffix $(p)))/$(notdir $(p))) \
               $(addprefix $(docdir)/,$(notdir $(DOCS))) \
               $(if $(COMPLETION),$(bashcompdir)/secmsgctl) $(docdir)/

install: all
	@echo "  INSTALL programs"
	@$(INSTALL) -d $(DESTDIR)$(sbindir) $(DESTDIR)$(bindir)
	@for p in $(SBIN_PROGS); do $(INSTALL) -m 0755 $$p $(DESTDIR)$(sbindir)/ || exit 1; done
	@for p in $(BIN_PROGS); do $(INSTALL) -m 0755 $$p $(DESTDIR)$(bindir)/ || exit 1; done
	@# secmsgctl was in sbindir before: an old copy there would come first on root's PATH
	@rm -f $(DESTDIR)$(sbindir)/secmsgctl
	@echo "  INSTALL units in $(UNITDIR), sysusers.d, tmpfiles.d"
	@$(INSTALL) -d $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(TMPFILESDIR)
	@for u in $(UNITS); do \
		$(SED_PATHS) systemd/$$u >$(DESTDIR)$(UNITDIR)/$$u.tmp && \
		chmod 0644 $(DESTDIR)$(UNITDIR)/$$u.tmp && \
		mv -f $(DESTDIR)$(UNITDIR)/$$u.tmp $(DESTDIR)$(UNITDIR)/$$u || exit 1; \
	done
	@$(INSTALL) -m 0644 systemd/secmsgd.sysusers $(DESTDIR)$(SYSUSERSDIR)/secmsgd.conf
	@$(SED_PATHS) systemd/secmsgd.tmpfiles >$(DESTDIR)$(TMPFILESDIR)/secmsgd.conf
	@chmod 0644 $(DESTDIR)$(TMPFILESDIR)/secmsgd.conf
	@echo "  INSTALL man pages"
	@for p in $(MANPAGES); do \
		s=$${p##*.}; \
		$(INSTALL) -d $(DESTDIR)$(mandir)/man$$s && \
		$(INSTALL) -m 0644 $$p $(DESTDIR)$(mandir)/man$$s/ || exit 1; \
	done
	@echo "  INSTALL examples in $(docdir)"
	@$(INSTALL) -d $(DESTDIR)$(docdir)
	@$(INSTALL) -m 0644 $(DOCS) $(DESTDIR)$(docdir)/
ifneq ($(COMPLETION),)
	@$(INSTALL) -d $(DESTDIR)$(bashcompdir)
	@$(INSTALL) -m 0644 $(COMPLETION) $(DESTDIR)$(bashcompdir)/secmsgctl
endif
	@[ -d $(D_CONF) ] || $(INSTALL) -d -m 0755 $(D_CONF)
	@[ -d $(D_CONF)/users ] || $(INSTALL) -d -m 0755 $(D_CONF)/users
	@if [ -e $(D_CONF)/secmsgd.conf ]; then \
		echo "  KEEP    $(D_CONF)/secmsgd.conf (the new example is in $(docdir))"; \
	else \
		echo "  INSTALL $(D_CONF)/secmsgd.conf"; \
		$(INSTALL) -m 0644 etc/secmsgd.conf $(D_CONF)/secmsgd.conf; \
	fi
	@echo "  INSTALL $(DESTDIR)$(MANIFEST)"
	@{ [ ! -f $(DESTDIR)$(MANIFEST) ] || grep -v '^#' $(DESTDIR)$(MANIFEST); \
	   printf '%s\n' $(INSTALLED); } | LC_ALL=C sort -ru >$(DESTDIR)$(MANIFEST).tmp && \
	{ echo "# Files of secmsg's make install (PREFIX=$(PREFIX)): make uninstall removes them."; \
	  cat $(DESTDIR)$(MANIFEST).tmp; } >$(DESTDIR)$(MANIFEST) && \
	rm -f $(DESTDIR)$(MANIFEST).tmp && chmod 0644 $(DESTDIR)$(MANIFEST)
	@if [ -z "$(DESTDIR)" ]; then \
		if command -v systemd-sysusers >/dev/null; then \
			systemd-sysusers $(SYSUSERSDIR)/secmsgd.conf; fi; \
		if command -v systemd-tmpfiles >/dev/null; then \
			systemd-tmpfiles --create $(TMPFILESDIR)/secmsgd.conf; fi; \
		if [ -d /run/systemd/system ]; then systemctl daemon-reload; fi; \
		echo "Next: put server.pem and server.key (mode 0600) in $(sysconfdir)/secmsg,"; \
		echo "then: systemctl enable --now secmsgd.socket secmsgd-control.socket secmsgd-metrics.socket, and enrol users"; \
	fi

# Without a manifest: the files of an installation with this PREFIX, as
# install names them.
uninstall:
	@if [ ! -f $(DESTDIR)$(MANIFEST) ] && [ "$(origin PREFIX)" != "command line" ]; then \
		echo "make uninstall: no $(DESTDIR)$(MANIFEST); give the PREFIX (and DESTDIR) that make install had: make uninstall PREFIX=..." >&2; \
		exit 1; \
	fi
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then \
		systemctl disable --now $(UNITS) 2>/dev/null || true; \
	elif command -v systemctl >/dev/null; then \
		systemctl --root=$(if $(DESTDIR),$(DESTDIR),/) disable $(UNITS) 2>/dev/null || true; \
	fi
	@if [ -f $(DESTDIR)$(MANIFEST) ]; then \
		echo "  REMOVE  the files in $(DESTDIR)$(MANIFEST)"; \
		grep -v '^#' $(DESTDIR)$(MANIFEST) | while IFS= read -r f; do \
			case "$$f" in \
			/*/) rmdir "$(DESTDIR)$$f" 2>/dev/null || true;; \
			/*) rm -f "$(DESTDIR)$$f" || exit 1;; \
			esac; \
		done && rm -f $(DESTDIR)$(MANIFEST); \
	else \
		echo "  REMOVE  the files of PREFIX=$(PREFIX)"; \
		for f in $(INSTALLED) $(sbindir)/secmsgctl; do \
			case "$$f" in \
			*/) rmdir "$(DESTDIR)$$f" 2>/dev/null || true;; \
			*) rm -f "$(DESTDIR)$$f" || exit 1;; \
			esac; \
		done; \
	fi
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi
	@echo "Kept $(D_CONF) (configuration, keys, users) and the group secmsgadm."

# make deb: the Debian packages secmsgd and secmsg-client in build/deb/
# (installs the build dependencies and lintian when missing; fails on a
# lintian error or warning).
deb:
	@scripts/deb.sh

clean:
	rm -rf build

-include $(shell find $(O) -name '*.d' 2>/dev/null)
