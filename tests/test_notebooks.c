/* test_notebooks.c: the notebooks in notebooks_md/ cannot rot.
 *
 * A notebook quotes three kinds of things, each announced by an HTML comment on the line
 * right above it (invisible when the markdown is rendered):
 *
 *   <!-- code: FILE -->            then a ```c block: lines copied from FILE (a path from
 *                                  the repo root). Check: the block's lines appear in FILE
 *                                  as consecutive lines, verbatim (trailing spaces ignored).
 *   <!-- output: COMMAND -->       then a ```text block: what COMMAND printed. Check: run
 *                                  `sh -c 'COMMAND' 2>&1` from the repo root, it must exit 0
 *                                  and print the block, after masking times (below).
 *   <!-- output long: COMMAND -->  the same for a command that takes more than ~20 s: check
 *                                  mode does not run it (one "skipped" line), it only checks
 *                                  that the block is not empty. Update mode runs it.
 *   <!-- picture: OUT_FILE -->     then a line ![caption](img/NAME). Check: the file
 *                                  notebooks_md/img/NAME exists and is not empty. Update:
 *                                  copies OUT_FILE (made by an earlier command) there.
 *
 * Progress lines: a program prints "progress: ..." lines on stderr during long work (cli.h
 * Progress, and its cost warnings); their number and content depend on the machine's speed,
 * so they are dropped from a command's output before anything is compared or written.
 * A program a command names by path ("./build/test/test_ode", "./toy2d") must exist before
 * the command runs: otherwise the check fails naming it, and update mode leaves the block
 * as it was (a pipeline's exit status is its last command's, so "sh: ...: not found" from
 * its first would otherwise pass as output).
 *
 * Masking times: wall-clock numbers change from run to run, so before comparing, a number
 * (digits with an optional point and decimals) that is immediately followed by one of
 *     " s"  (then a non-letter or the end of the line),  "s)",  " ms",  " steps/s",
 *     " images/s"
 * becomes "#" on both sides. Nothing else is masked: every other number a notebook quotes
 * must be what the program prints now (the programs are seeded and bit-reproducible).
 *
 * Usage (from the repo root):
 *   ./build/test/test_notebooks            check mode (`make test`): rewrites nothing (the
 *                                          commands it runs write their outputs under out/)
 *   ./build/test/test_notebooks --update   `make notebooks`: runs every command (long ones
 *                                          too), rewrites the output blocks in place, copies
 *                                          the pictures, and prints what changed
 *   ./build/test/test_notebooks --update 06_unet_and_images.md ...
 *                                          `make notebooks NB="..."`: only those notebooks
 * A command quoted more than once (the same text) runs once per run of this program.
 * One CHECK per quoted snippet, per output and per picture.
 */
#define _POSIX_C_SOURCE 200809L

#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "harness.h"

#define NB_DIR "notebooks_md"
#define MAX_NOTEBOOKS 64

/* ========================================================================================
 * Lines: a file or a command's output as an array of lines without their '\n' */

typedef struct { char **line; int n, cap; } Lines;

static void lines_push(Lines *l, const char *s, size_t len) {
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        l->line = realloc(l->line, (size_t)l->cap * sizeof(char *));
        if (!l->line) { fprintf(stderr, "error: out of memory\n"); exit(2); }
    }
    char *c = malloc(len + 1);
    if (!c) { fprintf(stderr, "error: out of memory\n"); exit(2); }
    memcpy(c, s, len);
    c[len] = 0;
    l->line[l->n++] = c;
}

static void lines_free(Lines *l) {
    for (int i = 0; i < l->n; i++) free(l->line[i]);
    free(l->line);
    memset(l, 0, sizeof *l);
}

/* splits text into lines; a final '\n' does not start an empty last line */
static void lines_from_text(Lines *l, const char *text, size_t len) {
    size_t start = 0;
    for (size_t i = 0; i < len; i++)
        if (text[i] == '\n') { lines_push(l, text + start, i - start); start = i + 1; }
    if (start < len) lines_push(l, text + start, len - start);
}

