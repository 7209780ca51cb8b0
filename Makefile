# aec — build, test, demo and benchmark.
#
#   make          build build/aec and the runtime library build/libaecrt.a
#   make deps     install the Debian packages aec needs (when missing)
#   make test     deps + build + every cmocka suite and end-to-end test
#   make demo     deps + build + train specs/fmnist_dense.ae on Fashion-MNIST
#   make bench    aec against the PyTorch reference (installs python3-torch)
#   make asan     build with -fsanitize=address,undefined into build-asan/

DEB_PACKAGES := flex bison llvm-dev libopenblas-dev liblapacke-dev libcmocka-dev zlib1g-dev \
                libjson-c-dev libpng-dev dataset-fashion-mnist \
                python3-numpy python3-matplotlib # examples/latent_scatter.py
BENCH_PACKAGES := python3-torch python3-numpy

B ?= build
CC ?= cc
LLVM_CONFIG ?= $(shell command -v llvm-config-14 || command -v llvm-config || echo llvm-config)
OPT ?= -O2
WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes
CFLAGS += -std=c11 $(OPT) -g -D_GNU_SOURCE $(WARN) $(SAN)
LLVM_CFLAGS = $(shell $(LLVM_CONFIG) --cflags 2>/dev/null | sed 's/-std=[^ ]*//')
LLVM_LIBS = $(shell $(LLVM_CONFIG) --ldflags --libs core orcjit native passes analysis target \
              bitwriter 2>/dev/null) $(shell $(LLVM_CONFIG) --system-libs 2>/dev/null)
RT_LIBS := -lopenblas -lpng -ljson-c -lz -lm -lpthread

COMPILER_SRC := $(filter-out compiler/main.c,$(wildcard compiler/*.c))
RUNTIME_SRC := $(wildcard runtime/*.c)
COMPILER_OBJ := $(COMPILER_SRC:%.c=$(B)/%.o) $(B)/grammar/lexer.o $(B)/grammar/parser.o
RUNTIME_OBJ := $(RUNTIME_SRC:%.c=$(B)/%.o)
TESTS := $(patsubst tests/%.c,$(B)/tests/%,$(wildcard tests/test_*.c))

.PHONY: all deps bench-deps test demo bench asan clean
all: $(B)/aec $(B)/libaecrt.a

deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	    dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	    echo "installing Debian packages:$$missing"; \
	    SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	    $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

bench-deps: deps
	@missing=""; for p in $(BENCH_PACKAGES); do \
	    dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	    SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	    $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

# The compiler knows where the runtime and its header live, to link trainers.
$(B)/compiler/driver.o: CFLAGS += -DAEC_RUNTIME_DIR='"$(abspath $(B))"' \
    -DAEC_INCLUDE_DIR='"$(abspath runtime)"' -DAEC_RT_LIBS='"$(RT_LIBS)"'

$(B)/grammar/lexer.c $(B)/grammar/lexer.h: grammar/lexer.l
	@mkdir -p $(dir $@)
	flex --header-file=$(B)/grammar/lexer.h -o $(B)/grammar/lexer.c $<

$(B)/grammar/parser.c $(B)/grammar/parser.h: grammar/parser.y
	@mkdir -p $(dir $@)
	bison -Wall --defines=$(B)/grammar/parser.h -o $(B)/grammar/parser.c $<

# Generated scanner/parser: the generators' own code is not held to our warnings.
$(B)/grammar/%.o: $(B)/grammar/%.c $(B)/grammar/parser.h $(B)/grammar/lexer.h
	$(CC) -std=c11 $(OPT) -g -D_GNU_SOURCE $(SAN) -Icompiler -I$(B)/grammar -c $< -o $@

$(B)/compiler/%.o: compiler/%.c compiler/*.h runtime/aec.h $(B)/grammar/parser.h $(B)/grammar/lexer.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LLVM_CFLAGS) -Icompiler -I$(B)/grammar -c $< -o $@

$(B)/runtime/%.o: runtime/%.c runtime/*.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Iruntime -c $< -o $@

$(B)/libaecc.a: $(COMPILER_OBJ)
	ar rcs $@ $^

$(B)/libaecrt.a: $(RUNTIME_OBJ)
	ar rcs $@ $^

# aec links the runtime too: `aec run` JIT-compiles a model and calls the
# trainer's aec_main in process, and --embed-weights reads safetensors with it.
$(B)/aec: $(B)/compiler/main.o $(B)/libaecc.a $(B)/libaecrt.a
	$(CC) $(CFLAGS) $^ $(LLVM_LIBS) $(RT_LIBS) -ldl -o $@

# Each suite links the compiler and runtime libraries; cmocka runs it.
$(B)/tests/%: tests/%.c tests/*.h $(B)/libaecc.a $(B)/libaecrt.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LLVM_CFLAGS) -Icompiler -Iruntime -I$(B)/grammar -Itests \
	    -DAEC_SOURCE_DIR='"$(abspath .)"' -DAEC_BUILD_DIR='"$(abspath $(B))"' \
	    $< $(B)/libaecc.a $(B)/libaecrt.a $(LLVM_LIBS) -lcmocka -llapacke $(RT_LIBS) -o $@

test: deps
	@$(MAKE) --no-print-directory all $(TESTS)
	@tests/run_tests.sh $(B)

demo: deps
	@$(MAKE) --no-print-directory all
	@examples/demo.sh $(B)

bench: bench-deps
	@$(MAKE) --no-print-directory all
	@bench/run.sh $(B)

asan:
	@$(MAKE) --no-print-directory B=build-asan OPT=-O1 SAN='-fsanitize=address,undefined' all

clean:
	rm -rf $(B) build-asan
