/* test_io.c: every write checked, and failed on purpose (io.h, through checkpoint.c and
 * plot.c).
 *   - a real-size checkpoint (1 MB, many times the write buffer) with the disk filling at
 *     byte k, for k swept from the first byte to the last: the save returns −1 with a
 *     message naming the file and the reason, the previous checkpoint is byte for byte
 *     intact, no temporary is left
 *   - an I/O error at every call of a save in turn (open, each write, fsync, close,
 *     rename, the folder's open and fsync): −1 and a message each time; the path always
 *     holds a complete checkpoint (the old one before the rename, the new one after)
 *   - short writes (write(2) returning early, no error) at k swept: the save succeeds and
 *     the file is byte for byte the one written without faults
 *   - PNG, GIF and SVG writers with a full disk: −1, the old picture kept, no temporary
 *   - two files open for one path at once get two temporaries; temporaries of a process
 *     that died are removed by the next save, those of a live process are not
 *   - a folder that is a regular file is refused before anything is written
 * Nothing may hang: the whole test runs under an alarm.
 * Built with real = double. Files go to a fresh folder under /tmp, removed at the end.
 */
#define _POSIX_C_SOURCE 200809L   /* mkdtemp, fork, opendir, alarm */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "files.h"
#include "harness.h"
#include "../checkpoint.h"
#include "../io.h"
#include "../plot.h"

#define BIG_REALS 32768     /* reals per array: 4 arrays x 32768 x 8 bytes = 1 MB */
#define TEST_ALARM 120      /* seconds: the whole file takes about one */

static char dir[64];

static void path_in_dir(char *out, size_t len, const char *name) {
    snprintf(out, len, "%s/%s", dir, name);
}

static int same_file(const char *path, const unsigned char *want, size_t want_size) {
    size_t size;
    unsigned char *got = read_all(path, &size);
    int same = got && size == want_size && memcmp(got, want, size) == 0;
    free(got);
    return same;
}

/* A 1 MB ParamSet filled from `seed`. */
static void big_state(ParamSet *ps, Rng *rng, CkptHeader *h, uint64_t seed) {
    params_init(ps);
    params_add(ps, NULL, NULL, "big.w", 2, 128, BIG_REALS / 128, 0, 0);
    params_add(ps, NULL, NULL, "big.b", 1, 7, 0, 0, 0);
    params_alloc(ps);
    rng_seed(rng, seed);
    rng_fill_normal(rng, ps->w, ps->total);
    rng_fill_normal(rng, ps->ema, ps->total);
    rng_fill_normal(rng, ps->m, ps->total);
    rng_fill_normal(rng, ps->v, ps->total);
    ps->step = (long)seed;
    ckpt_header_init(h);
    ckpt_set_string(h, "model", "big");
}

typedef struct { ParamSet ps; Rng rng; CkptHeader h; unsigned char *bytes; size_t size; } State;

/* Saves st to path and keeps the file's bytes. */
static void save_state(State *st, const char *path, uint64_t seed) {
    big_state(&st->ps, &st->rng, &st->h, seed);
    if (checkpoint_save(path, &st->h, &st->ps, &st->rng) != 0) die("test: save failed");
    st->bytes = read_all(path, &st->size);
}

static void free_state(State *st) { params_free(&st->ps); free(st->bytes); }

/* ---------------------------------------------------------------------------------------
 * Checkpoints */

