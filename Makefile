# Sluice: one entry point. BPF objects follow the libbpf-bootstrap pipeline:
#   bpf/X.bpf.c --clang--> build/bpf/X.tmp.o --bpftool gen object--> build/bpf/X.bpf.o
#   --bpftool gen skeleton--> build/X.skel.h, included by the userspace code.
# Quiet by default; `make V=1` shows every command.

BUILD ?= build
PREFIX ?= /usr/local
CLANG ?= clang
BPFTOOL ?= bpftool
CC ?= cc
ARCH := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')

ifeq ($(V),1)
Q =
msg =
else
Q = @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

CFLAGS ?= -O2 -g
CFLAGS += -std=gnu11 -Wall -Wextra -Werror -Iinclude -Iuser/lib -Iuser/sluiced -Iuser/sluice-proxy \
	-I$(BUILD)
# SAN=1: AddressSanitizer and UBSan (make test runs the proxy's tests so, in build/san).
ifeq ($(SAN),1)
CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif
BPF_CFLAGS := -O2 -g -target bpf -D__TARGET_ARCH_$(ARCH) -Wall -Wextra -Werror \
	-I. -Iinclude -Ibpf
LDLIBS := -lbpf -lelf -lz -lyaml -ljson-c -lcurl -lpthread

BPF_SRCS := $(wildcard bpf/*.bpf.c)
BPF_OBJS := $(patsubst bpf/%.bpf.c,$(BUILD)/bpf/%.bpf.o,$(BPF_SRCS))
SKELS := $(patsubst bpf/%.bpf.c,$(BUILD)/%.skel.h,$(BPF_SRCS))
BPF_HDRS := $(wildcard bpf/lib/*.h include/sluice/*.h) vmlinux.h

LIB_SRCS := $(wildcard user/lib/*.c)
LIB_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(LIB_SRCS))
LIB := $(BUILD)/libsluice.a
BINS := $(BUILD)/sluiced $(BUILD)/sluice $(BUILD)/sluice-proxy
CLI_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(wildcard user/sluice/*.c))
# The agent's modules (all but main.c) form a library the tests link too.
AGENT_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(filter-out user/sluiced/main.c,$(wildcard user/sluiced/*.c)))
AGENT_LIB := $(BUILD)/libsluiced.a
# The same for the proxy: its modules but main.c, linked by its unit tests.
PROXY_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(filter-out user/sluice-proxy/main.c,$(wildcard user/sluice-proxy/*.c)))
PROXY_LIB := $(BUILD)/libsluiceproxy.a

UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/unit/%,$(UNIT_SRCS))
BPFT_SRCS := $(wildcard tests/bpf/test_*.c)
BPFT_BINS := $(patsubst tests/bpf/%.c,$(BUILD)/tests/bpf/%,$(BPFT_SRCS))
BPFT_LIB := $(patsubst %.c,$(BUILD)/%.o,tests/bpf/pkt.c tests/bpf/harness.c tests/bpf/lb_fixture.c)
BENCH_BIN := $(BUILD)/tools/bench/xdp_bench
MAGLEV_BENCH := $(BUILD)/tools/bench/maglev_bench
SOCK_BENCH := $(BUILD)/tools/bench/sock_bench
SOCKCHECK := $(BUILD)/tools/sockcheck
HTTP_UPSTREAM := $(BUILD)/tools/http_upstream
HTTP_UPSTREAM_SRCS := $(wildcard tools/http_upstream/*.c)
FUZZ_HTTP1 := $(BUILD)/fuzz/fuzz_http1
HTTP1_SRCS := $(wildcard user/sluice-proxy/http1*.c)
FUZZ_SECONDS ?= 60
C_OBJS := $(LIB_OBJS) $(AGENT_OBJS) $(BUILD)/user/sluiced/main.o $(CLI_OBJS) $(BPFT_LIB) \
	$(PROXY_OBJS) $(BUILD)/user/sluice-proxy/main.o \
	$(patsubst %,%.o,$(UNIT_BINS) $(BPFT_BINS) $(BENCH_BIN)) $(BUILD)/tools/bench/bench_policy.o

.DELETE_ON_ERROR:
# Keep the BPF objects: the skeleton embeds them, tests and bpftool load them.
.SECONDARY:
.PHONY: all deps san test test-unit test-bpf test-e2e test-san test-k8s image image-test bench demo demo-down check format \
	install clean vmlinux fuzz

all: $(BINS) $(UNIT_BINS) $(BPFT_BINS) $(BENCH_BIN) $(MAGLEV_BENCH) $(SOCK_BENCH) $(SOCKCHECK) \
	$(HTTP_UPSTREAM)

# Every target that builds or runs something installs what it needs first.
deps:
	$(Q)tools/deps.sh

$(BUILD)/bpf/%.tmp.o: bpf/%.bpf.c $(BPF_HDRS) | deps
	$(call msg,BPF,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

# Fully ordered atomics (BPF_FETCH) need ISA v3; only the redirect
# programs use them, the XDP program keeps the default.
$(BUILD)/bpf/sock_redir.tmp.o: BPF_CFLAGS += -mcpu=v3

$(BUILD)/bpf/%.bpf.o: $(BUILD)/bpf/%.tmp.o
	$(call msg,GEN-OBJ,$@)
	$(Q)$(BPFTOOL) gen object $@ $<

$(BUILD)/%.skel.h: $(BUILD)/bpf/%.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name $(subst -,_,$*) > $@

$(C_OBJS): $(BUILD)/%.o: %.c $(SKELS) $(wildcard include/sluice/*.h user/*/*.h tests/bpf/*.h tools/bench/*.h) | deps
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJS)
	$(call msg,AR,$@)
	$(Q)$(AR) rcs $@ $^

$(AGENT_LIB): $(AGENT_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@
	$(Q)$(AR) rcs $@ $^

$(BUILD)/sluiced: $(BUILD)/user/sluiced/main.o $(AGENT_LIB) $(LIB)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/sluice: $(CLI_OBJS) $(LIB)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(PROXY_LIB): $(PROXY_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@
	$(Q)$(AR) rcs $@ $^

$(BUILD)/sluice-proxy: $(BUILD)/user/sluice-proxy/main.o $(PROXY_LIB) $(LIB)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/tests/unit/%: $(BUILD)/tests/unit/%.o $(PROXY_LIB) $(AGENT_LIB) $(LIB)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) $^ $(LDLIBS) -lcmocka -o $@

$(BUILD)/tests/bpf/%: $(BUILD)/tests/bpf/%.o $(BPFT_LIB) $(AGENT_LIB) $(LIB)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BENCH_BIN): $(BUILD)/tools/bench/xdp_bench.o $(BUILD)/tools/bench/bench_policy.o $(BPFT_LIB) $(LIB)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(MAGLEV_BENCH): tools/bench/maglev_bench.c user/lib/maglev.h $(LIB) | deps
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $< $(LIB) -o $@

$(SOCK_BENCH): tools/bench/sock_bench.c | deps
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $< -lpthread -o $@

$(SOCKCHECK): tools/sockcheck.c user/lib/sockcheck.h $(LIB) | deps
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $< $(LIB) -lpthread -o $@

$(HTTP_UPSTREAM): $(HTTP_UPSTREAM_SRCS) tools/http_upstream/upstream.h | deps
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $(HTTP_UPSTREAM_SRCS) -lpthread -o $@

# libFuzzer (clang) over the HTTP/1 parser, with ASan and UBSan; the seed
# corpus is tests/fuzz/corpus/http1, new finds go to $(BUILD)/fuzz/corpus.
$(FUZZ_HTTP1): tests/fuzz/fuzz_http1.c $(HTTP1_SRCS) user/sluice-proxy/http1.h \
		user/sluice-proxy/http1_internal.h | deps
	$(call msg,FUZZ-CC,$@)
	$(Q)mkdir -p $(@D) $(BUILD)/fuzz/corpus
	$(Q)clang -O1 -g -Iuser/sluice-proxy -fsanitize=fuzzer,address,undefined \
		-fno-sanitize-recover=undefined tests/fuzz/fuzz_http1.c $(HTTP1_SRCS) -o $@

fuzz: $(FUZZ_HTTP1)
	$(Q)$(FUZZ_HTTP1) -max_total_time=$(FUZZ_SECONDS) -max_len=8192 \
		$(BUILD)/fuzz/corpus tests/fuzz/corpus/http1

# The proxy, its upstream stub and the unit tests again with ASan and
# UBSan, in $(BUILD)/san (run_tests.sh's san layer runs them).
SAN_BUILD := $(BUILD)/san
san: | deps
	$(Q)$(MAKE) --no-print-directory SAN=1 BUILD=$(SAN_BUILD) $(SAN_BUILD)/sluice-proxy \
		$(SAN_BUILD)/tools/http_upstream $(patsubst $(BUILD)/%,$(SAN_BUILD)/%,$(UNIT_BINS))

# The README's test command: all four layers, then one summary line.
test: all san
	$(Q)tools/run_tests.sh $(BUILD) $(TESTS)

test-san: all san
	$(Q)tools/run_tests.sh $(BUILD) san

test-k8s: all
	$(Q)tools/run_tests.sh $(BUILD) k8s

test-unit: $(UNIT_BINS) $(BUILD)/sluice
	$(Q)tools/run_tests.sh $(BUILD) unit

test-bpf: $(BPFT_BINS)
	$(Q)tools/run_tests.sh $(BUILD) bpf

test-e2e: $(BINS) $(SOCKCHECK)
	$(Q)tools/run_tests.sh $(BUILD) e2e

# The container image (deploy/Containerfile), built with podman from Debian
# packages only (tools/image.sh: a debootstrap base, no registry), tagged
# localhost/sluice:$(IMAGE_TAG) and :latest (default tag: the agent's
# version); image-test runs it on a test topology (tests/image/).
IMAGE_TAG ?=
image:
	$(Q)tools/image.sh build $(IMAGE_TAG)

image-test: image
	$(Q)SLUICE_TEST_IMAGE=$$(tools/image.sh ref $(IMAGE_TAG)) bash tests/image/test_image.sh

bench: all
	$(Q)tools/bench/run.sh $(BUILD)

demo: all
	$(Q)tools/demo.sh up $(BUILD)

demo-down:
	$(Q)tools/demo.sh down $(BUILD)

check: all
	$(Q)tools/check.sh

format:
	$(Q)clang-format -i $$(git ls-files '*.c' '*.h' | grep -v '^vmlinux.h$$')

install: $(BINS)
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(BUILD)/sluiced $(DESTDIR)$(PREFIX)/sbin/sluiced
	install -m 0755 $(BUILD)/sluice-proxy $(DESTDIR)$(PREFIX)/sbin/sluice-proxy
	install -m 0755 $(BUILD)/sluice $(DESTDIR)$(PREFIX)/bin/sluice

# Regenerate the committed vmlinux.h from the running kernel's BTF.
vmlinux: | deps
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > vmlinux.h

clean:
	rm -rf $(BUILD)
