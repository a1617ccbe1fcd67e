# dotproxy: one Makefile for both programs, the tests and the benchmark.
#   make                 build/dotproxy, build/dotproxy-init and build/dotproxy-cni
#   make test            every test (installs what it needs first)
#   make WERROR=1 SANITIZE=address,undefined test
.SUFFIXES:

CC       ?= gcc
BUILD    ?= build
CSTD     = -std=c17 -D_GNU_SOURCE
WARN     = -Wall -Wextra -Wshadow -Wpointer-arith -Wstrict-prototypes \
           -Wmissing-prototypes -Wmissing-declarations -Wformat=2 -Wundef \
           -Wcast-qual -Wwrite-strings -Wvla -Wimplicit-fallthrough \
           -Wduplicated-cond -Wlogical-op -Wnull-dereference
HARDEN   = -D_FORTIFY_SOURCE=3 -fstack-protector-strong -fstack-clash-protection \
           -fcf-protection -fPIE
LDHARDEN = -pie -Wl,-z,relro,-z,now -Wl,--as-needed
DEPFLAGS = -MMD -MP
OPT      ?= -O2 -g

ifeq ($(WERROR),1)
WARN += -Werror
endif
ifneq ($(SANITIZE),)
SANFLAGS = -fsanitize=$(SANITIZE) -fno-sanitize-recover=all -fno-omit-frame-pointer
HARDEN  := $(filter-out -D_FORTIFY_SOURCE=3,$(HARDEN))
endif

ALL_CFLAGS  = -I. $(CSTD) $(OPT) $(WARN) $(HARDEN) $(SANFLAGS) $(DEPFLAGS) $(CFLAGS)
ALL_LDFLAGS = $(LDHARDEN) $(SANFLAGS) $(LDFLAGS)
PROXY_LIBS  = -lssl -lcrypto -lmnl -lseccomp
INIT_LIBS   = -lnftnl -lmnl

VERSION := $(shell cat VERSION 2>/dev/null || echo 0.0.0)
GIT_REV := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
# Only main.o sees the version, so a new commit does not rebuild everything.
REV_FLAGS = -DDOTPROXY_VERSION='"$(VERSION)"' -DDOTPROXY_REVISION='"$(GIT_REV)"'