static void test_full_disk_sweep(void) {
    char path[256], err[2048];
    path_in_dir(path, sizeof path, "sweep.ckpt");
    State old, new;
    save_state(&new, path, 2);              /* the bytes the new state makes */
    save_state(&old, path, 1);              /* what is on disk during the sweep */
    size_t N = new.size;
    const uint64_t ks[] = { 0, 1, 7, 8, 27, 28, 100, 4095, 65535, 65536, 65537, 131072,
                            N / 3, N / 2, N - 5, N - 4, N - 1 };
    int all_ok = 1;
    for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++) {
        io_fault_arm(IO_FAULT_FULL, ks[i]);
        int rc = checkpoint_save_err(path, &new.h, &new.ps, &new.rng, err, sizeof err);
        io_fault_disarm();
        int ok = rc == -1 && strstr(err, path) && strstr(err, "No space left") &&
                 same_file(path, old.bytes, old.size) && temporaries_in(dir, 0) == 0;
        CHECK(ok, "disk full at byte %llu of %zu: rc %d, old intact %d, temporaries %d: %s",
              (unsigned long long)ks[i], N, rc, same_file(path, old.bytes, old.size),
              temporaries_in(dir, 0), err);
        all_ok &= ok;
        temporaries_in(dir, 1);
    }
    CHECK(all_ok, "all %zu disk-full points refused cleanly", sizeof ks / sizeof ks[0]);
    /* the disk fills exactly after the last byte: the save is complete */
    io_fault_arm(IO_FAULT_FULL, N);
    CHECK(checkpoint_save_err(path, &new.h, &new.ps, &new.rng, err, sizeof err) == 0 &&
          same_file(path, new.bytes, new.size), "a disk that fills after byte N: %s", err);
    io_fault_disarm();
    free_state(&old);
    free_state(&new);
    remove(path);
}

static void test_eio_every_call(void) {
    char path[256], err[2048];
    path_in_dir(path, sizeof path, "eio.ckpt");
    State old, new;
    save_state(&new, path, 4);
    save_state(&old, path, 3);
    io_fault_arm(IO_FAULT_NONE, 0);         /* count the calls of one save */
    if (checkpoint_save(path, &old.h, &old.ps, &old.rng) != 0) die("test: save failed");
    uint64_t calls = io_fault_calls();
    CHECK(calls >= 7, "a save makes at least 7 calls (open, write, fsync, close, rename, "
          "folder open, folder fsync): %llu", (unsigned long long)calls);
    int before_rename = 0, after_rename = 0;
    for (uint64_t k = 0; k < calls; k++) {
        io_fault_arm(IO_FAULT_EIO, k);
        int rc = checkpoint_save_err(path, &new.h, &new.ps, &new.rng, err, sizeof err);
        io_fault_disarm();
        int is_old = same_file(path, old.bytes, old.size);
        int is_new = same_file(path, new.bytes, new.size);
        CHECK(rc == -1 && strstr(err, path) && strstr(err, "Input/output error"),
              "EIO at call %llu of %llu: rc %d: %s", (unsigned long long)k,
              (unsigned long long)calls, rc, err);
        CHECK(is_old || is_new, "EIO at call %llu: the path holds a complete checkpoint",
              (unsigned long long)k);
        CHECK(temporaries_in(dir, 0) == 0, "EIO at call %llu: no temporary left",
              (unsigned long long)k);
        before_rename += is_old;
        after_rename += is_new;
        if (is_new) {                       /* put the old one back for the next k */
            if (checkpoint_save(path, &old.h, &old.ps, &old.rng) != 0) die("test: save failed");
        }
        temporaries_in(dir, 1);
    }
    /* exactly the folder's open and fsync come after the rename */
    CHECK(after_rename == 2 && before_rename == (int)calls - 2,
          "failures before the rename keep the old file (%d), after it the new (%d)",
          before_rename, after_rename);
    free_state(&old);
    free_state(&new);
    remove(path);
}

static void test_short_writes(void) {
    char path[256], err[2048];
    path_in_dir(path, sizeof path, "short.ckpt");
    State ref;
    save_state(&ref, path, 5);
    remove(path);
    const uint64_t ks[] = { 0, 1, 100, 65535, 65536, 65537, ref.size / 2, ref.size - 1 };
    for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++) {
        io_fault_arm(IO_FAULT_SHORT, ks[i]);
        int rc = checkpoint_save_err(path, &ref.h, &ref.ps, &ref.rng, err, sizeof err);
        io_fault_disarm();
        CHECK(rc == 0 && same_file(path, ref.bytes, ref.size) && temporaries_in(dir, 0) == 0,
              "a short write at byte %llu is continued: rc %d: %s",
              (unsigned long long)ks[i], rc, err);
        remove(path);
    }
    free_state(&ref);
}

