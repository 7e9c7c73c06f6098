# Makefile: the pure-C DDPM reference. Only libc and libm.
#
#   make            build the programs (toy2d, images) with float `real`
#   make test       build every source with real = double and run all tests
#   make test-san   the same tests under AddressSanitizer + UndefinedBehaviorSanitizer
#   make test-threads  OpenMP build: matmul and training on 2 threads give the same bits as on 1
#   make toy2d      build and run the 2D dog/cat story (pictures in out/toy2d/)
#   make images     build and run the small-image story (pictures in out/images/), then
#                   the class-conditional one (a class grid, one row per digit: out/images/cond/)
#   make fashion    train, sample and --eval on Fashion-MNIST (out/fashion/), about 15 minutes
#   make lab        the loss lab: every parametrization x weighting on dog/cat (out/lab/lab.md)
#   make notebooks  rerun every command quoted in notebooks_md/ and refresh outputs and pictures
#   make bench      speed of the default MLP and U-Net against this machine's FMA peak (dev/bench.c)
#   make fuzz       build the libFuzzer targets (tests/fuzz/, clang) and their seed corpora
#   make fuzz-smoke run each fuzz target a few seconds (skips if clang/libFuzzer is missing)
#   make clean      remove build/ and the programs (out/ is yours and is kept)
#
# CC and CFLAGS are overridable: `make CC=clang`, `make CFLAGS=-O1`, `make PORTABLE=1` (no
# -march=native), `make OMP=1` (the `#pragma omp` lines, each behind `#ifdef _OPENMP`, run on all cores; without it they
# are skipped, and the results are the same bits either way: `make test-threads`).
# CFLAGS holds only optimization and target: the language and the warnings (STD, WARN) are
# in every recipe whatever CFLAGS is. -ffp-contract=off (gcc implies it with -std=c11,
# clang does not) stops the compiler from fusing a·b + c on its own, so results are
# bit-reproducible; the fused multiply-adds the code asks for (fmaf in matmul.c) are
# exactly rounded, the same on every machine. -fno-math-errno only says that libm calls need
# not set errno (nothing here reads it): sqrtf becomes one instruction and the loops around
# it vectorize; no value changes. Never any fast-math option.

CC      ?= cc
OPT     ?= -O3
ARCH    := $(if $(PORTABLE),,-march=native)
CFLAGS  ?= $(OPT) $(ARCH)
STD     := -std=c11 -ffp-contract=off -fno-math-errno
WARN    := -Wall -Wextra -Wpedantic -Wshadow
OMPFLAG := $(if $(OMP),-fopenmp,)
# WARN before CFLAGS (CFLAGS=-Werror or -Wno-... still work), STD after it (it always holds)
COMPILE   = $(CC) $(WARN) $(CFLAGS) $(STD) $(OMPFLAG)
LDLIBS  := -lm $(OMPFLAG)