/* reads a whole file; returns NULL if it cannot be opened */
static char *read_all(FILE *f, size_t *len) {
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    if (!buf) return NULL;
    size_t got;
    while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            cap *= 2;
            char *nb = realloc(buf, cap);
            if (!nb) { free(buf); return NULL; }
            buf = nb;
        }
    }
    *len = n;
    return buf;
}

static int lines_from_file(Lines *l, const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    size_t len;
    char *text = read_all(f, &len);
    fclose(f);
    if (!text) return -1;
    lines_from_text(l, text, len);
    free(text);
    return 0;
}

/* length of s without trailing spaces, tabs and '\r' */
static size_t trimmed_len(const char *s) {
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r')) n--;
    return n;
}

static int same_trimmed(const char *a, const char *b) {
    size_t na = trimmed_len(a), nb = trimmed_len(b);
    return na == nb && memcmp(a, b, na) == 0;
}

/* drops trailing blank lines */
static void drop_trailing_blank(Lines *l) {
    while (l->n > 0 && trimmed_len(l->line[l->n - 1]) == 0) free(l->line[--l->n]);
}

/* ========================================================================================
 * Masking times (the rule in the header comment) */

static int starts_with(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

static int time_suffix(const char *s) {
    if (starts_with(s, " steps/s") || starts_with(s, " images/s")) return 1;   /* before " s" */
    if (starts_with(s, " s")) return !isalpha((unsigned char)s[2]);
    return starts_with(s, "s)") || starts_with(s, " ms");
}

/* out receives line with every timed number replaced by '#'; out must hold strlen + 1 */
static void mask_times(char *out, const char *line) {
    size_t o = 0;
    for (size_t i = 0; line[i];) {
        int at_number_start = isdigit((unsigned char)line[i]) &&
                              (i == 0 || !(isalnum((unsigned char)line[i - 1]) || line[i - 1] == '.'));
        if (at_number_start) {
            size_t j = i;
            while (isdigit((unsigned char)line[j])) j++;
            if (line[j] == '.' && isdigit((unsigned char)line[j + 1])) {
                j++;
                while (isdigit((unsigned char)line[j])) j++;
            }
            if (time_suffix(line + j)) { out[o++] = '#'; i = j; continue; }
            while (i < j) out[o++] = line[i++];
            continue;
        }
        out[o++] = line[i++];
    }
    out[o] = 0;
}

static int same_masked(const char *a, const char *b) {
    char *ma = malloc(strlen(a) + 1), *mb = malloc(strlen(b) + 1);
    if (!ma || !mb) { fprintf(stderr, "error: out of memory\n"); exit(2); }
    mask_times(ma, a);
    mask_times(mb, b);
    int same = same_trimmed(ma, mb);
    free(ma);
    free(mb);
    return same;
}

/* ========================================================================================
 * Running a command: sh -c 'COMMAND' 2>&1 from the repo root */

#define EXIT_MARK "@@test_notebooks exit status "

static int run_command_uncached(const char *cmd, Lines *out, double *seconds) {
    size_t len = strlen(cmd) + 64;
    char *full = malloc(len);
    if (!full) { fprintf(stderr, "error: out of memory\n"); exit(2); }
    /* the command runs in a subshell so that its own redirections and pipes stay its own;
     * its exit status comes back as a last line of text (no <sys/wait.h> needed) */
    snprintf(full, len, "( %s ) 2>&1; echo \"%s$?\"", cmd, EXIT_MARK);
    struct timespec a, b;
    timespec_get(&a, TIME_UTC);
    fflush(stdout);
    FILE *p = popen(full, "r");
    free(full);
    if (!p) return -1;
    size_t n;
    char *text = read_all(p, &n);
    int closed = pclose(p);
    timespec_get(&b, TIME_UTC);
    *seconds = (double)(b.tv_sec - a.tv_sec) + 1e-9 * (double)(b.tv_nsec - a.tv_nsec);
    if (text) {
        Lines all = { 0 };
        lines_from_text(&all, text, n);
        for (int k = 0; k < all.n; k++)   /* machine-dependent progress lines: dropped */
            if (strncmp(all.line[k], "progress: ", 10) != 0) lines_push(out, all.line[k], strlen(all.line[k]));
        lines_free(&all);
        free(text);
    }
    int status = -1;   /* the last line is EXIT_MARK followed by the status */
    if (out->n > 0 && strncmp(out->line[out->n - 1], EXIT_MARK, strlen(EXIT_MARK)) == 0) {
        status = atoi(out->line[out->n - 1] + strlen(EXIT_MARK));
        free(out->line[--out->n]);
    }
    drop_trailing_blank(out);
    return closed == -1 ? -1 : status;
}

/* the same command text runs once: later quotes reuse its output and exit status */
#define CACHE_MAX 128
static struct { char *cmd; Lines out; int rc; } cache[CACHE_MAX];
static int cache_n = 0;

/* The first program the command names by a path ("./x" or "./dir/x") that is not an
 * executable file, into missing; 0 if there is none. */
static int missing_program(const char *cmd, char *missing, size_t len) {
    for (const char *p = cmd; *p; p++) {
        if (p[0] != '.' || p[1] != '/' || (p > cmd && !isspace((unsigned char)p[-1]) &&
                                           p[-1] != '(' && p[-1] != ';' && p[-1] != '|'))
            continue;
        size_t k = 0;
        while (p[k] && !isspace((unsigned char)p[k]) && !strchr(";|)&'\"", p[k])) k++;
        if (k >= len) continue;
        memcpy(missing, p, k);
        missing[k] = '\0';
        struct stat st;
        if (stat(missing, &st) != 0 || !S_ISREG(st.st_mode) || !(st.st_mode & S_IXUSR)) return 1;
    }
    return 0;
}

static int run_command(const char *cmd, Lines *out, double *seconds) {
    *seconds = 0;
    char missing[256];
    if (missing_program(cmd, missing, sizeof missing)) {
        lines_push(out, missing, strlen(missing));
        return 127;   /* as sh says "not found"; the caller reports and keeps the block */
    }
    for (int i = 0; i < cache_n; i++)
        if (strcmp(cache[i].cmd, cmd) == 0) {
            for (int k = 0; k < cache[i].out.n; k++)
                lines_push(out, cache[i].out.line[k], strlen(cache[i].out.line[k]));
            return cache[i].rc;
        }
    int rc = run_command_uncached(cmd, out, seconds);
    if (cache_n < CACHE_MAX) {
        cache[cache_n].cmd = strdup(cmd);
        memset(&cache[cache_n].out, 0, sizeof(Lines));
        for (int k = 0; k < out->n; k++)
            lines_push(&cache[cache_n].out, out->line[k], strlen(out->line[k]));
        cache[cache_n++].rc = rc;
    }
    return rc;
}

static void cache_free(void) {
    for (int i = 0; i < cache_n; i++) { free(cache[i].cmd); lines_free(&cache[i].out); }
    cache_n = 0;
}

/* ========================================================================================
 * The three checks */

/* "<!-- KEY: VALUE -->" → VALUE (a fresh string), or NULL */
static char *directive(const char *line, const char *key) {
    char prefix[64];
    snprintf(prefix, sizeof prefix, "<!-- %s:", key);
    if (!starts_with(line, prefix)) return NULL;
    const char *v = line + strlen(prefix);
    while (*v == ' ') v++;
    size_t n = trimmed_len(v);
    if (n < 3 || strncmp(v + n - 3, "-->", 3) != 0) return NULL;
    n -= 3;
    while (n > 0 && v[n - 1] == ' ') n--;
    char *s = malloc(n + 1);
    if (!s) { fprintf(stderr, "error: out of memory\n"); exit(2); }
    memcpy(s, v, n);
    s[n] = 0;
    return s;
}

/* the fenced block opening at line i with "```lang": its body is lines [*first, *end),
 * the closing fence at *end. Returns 0, or -1 if the fence is missing or not closed. */
static int fenced_block(const Lines *nb, int i, const char *lang, int *first, int *end) {
    char open[32];
    snprintf(open, sizeof open, "```%s", lang);
    if (i >= nb->n || !same_trimmed(nb->line[i], open)) return -1;
    for (int k = i + 1; k < nb->n; k++)
        if (same_trimmed(nb->line[k], "```")) { *first = i + 1; *end = k; return 0; }
    return -1;
}

/* the block's lines must be consecutive lines of FILE; on failure *bad is the index of
 * the first block line not found in the best alignment */
static int snippet_in_file(const Lines *nb, int first, int end, const Lines *src, int *bad) {
    int count = end - first, best = 0;
    if (count == 0) { *bad = first; return 0; }
    for (int s = 0; s + count <= src->n; s++) {
        int k = 0;
        while (k < count && same_trimmed(nb->line[first + k], src->line[s + k])) k++;
        if (k == count) return 1;
        if (k > best) best = k;
    }
    *bad = first + best;
    return 0;
}

static int copy_file(const char *from, const char *to) {
    FILE *in = fopen(from, "rb");
    if (!in) return -1;
    size_t n;
    char *data = read_all(in, &n);
    fclose(in);
    if (!data) return -1;
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s.tmp", to);
    FILE *out = fopen(tmp, "wb");
    if (!out) { free(data); return -1; }
    int ok = fwrite(data, 1, n, out) == n;
    ok &= fclose(out) == 0;
    free(data);
    if (!ok || rename(tmp, to) != 0) { remove(tmp); return -1; }
    return 0;
}

static long file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

/* ========================================================================================
 * One notebook */

typedef struct { int update, skipped, changed_blocks; double seconds; } Run;

static int file_equal_lines(const Lines *a, const Lines *b) {
    if (a->n != b->n) return 0;
    for (int i = 0; i < a->n; i++)
        if (strcmp(a->line[i], b->line[i]) != 0) return 0;
    return 1;
}

static void write_lines(const char *path, const Lines *l) {
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) { fprintf(stderr, "error: cannot write %s\n", tmp); exit(2); }
    for (int i = 0; i < l->n; i++) fprintf(f, "%s\n", l->line[i]);
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        fprintf(stderr, "error: cannot replace %s\n", path);
        remove(tmp);
        exit(2);
    }
}

