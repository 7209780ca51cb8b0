# aec — build, test, demo and benchmark.
#
#   make          build build/aec, the runtime library build/libaecrt.a and, where
#                 mpicc is installed, its MPI layer build/libaecrt_mpi.a (aec build --mpi)
#   make deps     install the Debian packages aec needs (when missing)
#   make test     deps + build + every cmocka suite and end-to-end test (minutes)
#   make test-blas  the same suites with OpenBLAS's products (AEC_GEMM=blas), the reference backend
#   make check    the fast tier: the unit and golden suites, the layering (seconds)
#   make demo     deps + build + train specs/fmnist_dense.ae on Fashion-MNIST
#   make bench    aec against the PyTorch reference (installs python3-torch), and
#                 data-parallel training on 1 and 2 MPI ranks (bench/mpi.sh)
#   make asan     build with -fsanitize=address,undefined into build-asan/ and run `check`'s
#                 suites there (every report fatal); only the fast tier
#   make asan-test  every suite and end-to-end test under ASan+UBSan (build-asan/)
#   make install  PREFIX=/usr/local DESTDIR=: bin/aec, lib/libaecrt.a, include/aec/aec.h,
#                 lib/pkgconfig/aec.pc, man pages, docs, editor files; `make uninstall`
#   make layers   check that the runtime's and the compiler's modules use each other in
#                 layers, with no cycle
#   make fuzz     run each libFuzzer target in tests/fuzz/ for FUZZ_SECONDS under ASan+UBSan
#                 (installs FUZZ_PACKAGES; builds into build-fuzz/; docs/reliability.md)
#   make format-check  fail if a tracked .c/.h file differs from clang-format's (.clang-format);
#                 `make format` rewrites them

DEB_PACKAGES := flex bison llvm-dev libopenblas-dev liblapacke-dev libcmocka-dev zlib1g-dev \
                libjson-c-dev libpng-dev dataset-fashion-mnist \
                libplplot-dev plplot-driver-cairo \
                libopenmpi-dev openmpi-bin \
                python3-numpy python3-matplotlib \
                lowdown \
                clang-format \
                libprotobuf-c-dev protobuf-c-compiler python3-onnx \
                qemu-user gcc-aarch64-linux-gnu libc6-dev-arm64-cross
# python3-onnx: ONNX export and its onnx.proto; qemu-user and the aarch64 gcc:
# tests/e2e/cross.sh links and runs the aarch64 objects aec emits
BENCH_PACKAGES := python3-torch python3-numpy time
# Only `make fuzz` needs these (clang's libFuzzer and sanitizer runtimes), so
# `make test` does not install them.
FUZZ_PACKAGES := clang libclang-rt-14-dev

VERSION := 0.1.0
B ?= build
CC ?= cc
LLVM_CONFIG ?= $(shell command -v llvm-config-14 || command -v llvm-config || echo llvm-config)
OPT ?= -O2
WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes
CFLAGS += -std=c11 $(OPT) -g -D_GNU_SOURCE $(WARN) $(SAN)
# Every object records the headers it includes (build/**/*.d, read below),
# so changing a header rebuilds exactly what includes it.
DEPFLAGS = -MMD -MP
LLVM_CFLAGS = $(shell $(LLVM_CONFIG) --cflags 2>/dev/null | sed 's/-std=[^ ]*//')
LLVM_LIBS = $(shell $(LLVM_CONFIG) --ldflags --libs core orcjit native passes analysis target \
              bitwriter 2>/dev/null) $(shell $(LLVM_CONFIG) --system-libs 2>/dev/null)
RT_LIBS := -lopenblas -llapacke -lplplot -lpng -ljson-c -lprotobuf-c -lz -lm -lpthread
# ONNX export: python3-onnx's onnx.proto, compiled by protoc-c at build time.
ONNX_PROTO ?= $(firstword $(shell dpkg -L python3-onnx 2>/dev/null | grep '/onnx/onnx\.proto$$') \
                /usr/lib/python3/dist-packages/onnx/onnx.proto)
# What a model object alone needs (DESIGN §4: libc, libm and a CBLAS).
MODEL_LIBS := -lopenblas -lm
GEMM_DEFAULT := aec

