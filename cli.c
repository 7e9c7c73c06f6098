/* cli.c: options, time and folders for the programs (see cli.h). */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "tensor.h"

void cli_split(const char *program, char **argv, int i, char *name, int len, const char **value) {
    const char *arg = argv[i], *eq = strchr(arg, '=');
    if (strncmp(arg, "--", 2) != 0) die("unexpected argument '%s' (see %s --help)", arg, program);
    if (eq) {
        snprintf(name, (size_t)len, "%.*s", (int)(eq - arg), arg);
        *value = eq + 1;
    } else {
        snprintf(name, (size_t)len, "%s", arg);
        *value = NULL;
    }
}

long cli_int(const char *opt, const char *value, long lo, long hi) {
    char *end;
    errno = 0;
    long x = strtol(value, &end, 10);
    if (errno || *end || end == value || x < lo || x > hi)
        die("%s: '%s' is not an integer in %ld..%ld", opt, value, lo, hi);
    return x;
}

double cli_double(const char *opt, const char *value, double lo, double hi) {
    char *end;
    errno = 0;
    double x = strtod(value, &end);
    if (errno || *end || end == value || !(x >= lo && x <= hi))
        die("%s: '%s' is not a number in [%g, %g]", opt, value, lo, hi);
    return x;
}

double now_seconds(void) {
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void make_folder(const char *path) {
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {       /* every parent first */
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0777) && errno != EEXIST) die("cannot create folder %s: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0777) && errno != EEXIST) die("cannot create folder %s: %s", buf, strerror(errno));
}

const char *path_in(const char *dir, const char *name) {
    static char buf[1024];
    snprintf(buf, sizeof buf, "%s/%s", dir, name);
    return buf;
}