/* ---------------------------------------------------------------------------------------
 * Pictures */

static void test_pictures_full_disk(void) {
    Image img;
    image_init(&img, 300, 200);             /* 180 KB of pixels: several write buffers */
    for (int i = 0; i < 300 * 200 * 3; i++) img.rgb[i] = (unsigned char)(i * 7);
    char png[256], gif[256], svg[256];
    path_in_dir(png, sizeof png, "a.png");
    path_in_dir(gif, sizeof gif, "a.gif");
    path_in_dir(svg, sizeof svg, "a.svg");
    CHECK(png_write(png, &img) == 0, "png_write");
    size_t psize;
    unsigned char *pold = read_all(png, &psize);
    img.rgb[0] ^= 1;                        /* a different picture, that must not land */
    const uint64_t ks[] = { 0, 33, 65536, 100000 };
    for (size_t i = 0; i < 4; i++) {
        io_fault_arm(IO_FAULT_FULL, ks[i]);
        int rc = png_write(png, &img);
        io_fault_disarm();
        CHECK(rc == -1 && same_file(png, pold, psize) && temporaries_in(dir, 0) == 0,
              "PNG onto a disk full at byte %llu: rc %d, old picture kept",
              (unsigned long long)ks[i], rc);
    }
    free(pold);

    GifWriter g;
    io_fault_arm(IO_FAULT_FULL, 1000);
    int rc = gif_open(&g, gif, 300, 200, 10, 0);
    int frames_rc = 0;
    for (int f = 0; f < 3 && rc == 0; f++) frames_rc |= gif_add_frame(&g, &img);
    int close_rc = rc == 0 ? gif_close(&g) : -1;
    io_fault_disarm();
    CHECK(rc == 0 && close_rc == -1 && temporaries_in(dir, 0) == 0,
          "GIF onto a full disk: frames %d, close %d, no temporary", frames_rc, close_rc);
    struct stat st;
    CHECK(stat(gif, &st) != 0, "no GIF under the real name");

    double x[3] = { 0, 1, 2 }, y[3] = { 1, 2, 3 };
    SvgPlot plot = { "t", "x", "y", 0, 1, { { "s", 3, x, y } } };
    io_fault_arm(IO_FAULT_FULL, 10);
    CHECK(svg_lineplot(svg, &plot) == -1 && stat(svg, &st) != 0 && temporaries_in(dir, 0) == 0,
          "SVG onto a full disk fails and leaves nothing");
    io_fault_arm(IO_FAULT_EIO, 0);
    CHECK(svg_lineplot(svg, &plot) == -1 && stat(svg, &st) != 0, "SVG whose open fails");
    io_fault_disarm();
    CHECK(svg_lineplot(svg, &plot) == 0 && stat(svg, &st) == 0, "SVG without faults");
    remove(png);
    remove(svg);
    image_free(&img);
}

/* ---------------------------------------------------------------------------------------
 * Names: unique temporaries, stale ones, a folder that is a file */

