# switchyard build. `make` builds build/switchyard; see README.md for the rest.
# SAN=1 builds with AddressSanitizer + UndefinedBehaviorSanitizer (tests use
# BUILD=build/asan SAN=1 for the second pass).

BUILD ?= build
PKGS := libuv jansson libssl libcrypto libcurl libcares
CC ?= cc

WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wvla -Wformat=2 -Wno-unused-parameter
VERSION := $(shell cat VERSION 2>/dev/null || echo 0.0.0-dev)
BASE_CFLAGS := -std=c17 -D_GNU_SOURCE -Isrc $(WARN) -MMD -MP -DSY_VERSION='"$(VERSION)"'
ifeq ($(SAN),1)
OPT := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
SAN_LDFLAGS := -fsanitize=address,undefined
else
OPT := -O2 -g
SAN_LDFLAGS :=
endif

PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CFLAGS_ALL = $(BASE_CFLAGS) $(OPT) $(PKG_CFLAGS) $(CFLAGS)
LDLIBS_ALL = $(PKG_LIBS) -lcrypt -lpthread -lm

LIB_SRC := $(sort $(wildcard src/*/*.c))
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all test unit run bench fuzz soak deps clean format asan dist

all: $(BUILD)/switchyard

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -c $< -o $@

$(BUILD)/libswitchyard.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

# --version and switchyard_build_info report the VERSION file.
$(BUILD)/obj/src/main.o: VERSION
$(BUILD)/obj/src/core/metrics.o: VERSION

$(BUILD)/switchyard: $(BUILD)/obj/src/main.o $(BUILD)/libswitchyard.a
	$(CC) $(SAN_LDFLAGS) -o $@ $< $(BUILD)/libswitchyard.a $(LDLIBS_ALL)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libswitchyard.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(SAN_LDFLAGS) -Itests/unit -o $@ $< $(BUILD)/libswitchyard.a $(LDLIBS_ALL) -lcmocka

# parse_dump prints switchyard's parse of raw requests for the differential
# test against llhttp (tests/e2e/differential_parsing.test.mjs).
unit: $(UNIT_BIN) $(BUILD)/tests/parse_dump

asan:
	$(MAKE) BUILD=build/asan SAN=1 all unit

deps:
	@scripts/deps.sh

test: deps
	@tests/run.sh

run: deps all
	@scripts/run.sh

bench: deps all
	@bench/run.sh

fuzz: deps
	@fuzz/run.sh

# Not part of test: SOAK_SECONDS (600) of mixed traffic; see bench/soak.mjs.
soak: deps all
	@bench/soak.sh

format:
	clang-format -i src/*/*.c src/*/*.h src/main.c tests/unit/*.c fuzz/*.c

# The release tarball: every tracked file of HEAD (sources, tests, vectors,
# docs, deploy) under switchyard-VERSION/.
dist:
	@mkdir -p build
	git archive --format=tar.gz --prefix=switchyard-$(VERSION)/ -o build/switchyard-$(VERSION).tar.gz HEAD
	@echo "dist: build/switchyard-$(VERSION).tar.gz"

clean:
	rm -rf build

-include $(LIB_OBJ:.o=.d) $(BUILD)/obj/src/main.d