static void process_notebook(const char *name, Run *run) {
    char path[512];
    snprintf(path, sizeof path, NB_DIR "/%s", name);
    Lines nb = { 0 }, fresh = { 0 };   /* fresh: the notebook as update mode rewrites it */
    if (lines_from_file(&nb, path)) {
        CHECK(0, "%s: cannot read", path);
        return;
    }
    for (int i = 0; i < nb.n; i++) {
        const char *line = nb.line[i];
        lines_push(&fresh, line, strlen(line));
        char *file = directive(line, "code");
        char *cmd = directive(line, "output");
        char *cmd_long = directive(line, "output long");
        char *pic = directive(line, "picture");
        int first, end;
        if (file) {
            if (fenced_block(&nb, i + 1, "c", &first, &end)) {
                CHECK(0, "%s:%d: <!-- code: %s --> must be followed by a ```c block", path, i + 1, file);
            } else {
                Lines src = { 0 };
                int bad = first;
                if (lines_from_file(&src, file)) {
                    CHECK(0, "%s:%d: quoted file %s cannot be read", path, i + 1, file);
                } else {
                    int ok = snippet_in_file(&nb, first, end, &src, &bad);
                    CHECK(ok, "%s:%d: the snippet from %s no longer matches; first line not found "
                          "(line %d): \"%s\"", path, i + 1, file, bad + 1,
                          bad < end ? nb.line[bad] : "(empty block)");
                }
                lines_free(&src);
            }
        } else if (cmd || cmd_long) {
            const char *c = cmd ? cmd : cmd_long;
            if (fenced_block(&nb, i + 1, "text", &first, &end)) {
                CHECK(0, "%s:%d: <!-- output: %s --> must be followed by a ```text block", path, i + 1, c);
            } else if (cmd_long && !run->update) {
                printf("  skipped (long): %s:%d: %s\n", path, i + 1, c);
                run->skipped++;
                CHECK(end > first, "%s:%d: the output block of '%s' is empty: run make notebooks",
                      path, i + 1, c);
            } else {
                Lines out = { 0 };
                double sec = 0;
                int rc = run_command(c, &out, &sec);
                run->seconds += sec;
                if (run->update) printf("  ran (%.1f s): %s\n", sec, c);
                CHECK(rc == 0, "%s:%d: '%s' exited with status %d%s%s", path, i + 1, c, rc,
                      rc == 127 && out.n == 1 ? ": no executable " : "",
                      rc == 127 && out.n == 1 ? out.line[0] : "");
                int same = out.n == end - first;
                int diff_at = -1;
                for (int k = 0; k < out.n && k < end - first; k++)
                    if (!same_masked(out.line[k], nb.line[first + k])) { same = 0; diff_at = k; break; }
                if (diff_at < 0 && out.n != end - first) diff_at = out.n < end - first ? out.n : end - first;
                if (run->update) {
                    CHECK(rc == 0 || same, "%s:%d: '%s' failed; its block is left as it was", path, i + 1, c);
                    lines_push(&fresh, nb.line[i + 1], strlen(nb.line[i + 1]));   /* ```text */
                    if (rc == 0 && !same) {   /* same up to masked times: keep the quoted text */
                        for (int k = 0; k < out.n; k++) lines_push(&fresh, out.line[k], trimmed_len(out.line[k]));
                        printf("  changed: %s:%d: output of '%s' (first difference at its line %d)\n",
                               path, i + 1, c, diff_at + 1);
                        run->changed_blocks++;
                    } else {
                        for (int k = first; k < end; k++) lines_push(&fresh, nb.line[k], strlen(nb.line[k]));
                    }
                    lines_push(&fresh, nb.line[end], strlen(nb.line[end]));       /* ``` */
                    i = end;
                } else {
                    char got[256] = "(no line)", want[256] = "(no line)";
                    if (diff_at >= 0 && diff_at < out.n) snprintf(got, sizeof got, "%s", out.line[diff_at]);
                    if (diff_at >= 0 && diff_at < end - first) snprintf(want, sizeof want, "%s", nb.line[first + diff_at]);
                    CHECK(same, "%s:%d: the output of '%s' has changed at its line %d:\n  quoted: %s\n  now:    %s\n"
                          "  (run make notebooks to refresh)", path, i + 1, c, diff_at + 1, want, got);
                }
                lines_free(&out);
            }
        } else if (pic) {
            const char *img = i + 1 < nb.n ? strstr(nb.line[i + 1], "](img/") : NULL;
            char name_img[256] = "";
            if (!starts_with(i + 1 < nb.n ? nb.line[i + 1] : "", "![") || !img ||
                sscanf(img + 6, "%255[^)]", name_img) != 1) {
                CHECK(0, "%s:%d: <!-- picture: %s --> must be followed by ![caption](img/NAME)", path, i + 1, pic);
            } else {
                char dest[512];
                snprintf(dest, sizeof dest, NB_DIR "/img/%s", name_img);
                if (run->update) {
                    mkdir(NB_DIR "/img", 0777);
                    long before = file_size(dest);
                    int ok = copy_file(pic, dest) == 0;
                    CHECK(ok, "%s:%d: cannot copy %s to %s (did the command before it run?)", path, i + 1, pic, dest);
                    if (ok) printf("  picture: %s -> %s (%ld bytes%s)\n", pic, dest, file_size(dest),
                                   before < 0 ? ", new" : "");
                } else {
                    CHECK(file_size(dest) > 0, "%s:%d: picture %s is missing or empty (run make notebooks)",
                          path, i + 1, dest);
                }
            }
        }
        free(file); free(cmd); free(cmd_long); free(pic);
    }
    if (run->update && !file_equal_lines(&nb, &fresh)) {
        write_lines(path, &fresh);
        printf("  rewrote %s\n", path);
    }
    lines_free(&nb);
    lines_free(&fresh);
}