# The library: every top-level .c file except the programs (each has its own main).
PROGRAMS := toy2d images
PROGS   := $(basename $(filter $(PROGRAMS:=.c),$(wildcard *.c)))
LIB_SRC := $(filter-out $(PROGRAMS:=.c),$(wildcard *.c))
HEADERS := $(wildcard *.h) $(wildcard tests/*.h)
TESTS   := $(patsubst tests/%.c,%,$(wildcard tests/test_*.c))

.PHONY: all test test-san test-threads toy2d images fashion lab notebooks bench clean bins \
        fuzz fuzz-smoke FORCE

# The flags are part of what make compares: build/flags holds the compile command and is
# rewritten only when it changes (make CC=clang, PORTABLE=1, OMP=1, CFLAGS=...), and every
# object depends on it, so a changed flag rebuilds everything and an unchanged one nothing.
FLAGS_NOW  = $(COMPILE) | $(LDLIBS) | $(FUZZ_CC)
build/flags: FORCE
	@mkdir -p build
	@echo '$(FLAGS_NOW)' | cmp -s - $@ || echo '$(FLAGS_NOW)' > $@
HEADERS += build/flags

all: bins
bins: $(addprefix build/,$(PROGS))
	@for p in $(PROGS); do cp -f build/$$p ./$$p; done

# Programs: float build, objects in build/float/.
build/float/%.o: %.c $(HEADERS)
	@mkdir -p build/float
	$(COMPILE) -c $< -o $@
build/%: build/float/%.o $(LIB_SRC:%.c=build/float/%.o)
	$(COMPILE) $^ -o $@ $(LDLIBS)

# Tests: every source rebuilt with real = double (exact finite differences).
build/test/%.o: %.c $(HEADERS)
	@mkdir -p build/test/tests
	$(COMPILE) -DDDPM_DOUBLE -c $< -o $@
build/test/test_%: build/test/tests/test_%.o $(LIB_SRC:%.c=build/test/%.o)
	$(COMPILE) $^ -o $@ $(LDLIBS)

# The crash replays include the fuzz targets' code.
build/test/tests/test_fuzz_crashes.o build/san/tests/test_fuzz_crashes.o: $(wildcard tests/fuzz/*.c tests/fuzz/*.h)

# The matmul test once more in the programs' precision (float), against the float objects.
build/test/test_matmul_float: tests/test_matmul.c $(LIB_SRC:%.c=build/float/%.o) $(HEADERS)
	@mkdir -p build/test
	$(COMPILE) tests/test_matmul.c $(LIB_SRC:%.c=build/float/%.o) -o $@ $(LDLIBS)
FLOAT_TESTS := test_matmul_float

# Sanitized tests: -O1 keeps them quick, -fno-sanitize-recover makes any report fatal.
SAN := -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
build/san/%.o: %.c $(HEADERS)
	@mkdir -p build/san/tests
	$(CC) $(WARN) $(SAN) $(STD) -DDDPM_DOUBLE -c $< -o $@
build/san/test_%: build/san/tests/test_%.o $(LIB_SRC:%.c=build/san/%.o)
	$(CC) $(SAN) $^ -o $@ -lm

# The notebooks' numeric cells (notebooks_md/cells.c) with the double-precision library.
build/nb_cells: notebooks_md/cells.c $(LIB_SRC:%.c=build/test/%.o) $(HEADERS)
	$(COMPILE) -DDDPM_DOUBLE notebooks_md/cells.c $(LIB_SRC:%.c=build/test/%.o) -o $@ $(LDLIBS)

# Run all tests; tests/run.sh prints each file's line and the total
# "N passed, N failed", and exits non-zero if any test failed.
test: bins build/nb_cells $(TESTS:%=build/test/%) $(FLOAT_TESTS:%=build/test/%)
	@sh tests/run.sh $(TESTS:%=build/test/%) $(FLOAT_TESTS:%=build/test/%)

# (test_notebooks runs commands like ./build/test/test_ode, so the double tests are built too)
test-san: bins build/nb_cells $(TESTS:%=build/test/%) $(TESTS:%=build/san/%)
	@sh tests/run.sh $(TESTS:%=build/san/%)

# The stories, run with their defaults.
toy2d: build/toy2d
	@cp -f build/toy2d ./toy2d
	./toy2d
images: build/images
	@cp -f build/images ./images
	./images --save out/images/model.ckpt
	./images --cond --out out/images/cond --save out/images/cond/model.ckpt

# Fashion-MNIST from its Debian package (the .gz files are read directly); one line on
# how to get it when it is missing. FASHION_OPTS: the model and length chosen (README).
FASHION      ?= /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
FASHION_OPTS ?= --steps 3000 --eval 256
fashion: build/images
	@cp -f build/images ./images
	@if [ -f $(FASHION) ]; then \
	    ./images --data $(FASHION) $(FASHION_OPTS) --save out/fashion/model.ckpt --out out/fashion; \
	else echo "make fashion: $(FASHION) not found; get it with: apt-get install dataset-fashion-mnist"; exit 1; fi

lab: build/toy2d
	@cp -f build/toy2d ./toy2d
	./toy2d --lab --out out/lab

# (everything a notebook's command runs: the programs, the cells and every test binary)
# NB="06_unet_and_images.md 09_conditional_guidance.md": refresh only those notebooks.
NB ?=
notebooks: bins build/nb_cells $(TESTS:%=build/test/%)
	./build/test/test_notebooks --update $(NB)

# The benchmark, single-threaded and with OpenMP on two threads (objects in build/omp/,
# float), and the thread tests on the same OpenMP objects. The benchmark's threads wait as
# the programs' do (libgomp's default: spin a while, then sleep), for a quiet machine; the
# thread tests wait passively (OMP_WAIT_POLICY), as they share the machine with the others.
build/omp/%.o: %.c $(HEADERS)
	@mkdir -p build/omp
	$(CC) -Wall -Wextra -Wpedantic -Wshadow $(CFLAGS) $(STD) -fopenmp -c $< -o $@
build/bench: dev/bench.c $(LIB_SRC:%.c=build/float/%.o) $(HEADERS)
	$(COMPILE) dev/bench.c $(LIB_SRC:%.c=build/float/%.o) -o $@ $(LDLIBS)
build/bench_omp: dev/bench.c $(LIB_SRC:%.c=build/omp/%.o) $(HEADERS)
	$(COMPILE) -fopenmp dev/bench.c $(LIB_SRC:%.c=build/omp/%.o) -o $@ -lm -fopenmp
build/test_threads_omp: tests/test_threads.c $(LIB_SRC:%.c=build/omp/%.o) $(HEADERS)
	$(COMPILE) -fopenmp tests/test_threads.c $(LIB_SRC:%.c=build/omp/%.o) -o $@ -lm -fopenmp
build/test_matmul_omp: tests/test_matmul.c $(LIB_SRC:%.c=build/omp/%.o) $(HEADERS)
	$(COMPILE) -fopenmp tests/test_matmul.c $(LIB_SRC:%.c=build/omp/%.o) -o $@ -lm -fopenmp
test-threads: build/test_threads_omp build/test_matmul_omp
	@OMP_NUM_THREADS=2 OMP_WAIT_POLICY=passive sh tests/run.sh build/test_matmul_omp build/test_threads_omp
bench: build/bench build/bench_omp
	@echo "machine: $$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $$(nproc) cores, $$($(CC) --version | head -n 1); load average $$(cut -d' ' -f1-3 /proc/loadavg)"
	@line=$$(build/bench peak) && echo "$$line" && p=$$(echo "$$line" | sed -E 's/.*: ([0-9.]+) GFLOP.*/\1/'); \
	for w in mlp unet sample; do build/bench $$w $$p; \
	    OMP_NUM_THREADS=2 build/bench_omp $$w $$p; done

# Fuzz targets (tests/fuzz/fuzz_*.c): the library with ASan + UBSan and libFuzzer's
# coverage, one binary per reader; seeds written by the project's own writers. Long runs by
# hand: see README ("Fuzzing").
FUZZ_CC ?= clang
FUZZ_SAN := -g -O1 -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_BINS := $(patsubst tests/fuzz/%.c,build/fuzz/%,$(wildcard tests/fuzz/fuzz_*.c))
build/fuzz/lib/%.o: %.c $(HEADERS)
	@mkdir -p build/fuzz/lib
	$(FUZZ_CC) $(WARN) $(FUZZ_SAN) $(STD) -fsanitize=fuzzer-no-link -DDDPM_DOUBLE -c $< -o $@
build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_model.h $(LIB_SRC:%.c=build/fuzz/lib/%.o)
	$(FUZZ_CC) $(WARN) $(FUZZ_SAN) $(STD) -fsanitize=fuzzer -DDDPM_DOUBLE $< $(LIB_SRC:%.c=build/fuzz/lib/%.o) -o $@ -lm
build/fuzz/make_seeds: tests/fuzz/make_seeds.c tests/fuzz/fuzz_model.h $(LIB_SRC:%.c=build/test/%.o)
	@mkdir -p build/fuzz
	$(CC) $(CFLAGS) -DDDPM_DOUBLE $< $(LIB_SRC:%.c=build/test/%.o) -o $@ $(LDLIBS)
fuzz: $(FUZZ_BINS) build/fuzz/make_seeds
	@rm -rf build/fuzz/seeds && ./build/fuzz/make_seeds build/fuzz/seeds
fuzz-smoke:
	@sh tests/fuzz/smoke.sh

clean:
	rm -rf build $(PROGRAMS)

.SECONDARY:
