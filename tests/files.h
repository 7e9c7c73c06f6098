/* files.h: whole files and temporaries, for the tests that write and check files
 * (test_checkpoint, test_io, test_kill, test_bad_inputs). Needs POSIX (opendir). */
#ifndef TEST_FILES_H
#define TEST_FILES_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../tensor.h"

/* The whole file, NUL-terminated (one byte more than *size), or NULL if it cannot open. */
static inline unsigned char *read_all(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = xmalloc((size_t)(n > 0 ? n : 0) + 1, "test file");
    *size = fread(buf, 1, (size_t)(n > 0 ? n : 0), f);
    buf[*size] = 0;
    fclose(f);
    return buf;
}

/* Temporaries of io.h in folder dir: names containing ".tmp."; with remove_them, removed. */
static inline int temporaries_in(const char *dir, int remove_them) {
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    char p[1024];
    while (d && (e = readdir(d)) != NULL) {
        if (!strstr(e->d_name, ".tmp.")) continue;
        n++;
        if (remove_them) { snprintf(p, sizeof p, "%s/%s", dir, e->d_name); remove(p); }
    }
    if (d) closedir(d);
    return n;
}

#endif