/* The masking itself: every kind of timed number masked, an untimed one kept (" steps/s"
 * was once never masked, as the " s" rule came first and refused the letter after it). */
static void test_masking(void) {
    CHECK(same_masked("4000 steps of batch 256 in 29.2 s (137 steps/s), 1.91 s; 12 ms, 5 s)",
                      "4000 steps of batch 256 in 3.4 s (1166 steps/s), 0.22 s; 7 ms, 9 s)") &&
          same_masked("31.6 images/s", "105.7 images/s"),
          "timed numbers are masked: s, ms, steps/s, images/s, s)");
    CHECK(!same_masked("4000 steps", "4001 steps") && !same_masked("256 samples", "255 samples"),
          "numbers that are not times are compared");
}

static int by_name(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv) {
    Run run = { 0 };
    if (argc >= 2 && strcmp(argv[1], "--update") == 0) {
        run.update = 1;
    } else if (argc != 1) {
        fprintf(stderr, "usage: %s [--update [NOTEBOOK.md ...]]   (from the repo root)\n", argv[0]);
        return 2;
    }
    /* --update NAME...: only those notebooks (their commands run in the order of the names,
     * as they sort); a name that is not a notebook here is an error, not a silent no-op */
    for (int k = 2; k < argc; k++) {
        char path[512];
        struct stat st;
        snprintf(path, sizeof path, NB_DIR "/%s", argv[k]);
        if (strchr(argv[k], '/') || stat(path, &st) != 0) {
            fprintf(stderr, "error: %s is not a notebook in %s/ (give its file name, e.g. "
                    "06_unet_and_images.md)\n", argv[k], NB_DIR);
            return 2;
        }
    }
    /* the notebooks' runs write under out/nb/: it exists before the first command, so a
     * command does not depend on an earlier notebook having made it (make notebooks NB=...) */
    mkdir("out", 0777);
    mkdir("out/nb", 0777);
    test_masking();
    DIR *d = opendir(NB_DIR);
    if (!d) {
        fprintf(stderr, "error: no %s/ here: run from the repo root (make test)\n", NB_DIR);
        return 2;
    }
    char *names[MAX_NOTEBOOKS];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < MAX_NOTEBOOKS) {
        size_t len = strlen(e->d_name);
        if (len > 3 && strcmp(e->d_name + len - 3, ".md") == 0) names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof names[0], by_name);
    CHECK(n > 0, "no notebooks in %s/", NB_DIR);
    for (int i = 0; i < n; i++) {
        int chosen = argc <= 2;
        for (int k = 2; k < argc; k++) chosen |= strcmp(argv[k], names[i]) == 0;
        if (chosen) {
            if (run.update) printf("%s\n", names[i]);
            process_notebook(names[i], &run);
        }
        free(names[i]);
    }
    printf("notebooks: %d files, commands ran for %.1f s, %d long outputs skipped%s\n", n,
           run.seconds, run.skipped, run.update ? "" : " (make notebooks runs them)");
    if (run.update) printf("notebooks: %d output blocks changed\n", run.changed_blocks);
    cache_free();
    return test_summary("test_notebooks");
}