# Install layout. The installed aec finds the runtime from its own location
# (BINDIR/../lib, BINDIR/../include/aec), so the tree can be moved whole.
PREFIX ?= /usr/local
BINDIR := $(PREFIX)/bin
LIBDIR := $(PREFIX)/lib
INCLUDEDIR := $(PREFIX)/include
DATADIR := $(PREFIX)/share
MANDIR := $(DATADIR)/man
DOCDIR := $(DATADIR)/doc/aec
MAN_PAGES := $(B)/man/aec.1 $(B)/man/aec.5 $(B)/man/aec-trainer.1
GENERATED := $(B)/share/bash-completion/aec $(B)/editors/vim/syntax/ae.vim \
    $(B)/editors/vscode/syntaxes/ae.tmLanguage.json
VIMDIR := $(DATADIR)/vim/vimfiles
VSCODEDIR := $(DATADIR)/aec/vscode
# The MPI layer (runtime/mpi.c) is compiled with mpicc's flags into its own
# archive; only `aec build --mpi` links it, with MPI_LIBS.
MPICC ?= mpicc
MPI_CFLAGS := $(shell $(MPICC) --showme:compile 2>/dev/null)
MPI_LIBS := $(shell $(MPICC) --showme:link 2>/dev/null)
MPI_LIB := $(if $(MPI_LIBS),$(B)/libaecrt_mpi.a)