static void test_names(void) {
    char path[256], err[2048];
    path_in_dir(path, sizeof path, "two.txt");
    IoFile *a = io_create(path, err, sizeof err), *b = io_create(path, err, sizeof err);
    CHECK(a && b && strcmp(a->tmp, b->tmp) != 0, "two writers of one path: two temporaries");
    if (a && b) {
        io_puts(a, "first\n");
        io_puts(b, "second\n");
        CHECK(io_commit(a, err, sizeof err) == 0, "first commit: %s", err);
        CHECK(io_commit(b, err, sizeof err) == 0, "second commit: %s", err);
        CHECK(same_file(path, (const unsigned char *)"second\n", 7), "the last commit wins");
    }
    CHECK(temporaries_in(dir, 0) == 0, "no temporary after two commits");

    /* a temporary of a process that died, and one of a live process (our parent) */
    fflush(NULL);
    pid_t child = fork();
    if (child == 0) _exit(0);
    waitpid(child, NULL, 0);
    char dead[320], live[320];
    snprintf(dead, sizeof dead, "%s.tmp.%ld", path, (long)child);
    snprintf(live, sizeof live, "%s.tmp.%ld", path, (long)getppid());
    FILE *f = fopen(dead, "w");
    if (f) fclose(f);
    f = fopen(live, "w");
    if (f) fclose(f);
    IoFile *c = io_create(path, err, sizeof err);
    if (c) io_commit(c, err, sizeof err);
    struct stat st;
    CHECK(stat(dead, &st) != 0, "the temporary of a dead process was removed");
    CHECK(stat(live, &st) == 0, "the temporary of a live process was kept");
    remove(live);
    remove(path);

    /* the folder is a regular file */
    char file[256], under[300];
    path_in_dir(file, sizeof file, "plain");
    f = fopen(file, "w");
    if (f) fclose(f);
    snprintf(under, sizeof under, "%s/x.png", file);
    CHECK(io_check_dest(under, NULL, 0, "a picture", err, sizeof err) == -1 &&
          strstr(err, "Not a directory"), "a path under a regular file: %s", err);
    CHECK(io_create(under, err, sizeof err) == NULL && strstr(err, "Not a directory"),
          "creating under a regular file: %s", err);
    remove(file);
    CHECK(io_check_dest(dir, NULL, 0, "a picture", err, sizeof err) == -1 &&
          strstr(err, "is a folder"), "a folder as the file: %s", err);
    char longp[5000];
    memset(longp, 'a', sizeof longp - 1);
    longp[sizeof longp - 1] = '\0';
    CHECK(io_check_dest(longp, NULL, 0, "a picture", err, sizeof err) == -1 &&
          strstr(err, "too long"), "a 4999-byte path: %.80s", err);
}

/* The count a program exits by, and the folder probe it checks before training. */
static void test_counts(void) {
    char path[256], err[2048];
    path_in_dir(path, sizeof path, "count.txt");
    int before = io_failed_writes();
    IoFile *f = io_create(path, err, sizeof err);
    io_puts(f, "ok\n");
    CHECK(io_commit(f, err, sizeof err) == 0 && io_failed_writes() == before,
          "a good write counts nothing");
    io_fault_arm(IO_FAULT_FULL, 0);
    f = io_create(path, err, sizeof err);
    io_puts(f, "lost\n");
    CHECK(io_commit(f, err, sizeof err) == -1 && io_failed_writes() == before + 1,
          "a failed commit counts one");
    io_fault_arm(IO_FAULT_EIO, 0);
    CHECK(io_create(path, err, sizeof err) == NULL && io_failed_writes() == before + 2,
          "a failed create counts one");
    io_fault_disarm();
    io_abort(io_create(path, err, sizeof err));
    CHECK(io_failed_writes() == before + 3, "an abort counts one");
    CHECK(same_file(path, (const unsigned char *)"ok\n", 3), "the good file survived");
    remove(path);
    CHECK(io_check_folder(dir, err, sizeof err) == 0 && temporaries_in(dir, 0) == 0,
          "the test folder is writable: %s", err);
    char missing[300];
    snprintf(missing, sizeof missing, "%s/none", dir);
    CHECK(io_check_folder(missing, err, sizeof err) == -1 && strstr(err, "No such file"),
          "a missing folder: %s", err);
}

int main(void) {
    alarm(TEST_ALARM);
    snprintf(dir, sizeof dir, "/tmp/test_io_XXXXXX");
    if (!mkdtemp(dir)) die("test: mkdtemp failed");
    test_full_disk_sweep();
    test_eio_every_call();
    test_short_writes();
    test_pictures_full_disk();
    test_names();
    test_counts();
    temporaries_in(dir, 1);
    rmdir(dir);
    return test_summary("test_io");
}
