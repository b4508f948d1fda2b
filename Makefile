# mod_auth_idtoken: the Swift core (libIDToken.so) and the thin Apache module around it.
#   make            build both into build/
#   make install    install into Apache's module folder (apxs), plus the Debian .load file
#   make deb        libapache2-mod-auth-idtoken_<version>_amd64.deb in build/ (scripts/build-deb.sh)
#   make demo       local Apache + demo provider on 127.0.0.1, prints the URL to open
#   make test       unit tests and end-to-end tests against a real Apache
#   make bench      plain Apache, this module and mod_auth_openidc side by side (bench/README.md)
#   make instructions   the same, counted in instructions by callgrind
#   make soak       10^6 requests and 10^4 logins, memory per child sampled
#   make fuzz       libFuzzer on each parser that meets outside input (FUZZ_SECONDS=60 each)
SHELL := /bin/bash
APXS ?= $(shell command -v apxs || command -v apxs2 || echo /usr/bin/apxs)
SWIFT ?= swift
BUILD := build
SWIFT_RELEASE := .build/release

# Static Swift runtime: one self-contained library beside the module. -z nodelete: httpd unloads and
# reloads modules at start-up and on graceful restart, and the Swift runtime cannot survive an unload.
# The version script exports only the idt_* ABI.
# Size (docs/internals.md, "How libIDToken.so is built"): the C and C++ of the dependencies (BoringSSL)
# in one section per function and object, so that --gc-sections (SwiftPM's default) drops what nothing
# uses; linked by lld with its relative relocations packed (DT_RELR, glibc >= 2.36). Swift code too in
# a section per function (swiftc does not do that by itself on Linux): fewer bytes, and lld can then
# place each function where the symbol ordering file below says. A changed -Xswiftc flag did not make
# SwiftPM 6.3 recompile the objects: `make clean` after changing one.
SWIFT_LINK_FLAGS := -Xswiftc -static-stdlib -Xlinker -z -Xlinker nodelete \
	-Xlinker --version-script=$(CURDIR)/CShim/exports.map \
	-Xcc -ffunction-sections -Xcc -fdata-sections \
	-Xswiftc -use-ld=lld -Xlinker -z -Xlinker pack-relative-relocs \
	-Xswiftc -Xfrontend -Xswiftc -function-sections
# The functions a child runs (start-up, requests, logins) packed together at the start of .text, so that
# a child faults in a few hundred KB of the library's text instead of pages all over 11 MB of it
# (bench/hot_symbols.py makes the list from a profile). Only a layout hint: a name the list has and the
# build does not is skipped without a warning, and without the file the library is linked as before.
HOT_SYMBOLS := $(wildcard $(CURDIR)/build-support/hot-symbols.txt)
ifneq ($(HOT_SYMBOLS),)
SWIFT_LINK_FLAGS += -Xlinker --symbol-ordering-file=$(HOT_SYMBOLS) -Xlinker --no-warn-symbol-ordering
endif
# lld's link map: which input section each function landed in, for bench/hot_symbols.py (and for finding
# where the size goes).
SWIFT_LINK_FLAGS += -Xlinker -Map=$(CURDIR)/.build/libIDToken.map

SWIFT_SOURCES := $(shell find Sources CShim -type f) Package.swift $(HOT_SYMBOLS)

.PHONY: all swift module install deb demo test unit e2e deps bench instructions soak fuzz fuzz-replay clean

all: module

$(BUILD)/libIDToken.so: $(SWIFT_SOURCES)
	@# SwiftPM does not see the ordering file as an input: a newer list relinks only if the library is gone.
	@if [ -n "$(HOT_SYMBOLS)" ] && [ "$(HOT_SYMBOLS)" -nt $(SWIFT_RELEASE)/libIDToken.so ]; then \
		rm -f $(SWIFT_RELEASE)/libIDToken.so; fi
	$(SWIFT) build -c release --product IDToken $(SWIFT_LINK_FLAGS)
	@mkdir -p $(BUILD)
	# Copied then renamed: overwriting the file in place would crash any httpd that has it mapped.
	cp $(SWIFT_RELEASE)/libIDToken.so $@.tmp
	strip --strip-unneeded $@.tmp
	mv -f $@.tmp $@

swift: $(BUILD)/libIDToken.so

MODULE_SOURCES := mod_auth_idtoken.c idtoken_config.c idtoken_sites.c idtoken_store.c idtoken_filestore.c \
	idtoken_table.c idtoken_table_file.c idtoken_table_repair.c idtoken_redis.c idtoken_redis_pool.c idtoken_redis_store.c idtoken_redis_conn.c \
	idtoken_request.c idtoken_authz.c idtoken_metrics.c

# apxs rewrites -Wl,-rpath into something libtool drops; -Wl,-Wl,-rpath survives (docs/internals.md).
$(BUILD)/mod_auth_idtoken.so: $(addprefix apache/,$(MODULE_SOURCES)) apache/idtoken_internal.h apache/idtoken_table.h apache/idtoken_table_format.h \
		apache/idtoken_redis.h apache/idtoken_redis_conn.h \
		apache/directives.inc \
		CShim/include/idtoken.h $(BUILD)/libIDToken.so
	cd apache && $(APXS) -c -Wc,-Wall -Wc,-Wextra -Wc,-Werror -I ../CShim/include \
		-L ../$(BUILD) -lIDToken -lhiredis -lssl -lcrypto -Wl,-Wl,-rpath,'\$$ORIGIN:\$$ORIGIN/../../libapache2-mod-auth-idtoken' -o mod_auth_idtoken.so $(MODULE_SOURCES)
	cp apache/.libs/mod_auth_idtoken.so $@.tmp
	mv -f $@.tmp $@
	rm -rf apache/.libs apache/*.lo apache/*.la apache/*.slo apache/*.o

module: $(BUILD)/mod_auth_idtoken.so

deb: module
	./scripts/build-deb.sh

install: module
	$(eval LIBEXEC := $(shell $(APXS) -q LIBEXECDIR))
	install -d $(DESTDIR)$(LIBEXEC)
	install -m 644 $(BUILD)/libIDToken.so $(DESTDIR)$(LIBEXEC)/libIDToken.so
	install -m 644 $(BUILD)/mod_auth_idtoken.so $(DESTDIR)$(LIBEXEC)/mod_auth_idtoken.so
	if [ -d /etc/apache2/mods-available ] || [ -n "$(DESTDIR)" ]; then \
		install -d $(DESTDIR)/etc/apache2/mods-available; \
		install -m 644 apache/auth_idtoken.load $(DESTDIR)/etc/apache2/mods-available/auth_idtoken.load; \
		install -m 644 apache/auth_idtoken.conf $(DESTDIR)/etc/apache2/mods-available/auth_idtoken.conf; fi
	@echo "installed into $(LIBEXEC); on Debian: a2enmod auth_idtoken"

deps:
	./scripts/install-deps.sh

demo: deps module
	./scripts/demo.sh

unit:
	$(SWIFT) test

e2e: module
	python3 -m pytest Tests/e2e -q

test: deps
	./scripts/test.sh

# Plain Apache, this module (cookie and cache sessions) and mod_auth_openidc side by side; see bench/README.md.
bench: module
	python3 bench/run.py

# Instructions per request and per login under valgrind's callgrind: repeatable on a noisy machine.
instructions: module
	python3 bench/instructions.py

# libFuzzer on every parser that meets outside input, FUZZ_SECONDS each (Fuzz/README.md);
# fuzz-replay runs the committed corpora through the fuzz builds (swift test replays them too).
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?=
fuzz:
	bash Fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-replay:
	bash Fuzz/run.sh replay $(FUZZ_TARGETS)

# The soak: 10^6 protected requests and 10^4 logins, each child's memory sampled; see bench/README.md.
soak: module
	python3 bench/soak.py

clean:
	rm -rf $(BUILD) .build .build-fuzz
