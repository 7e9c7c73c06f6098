/* test_fuzz_crashes.c: every input the fuzzers ever crashed on, replayed in `make test`.
 *
 * tests/fuzz/crashes/ holds each such input as a file named after its target
 * ("gz-099d4194ea00": fuzz_gz); here each one goes through the same checks as its fuzz
 * target (the targets' own code, included below under other names), so that under
 * `make test-san` the bug it found would be reported again. Found so far (issue 15):
 *   gz-*, idx-*, cifar-*  a gzip member with an empty stored block: gz.c added 0 to a NULL
 *                         output pointer (UBSan, clang) in the block copy and the CRC-32
 * Each replay must also refuse or load cleanly with one message, as the target checks.
 * Built with real = double; reads the files relative to the repository root.
 */
#define _POSIX_C_SOURCE 200809L   /* opendir */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define LLVMFuzzerTestOneInput fuzz_checkpoint_one
#include "fuzz/fuzz_checkpoint.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_idx_one
#include "fuzz/fuzz_idx.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_cifar_one
#include "fuzz/fuzz_cifar.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_gz_one
#include "fuzz/fuzz_gz.c"
#undef LLVMFuzzerTestOneInput

#define CRASH_DIR "tests/fuzz/crashes"

static const struct { const char *prefix; int (*one)(const uint8_t *, size_t); } TARGETS[] = {
    { "checkpoint-", fuzz_checkpoint_one }, { "idx-", fuzz_idx_one },
    { "cifar-", fuzz_cifar_one },           { "gz-", fuzz_gz_one },
};

int main(void) {
    DIR *d = opendir(CRASH_DIR);
    CHECK(d != NULL, "%s is readable (run from the repository root)", CRASH_DIR);
    int replayed = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        int (*one)(const uint8_t *, size_t) = NULL;
        for (size_t t = 0; t < sizeof TARGETS / sizeof TARGETS[0]; t++)
            if (strncmp(e->d_name, TARGETS[t].prefix, strlen(TARGETS[t].prefix)) == 0)
                one = TARGETS[t].one;
        CHECK(one != NULL, "%s: named after a fuzz target", e->d_name);
        if (!one) continue;
        char path[512];
        snprintf(path, sizeof path, "%s/%s", CRASH_DIR, e->d_name);
        FILE *f = fopen(path, "rb");
        static uint8_t buf[1 << 20];
        size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
        if (f) fclose(f);
        CHECK(f != NULL, "%s: readable", path);
        /* another target's input is fine too: every reader must survive every input */
        for (size_t t = 0; t < sizeof TARGETS / sizeof TARGETS[0]; t++) TARGETS[t].one(buf, n);
        replayed++;
    }
    if (d) closedir(d);
    CHECK(replayed >= 3, "replayed %d crash inputs", replayed);
    return test_summary("test_fuzz_crashes");
}