PROXY_SRCS := $(wildcard proxy/*.c)
PROXY_OBJS := $(PROXY_SRCS:%.c=$(BUILD)/%.o)
PROXY_LIB  := $(filter-out $(BUILD)/proxy/main.o,$(PROXY_OBJS))
# The pure layer: what unit tests, fuzz replays and test tools link with.
PURE_OBJS  := $(patsubst %,$(BUILD)/proxy/%.o,errors log buf dns config idmap resolv hist cache route http_parse nl_parse udp_mark)
INIT_SRCS  := $(filter-out init/cni%,$(wildcard init/*.c))
INIT_OBJS  := $(INIT_SRCS:%.c=$(BUILD)/%.o)
INIT_LIB   := $(filter-out $(BUILD)/init/main.o,$(INIT_OBJS))
# dotproxy-cni: the same rules and netlink talk, plus its own files; not
# the init container's own checks (hostnet) nor node-local mode.
CNI_OBJS   := $(patsubst %.c,$(BUILD)/%.o,$(wildcard init/cni*.c)) \
              $(filter-out $(BUILD)/init/hostnet.o $(BUILD)/init/nodelocal%.o,$(INIT_LIB))
CNI_LIB    := $(filter-out $(BUILD)/init/cni.o,$(CNI_OBJS))
# Fully static (glibc -static-pie, no NSS used): the installer copies this
# binary onto nodes whose loader and libraries are unknown. jansson and
# libnftnl from Debian's archives; libmnl's API from init/cni_mnl.c (Debian
# has no libmnl.a). Sanitizer runtimes cannot link statically.
CNI_LIBS   = -Wl,-Bstatic -ljansson -lnftnl -Wl,-Bdynamic
CNI_LINK   = $(if $(SANITIZE),$(ALL_LDFLAGS),-static-pie $(filter-out -pie,$(ALL_LDFLAGS)))
CNI_LINKLIBS = $(if $(SANITIZE),$(CNI_LIBS),-ljansson -lnftnl)

UNIT_PROXY := $(patsubst tests/unit/proxy/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/proxy/test_*.c))
UNIT_INIT  := $(patsubst tests/unit/init/%.c,$(BUILD)/tests/%,$(filter-out tests/unit/init/test_cni%,$(wildcard tests/unit/init/test_*.c)))
UNIT_CNI   := $(patsubst tests/unit/init/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/init/test_cni*.c))
FUZZ_SRCS  := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS  := $(patsubst tests/fuzz/fuzz_%.c,$(BUILD)/fuzz/replay_%,$(FUZZ_SRCS))
TOOL_SRCS  := $(wildcard tests/tools/*.c)
TOOL_BINS  := $(patsubst tests/tools/%.c,$(BUILD)/tools/%,$(TOOL_SRCS))

.PHONY: all clean deps test check check-unit check-fuzz check-e2e check-headers check-docker \
        check-banned bench bench-localzone demo fuzz install FORCE

all: $(BUILD)/dotproxy $(BUILD)/dotproxy-init $(BUILD)/dotproxy-cni

# Rebuild everything when the effective flags change.
$(BUILD)/.build-flags: FORCE
	@mkdir -p $(BUILD)
	@echo '$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS)' | cmp -s - $@ || \
	  echo '$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS)' > $@

$(BUILD)/%.o: %.c $(BUILD)/.build-flags
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(if $(filter %/main.o %/cni.o,$@),$(REV_FLAGS)) -c $< -o $@

$(BUILD)/dotproxy: $(PROXY_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PROXY_LIBS)

$(BUILD)/dotproxy-init: $(INIT_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(INIT_LIBS)

$(BUILD)/dotproxy-cni: $(CNI_OBJS)
	$(CC) $(CNI_LINK) -o $@ $^ $(CNI_LINKLIBS)

# The unit tests' in-process DoT server (tests/unit/proxy/dotsrv.c).
$(BUILD)/tests/test_%: $(BUILD)/tests/unit/proxy/test_%.o \
    $(BUILD)/tests/unit/proxy/dotsrv.o $(PROXY_LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PROXY_LIBS)

$(UNIT_INIT): $(BUILD)/tests/%: $(BUILD)/tests/unit/init/%.o $(INIT_LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(INIT_LIBS)

$(UNIT_CNI): $(BUILD)/tests/%: $(BUILD)/tests/unit/init/%.o $(CNI_LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(CNI_LIBS)

$(BUILD)/fuzz/replay_%: $(BUILD)/tests/fuzz/fuzz_%.o $(BUILD)/tests/fuzz/replay_main.o $(PURE_OBJS)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PROXY_LIBS)

$(BUILD)/tools/%: $(BUILD)/tests/tools/%.o $(PURE_OBJS)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PROXY_LIBS)

deps:
	@bash scripts/deps.sh

# Every test, one summary line at the end, non-zero on any failure.
test: deps all $(UNIT_PROXY) $(UNIT_INIT) $(UNIT_CNI) $(FUZZ_BINS) $(TOOL_BINS)
	@bash scripts/deps.sh fuzz
	@bash scripts/deps.sh cross
	@bash tests/run.sh all
	$(if $(SANITIZE),,@$(MAKE) -s check-arm64)

check: all $(UNIT_PROXY) $(UNIT_INIT) $(UNIT_CNI) $(FUZZ_BINS) $(TOOL_BINS)
	@bash tests/run.sh unit

check-e2e: all $(TOOL_BINS)
	@bash tests/run.sh e2e

check-headers:
	@set -e; for h in proxy/*.h init/*.h; do \
	  [ -f "$$h" ] || continue; \
	  echo "#include \"$$h\"" | $(CC) $(CSTD) $(WARN) -Werror -x c -fsyntax-only -I. - ; \
	done; echo "headers: each compiles alone"

check-banned:
	@if grep -nE '\b(strcpy|strcat|sprintf|vsprintf|strtok|strncpy|atoi|atol|gets|alloca)\s*\(' \
	    proxy/*.c proxy/*.h init/*.c init/*.h 2>/dev/null; then \
	  echo "banned functions used (see STYLE.md 5.11)"; exit 1; fi; echo "banned: none used"

check-docker:
	@bash tests/docker/docker-ci.sh

bench: deps all
	@bash scripts/deps.sh bench
	@bash tests/bench/bench.sh $(BENCH_ARGS)

bench-localzone: deps all
	@bash scripts/deps.sh bench
	@bash tests/bench/localzone.sh $(BENCH_ARGS)

# Real fuzzing (clang libFuzzer + ASan/UBSan, niced, one target at a time):
# FUZZ_SECONDS per target (default 60); FUZZ_PLATEAU=S runs each target until
# its coverage has not grown for S seconds (FUZZ_SECONDS is then the cap);
# FUZZ_MERGE=1 merges new coverage into tests/fuzz/corpus; FUZZ_TARGETS
# picks targets (default all). See tests/fuzz/README.md.
fuzz:
	@bash scripts/deps.sh fuzz
	@PLATEAU=$(or $(FUZZ_PLATEAU),0) MERGE=$(or $(FUZZ_MERGE),0) \
	  bash tests/fuzz/libfuzzer.sh $(or $(FUZZ_SECONDS),60) $(FUZZ_TARGETS)

demo: deps all $(BUILD)/tools/gai
	@bash examples/demo.sh

# Binaries and man pages under PREFIX (default /usr/local), staged under
# DESTDIR for packagers: make install DESTDIR=/tmp/stage PREFIX=/usr
install: all man
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man8
	install -m 0755 $(BUILD)/dotproxy $(BUILD)/dotproxy-init $(BUILD)/dotproxy-cni \
	  $(DESTDIR)$(BINDIR)/
	install -m 0644 $(MANS) $(DESTDIR)$(MANDIR)/man8/

clean:
	rm -rf $(BUILD)

# ---------------------------------------------------------------- release
# Man pages, the arm64 cross build and its tests under qemu, and the release.
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
MANS   := $(patsubst %,$(BUILD)/man/%.8,dotproxy dotproxy-init dotproxy-cni)
# The man pages' OPTIONS come from the binaries' own --help (the option
# tables), run through HELP_RUN (an emulator for a cross build, if any).
HELP_ARGS_dotproxy-cni = install --help

.PHONY: man arm64 check-arm64 unit-bins release

man: $(MANS)

$(BUILD)/man/%.8: man/%.8.in $(BUILD)/% scripts/man.sh VERSION
	@mkdir -p $(@D)
	bash scripts/man.sh $< $@ $(HELP_RUN) $(BUILD)/$* $(or $(HELP_ARGS_$*),--help)

# Everything the unit runner (tests/run.sh unit) executes.
unit-bins: $(UNIT_PROXY) $(UNIT_INIT) $(UNIT_CNI) $(FUZZ_BINS)

# linux/arm64 with Debian's cross toolchain (scripts/deps.sh cross) into
# $(BUILD)/arm64. -fcf-protection is x86 only; its arm64 counterpart is
# branch protection (PAC and BTI). No sanitizers: they do not run under qemu.
ARM64_MAKE = $(MAKE) BUILD=$(BUILD)/arm64 CC=aarch64-linux-gnu-gcc SANITIZE= \
  HARDEN='-D_FORTIFY_SOURCE=3 -fstack-protector-strong -fstack-clash-protection -mbranch-protection=standard -fPIE'

arm64:
	+@$(ARM64_MAKE) all

# The unit tests and fuzz corpus replays, cross-built, run under qemu-user.
check-arm64:
	+@$(ARM64_MAKE) -s all unit-bins
	@BUILD=$(BUILD)/arm64 EMU=qemu-aarch64-static bash tests/run.sh unit-arm64

# make print-CNI_LIBS: a variable's value, for scripts/sbom.sh.
print-%:
	@echo '$($*)'

# make release VERSION=x.y.z: tarballs, images, SBOMs, SHA256SUMS and the
# release notes under $(BUILD)/release (scripts/release.sh).
release:
	@bash scripts/release.sh $(if $(filter command line,$(origin VERSION)),$(VERSION))

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