COMPILER_SRC := $(filter-out compiler/main.c,$(wildcard compiler/*.c))
RUNTIME_SRC := $(filter-out runtime/mpi.c,$(wildcard runtime/*.c))
COMPILER_OBJ := $(COMPILER_SRC:%.c=$(B)/%.o) $(B)/grammar/lexer.o $(B)/grammar/parser.o
RUNTIME_OBJ := $(RUNTIME_SRC:%.c=$(B)/%.o) $(B)/onnx/onnx.pb-c.o
TESTS := $(patsubst tests/%.c,$(B)/tests/%,$(wildcard tests/test_*.c))
# The suites that train models or check gradients spec by spec (tens of
# seconds each): `make test` runs them, `make check` leaves them out. A new
# suite is in the fast tier unless it is listed here.
SLOW_TESTS := test_conv test_e2e test_emit test_grad test_reg_effects test_regularizers
CHECK_TESTS := $(filter-out $(addprefix $(B)/tests/,$(SLOW_TESTS)),$(TESTS))
CLANG_FORMAT ?= clang-format
FORMAT_FILES = $(shell git ls-files '*.c' '*.h')
SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
SAN_ENV := ASAN_OPTIONS=halt_on_error=1:detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

.PHONY: all deps bench-deps test test-blas check demo bench asan layers format format-check clean \
    install uninstall FORCE fuzz-deps fuzz asan-test
all: $(B)/aec $(B)/libaecrt.a $(B)/aec.pc $(MAN_PAGES) $(GENERATED)
all: $(MPI_LIB) # the MPI layer, where mpicc is installed

deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	    dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	    echo "installing Debian packages:$$missing"; \
	    SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	    $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

fuzz-deps: PKGS = $(FUZZ_PACKAGES)
bench-deps: PKGS = $(BENCH_PACKAGES)
fuzz-deps bench-deps: deps
	@missing=""; for p in $(PKGS); do \
	    dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	    SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	    $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

# The build's facts, one place: version, LLVM, GEMM backend, link lines and
# where the build tree keeps the runtime (the fallback when aec runs from
# it). Rewritten only when a fact changes, so nothing rebuilds needlessly.
$(B)/config.h: FORCE
	@mkdir -p $(B)
	@{ echo '/* config.h — generated by the Makefile: the build'"'"'s facts. */'; \
	   echo '#define AEC_VERSION "$(VERSION)"'; \
	   echo '#define AEC_LLVM_VERSION "$(shell $(LLVM_CONFIG) --version 2>/dev/null)"'; \
	   echo '#define AEC_GEMM_DEFAULT "$(GEMM_DEFAULT)"'; \
	   echo '#define AEC_RT_LIBS "$(RT_LIBS)"'; \
	   echo '#define AEC_MODEL_LIBS "$(MODEL_LIBS)"'; \
	   echo '#define AEC_MPI_LIBS "$(MPI_LIBS)"'; \
	   echo '#define AEC_BUILD_LIB_DIR "$(abspath $(B))"'; \
	   echo '#define AEC_BUILD_INCLUDE_DIR "$(abspath runtime)"'; \
	} > $@.tmp; cmp -s $@.tmp $@ && rm $@.tmp || mv $@.tmp $@

$(B)/compiler/driver.o $(B)/compiler/main.o $(B)/compiler/emit.o $(B)/compiler/abi.o \
    $(B)/runtime/cli.o $(B)/runtime/onnx.o: $(B)/config.h

# pkg-config: `cc app.c m.o $$(pkg-config --cflags --libs aec)`. The same
# RT_LIBS the installed aec links trainers with.
$(B)/aec.pc: aec.pc.in FORCE
	@mkdir -p $(B)
	@sed -e 's|@PREFIX@|$(PREFIX)|; s|@LIBDIR@|$(LIBDIR)|; s|@INCLUDEDIR@|$(INCLUDEDIR)|' \
	    -e 's|@VERSION@|$(VERSION)|; s|@RT_LIBS@|$(RT_LIBS)|' $< > $@.tmp; \
	cmp -s $@.tmp $@ && rm $@.tmp || mv $@.tmp $@

$(B)/grammar/lexer.c $(B)/grammar/lexer.h: grammar/lexer.l
	@mkdir -p $(dir $@)
	flex --header-file=$(B)/grammar/lexer.h -o $(B)/grammar/lexer.c $<

$(B)/grammar/parser.c $(B)/grammar/parser.h: grammar/parser.y
	@mkdir -p $(dir $@)
	bison -Wall --defines=$(B)/grammar/parser.h -o $(B)/grammar/parser.c $<

# Generated scanner/parser: the generators' own code is not held to our warnings.
$(B)/grammar/%.o: $(B)/grammar/%.c $(B)/grammar/%.d $(B)/grammar/parser.h $(B)/grammar/lexer.h
	$(CC) -std=c11 $(OPT) -g -D_GNU_SOURCE $(SAN) $(DEPFLAGS) -Icompiler -I$(B)/grammar -c $< -o $@

# Headers are prerequisites through the .d files; the generated ones must
# exist before the first compile, which has none yet. An object whose .d is
# missing (a build tree from before -MMD) is rebuilt: the .d's empty rule
# makes it count as new.
$(B)/compiler/%.o: compiler/%.c $(B)/compiler/%.d | $(B)/grammar/parser.h $(B)/grammar/lexer.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(DEPFLAGS) $(LLVM_CFLAGS) -Icompiler -I$(B)/grammar -I$(B) -c $< -o $@

$(B)/runtime/%.o: runtime/%.c $(B)/runtime/%.d
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(DEPFLAGS) -Iruntime -I$(B) -I$(B)/onnx -c $< -o $@

# The ONNX protobuf messages, generated from onnx.proto (not in the tree).
$(B)/onnx/onnx.pb-c.c $(B)/onnx/onnx.pb-c.h: $(ONNX_PROTO)
	@mkdir -p $(B)/onnx
	cp $< $(B)/onnx/onnx.proto
	cd $(B)/onnx && protoc-c --c_out=. onnx.proto
$(B)/onnx/onnx.pb-c.o: $(B)/onnx/onnx.pb-c.c
	$(CC) -std=c11 $(OPT) -g $(SAN) -I$(B)/onnx -c $< -o $@
$(B)/runtime/onnx.o: $(B)/onnx/onnx.pb-c.h

$(B)/runtime/mpi.o: runtime/mpi.c runtime/*.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(MPI_CFLAGS) -Iruntime -c $< -o $@

$(B)/libaecrt_mpi.a: $(B)/runtime/mpi.o
	ar rcs $@ $^

$(B)/libaecc.a: $(COMPILER_OBJ)
	rm -f $@ && ar rcs $@ $^

$(B)/libaecrt.a: $(RUNTIME_OBJ)
	rm -f $@ && ar rcs $@ $^

# aec links the runtime too: `aec run` JIT-compiles a model and calls the
# trainer's aec_main in process, and --embed-weights reads safetensors with it.
$(B)/aec: $(B)/compiler/main.o $(B)/libaecc.a $(B)/libaecrt.a
	$(CC) $(CFLAGS) $^ $(LLVM_LIBS) $(RT_LIBS) -ldl -o $@

# Each suite links the compiler and runtime libraries; cmocka runs it.
$(B)/tests/%: tests/%.c $(B)/tests/%.d $(B)/libaecc.a $(B)/libaecrt.a \
    | $(B)/grammar/parser.h $(B)/grammar/lexer.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(DEPFLAGS) -MF $@.d -MT $@ $(LLVM_CFLAGS) -Icompiler -Iruntime -I$(B)/grammar -Itests \
	    -DAEC_SOURCE_DIR='"$(abspath .)"' -DAEC_BUILD_DIR='"$(abspath $(B))"' \
	    $< $(B)/libaecc.a $(B)/libaecrt.a $(LLVM_LIBS) -lcmocka -llapacke $(RT_LIBS) -o $@

test: deps
	@$(MAKE) --no-print-directory all $(TESTS)
	@tests/run_tests.sh $(B)
	@out=$$(tests/layers.sh $(B) 2>&1) || { echo "$$out"; exit 1; }; echo "$$out" | tail -1
	@out=$$(tests/compiler_layers.sh $(B) 2>&1) || { echo "$$out"; exit 1; }; echo "$$out" | tail -1
	@$(MAKE) --no-print-directory format-check

# The fast tier: unit and golden suites, the layering and the formatting.
check:
	@$(MAKE) --no-print-directory all $(CHECK_TESTS)
	@$(MAKE) --no-print-directory format-check
	@tests/run_tests.sh $(B) $(notdir $(CHECK_TESTS))
	@out=$$(tests/layers.sh $(B) 2>&1) || { echo "$$out"; exit 1; }; echo "$$out" | tail -1
	@out=$$(tests/compiler_layers.sh $(B) 2>&1) || { echo "$$out"; exit 1; }; echo "$$out" | tail -1

# Every suite again with `--gemm blas` as the default: both backends pass.
test-blas: deps
	@$(MAKE) --no-print-directory all $(TESTS)
	@AEC_GEMM=blas tests/run_tests.sh $(B)

demo: deps
	@$(MAKE) --no-print-directory all
	@examples/demo.sh $(B)

# The GEMM benchmark: the generated kernels against OpenBLAS and the FMA peak.
$(B)/bench/bench_gemm: bench/bench_gemm.c tests/gemm_jit.h $(B)/libaecc.a $(B)/libaecrt.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LLVM_CFLAGS) -Icompiler -Iruntime -Itests $< $(B)/libaecc.a $(B)/libaecrt.a \
	    $(LLVM_LIBS) $(RT_LIBS) -o $@

bench: bench-deps
	@$(MAKE) --no-print-directory all $(B)/bench/bench_gemm
	@bench/run.sh $(B)
	@bench/mpi.sh $(B)

# The fast tier's suites under AddressSanitizer and UndefinedBehaviorSanitizer:
# any report ends the suite with a failure (-fno-sanitize-recover, halt_on_error),
# leaks included.
asan:
	@$(MAKE) --no-print-directory B=build-asan OPT=-O1 SAN='$(SAN_FLAGS)' all \
	    $(subst $(B)/,build-asan/,$(CHECK_TESTS))
	@$(SAN_ENV) tests/run_tests.sh build-asan $(notdir $(CHECK_TESTS))

# clang-format 14 with the repo's .clang-format; prints each difference.
format-check:
	@$(CLANG_FORMAT) --dry-run --Werror $(FORMAT_FILES)

format:
	$(CLANG_FORMAT) -i $(FORMAT_FILES)

# What each runtime and compiler object uses, read with nm (tests/layers.sh,
# tests/compiler_layers.sh).
layers: $(RUNTIME_OBJ) $(COMPILER_OBJ)
	@tests/layers.sh $(B)
	@tests/compiler_layers.sh $(B)

# Every cmocka suite and end-to-end test under ASan+UBSan, halting on the
# first report (docs/reliability.md). The compiler, the runtime and the
# suites are instrumented; the trainers `aec build` links there get the
# sanitizers through RT_LIBS, and the test scripts' own C programs through
# build-asan/cc (a cc that adds them). Generated model code is not
# instrumented (LLVM emits it), but every buffer it touches is the runtime's.
# AEC_SANITIZED tells scripts that valgrind cannot run these programs
# (`make test` runs the valgrind checks).
ASAN_SAN := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
ASAN_ENV := ASAN_OPTIONS=halt_on_error=1:detect_leaks=1:abort_on_error=0 \
            LSAN_OPTIONS=suppressions=$(abspath tests/lsan.supp) \
            UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 AEC_SANITIZED=address
asan-test: deps
	@$(MAKE) --no-print-directory B=build-asan OPT=-O1 SAN='$(ASAN_SAN)' \
	    RT_LIBS='$(ASAN_SAN) $(RT_LIBS)' all $(TESTS:$(B)/%=build-asan/%)
	@printf '#!/bin/sh\nexec $(CC) $(ASAN_SAN) "$$@"\n' > build-asan/cc && chmod +x build-asan/cc
	@start=$$(date +%s); CC=$(abspath build-asan/cc) $(ASAN_ENV) tests/run_tests.sh build-asan; \
	    st=$$?; echo "asan-test: $$(( $$(date +%s) - start )) s"; exit $$st

# libFuzzer targets: the libraries built by clang with coverage
# instrumentation and ASan+UBSan (every UB report fatal), each target linked
# with -fsanitize=fuzzer. tests/fuzz/run.sh runs them on the seed corpora.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := $(patsubst tests/fuzz/%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=all -fsanitize=fuzzer-no-link

$(B)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(B)/libaecc.a $(B)/libaecrt.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fsanitize=fuzzer $(LLVM_CFLAGS) -Icompiler -Iruntime -I$(B)/grammar \
	    $< $(B)/libaecc.a $(B)/libaecrt.a $(LLVM_LIBS) $(RT_LIBS) -o $@

fuzz: fuzz-deps
	@$(MAKE) --no-print-directory B=build-fuzz CC=clang OPT=-O1 SAN='$(FUZZ_SAN)' \
	    $(FUZZ_TARGETS:%=build-fuzz/fuzz/%)
	@tests/fuzz/run.sh build-fuzz $(FUZZ_SECONDS) $(FUZZ_TARGETS)

clean:
	rm -rf $(B) build-asan build-fuzz

# ---------------------------------------------------------------- man pages
# aec(1) and aec(5) are docs/aec.md and docs/language.md, converted by
# lowdown, so the man page and the web page are one text.
LOWDOWN := lowdown -s -Tman --parse-no-intraemph --out-no-smarty -m 'date: $(VERSION)' -m 'source: aec $(VERSION)'
$(B)/man/aec.1: docs/aec.md
	@mkdir -p $(dir $@)
	$(LOWDOWN) -M title=aec -M section=1 $< > $@
$(B)/man/aec.5: docs/language.md
	@mkdir -p $(dir $@)
	$(LOWDOWN) -M title=aec -M section=5 $< > $@

# aecgen writes what is generated from aec's own tables (tools/aecgen.c).
$(B)/aecgen: tools/aecgen.c $(B)/aecgen.d $(B)/libaecc.a $(B)/libaecrt.a
	$(CC) $(CFLAGS) $(DEPFLAGS) -MF $@.d -MT $@ -Icompiler -Iruntime -I$(B) $< \
	    $(B)/libaecc.a $(B)/libaecrt.a $(LLVM_LIBS) $(RT_LIBS) -o $@
$(B)/man/aec-trainer.1: $(B)/aecgen
	@mkdir -p $(dir $@)
	$(B)/aecgen man-trainer > $@
$(B)/share/bash-completion/aec: $(B)/aecgen
	@mkdir -p $(dir $@)
	$(B)/aecgen bash > $@
$(B)/editors/vim/syntax/ae.vim: $(B)/aecgen
	@mkdir -p $(dir $@)
	$(B)/aecgen vim > $@
$(B)/editors/vscode/syntaxes/ae.tmLanguage.json: $(B)/aecgen
	@mkdir -p $(dir $@)
	$(B)/aecgen tmlanguage > $@

# ------------------------------------------------------------------ install
DOCS := README.md $(wildcard docs/*.md)
INSTALLED := $(BINDIR)/aec $(LIBDIR)/libaecrt.a $(INCLUDEDIR)/aec/aec.h \
    $(LIBDIR)/pkgconfig/aec.pc $(MANDIR)/man1/aec.1 $(MANDIR)/man5/aec.5 \
    $(MANDIR)/man1/aec-trainer.1 $(DATADIR)/bash-completion/completions/aec \
    $(VIMDIR)/syntax/ae.vim $(VIMDIR)/ftdetect/ae.vim $(VIMDIR)/ftplugin/ae.vim \
    $(VSCODEDIR)/package.json $(VSCODEDIR)/language-configuration.json \
    $(VSCODEDIR)/syntaxes/ae.tmLanguage.json \
    $(addprefix $(DOCDIR)/,$(notdir $(DOCS))) $(if $(MPI_LIB),$(LIBDIR)/libaecrt_mpi.a)

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCLUDEDIR)/aec \
	    $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(DOCDIR) \
	    $(DESTDIR)$(DATADIR)/bash-completion/completions $(DESTDIR)$(VIMDIR)/syntax \
	    $(DESTDIR)$(VIMDIR)/ftdetect $(DESTDIR)$(VIMDIR)/ftplugin $(DESTDIR)$(VSCODEDIR)/syntaxes
	install -m 755 $(B)/aec $(DESTDIR)$(BINDIR)/aec
	install -m 644 $(B)/libaecrt.a $(DESTDIR)$(LIBDIR)/libaecrt.a
	$(if $(MPI_LIB),install -m 644 $(MPI_LIB) $(DESTDIR)$(LIBDIR)/libaecrt_mpi.a)
	install -m 644 runtime/aec.h $(DESTDIR)$(INCLUDEDIR)/aec/aec.h
	install -m 644 $(B)/aec.pc $(DESTDIR)$(LIBDIR)/pkgconfig/aec.pc
	install -m 644 $(B)/man/aec.1 $(DESTDIR)$(MANDIR)/man1/aec.1
	install -m 644 $(B)/man/aec.5 $(DESTDIR)$(MANDIR)/man5/aec.5
	install -m 644 $(B)/man/aec-trainer.1 $(DESTDIR)$(MANDIR)/man1/aec-trainer.1
	install -m 644 $(B)/share/bash-completion/aec $(DESTDIR)$(DATADIR)/bash-completion/completions/aec
	install -m 644 $(DOCS) $(DESTDIR)$(DOCDIR)/
	install -m 644 $(B)/editors/vim/syntax/ae.vim $(DESTDIR)$(VIMDIR)/syntax/ae.vim
	install -m 644 editors/vim/ftdetect/ae.vim $(DESTDIR)$(VIMDIR)/ftdetect/ae.vim
	install -m 644 editors/vim/ftplugin/ae.vim $(DESTDIR)$(VIMDIR)/ftplugin/ae.vim
	install -m 644 editors/vscode/package.json editors/vscode/language-configuration.json \
	    $(DESTDIR)$(VSCODEDIR)/
	install -m 644 $(B)/editors/vscode/syntaxes/ae.tmLanguage.json \
	    $(DESTDIR)$(VSCODEDIR)/syntaxes/ae.tmLanguage.json

uninstall:
	rm -f $(addprefix $(DESTDIR),$(INSTALLED))
	-rmdir $(DESTDIR)$(INCLUDEDIR)/aec $(DESTDIR)$(DOCDIR) $(DESTDIR)$(VSCODEDIR)/syntaxes \
	    $(DESTDIR)$(VSCODEDIR) $(DESTDIR)$(DATADIR)/aec 2>/dev/null

# The .d files are named as targets (no rule: a missing one counts as new,
# which rebuilds its object) and read when they exist.
DEP_FILES := $(COMPILER_OBJ:.o=.d) $(RUNTIME_OBJ:.o=.d) $(B)/compiler/main.d $(TESTS:=.d) \
    $(B)/aecgen.d
$(DEP_FILES):
-include $(wildcard $(DEP_FILES))
