/* test_kill.c: kill-safe checkpoints, with real signals (issue 15).
 *
 * `./images` trains a tiny U-Net for STEPS steps saving a checkpoint after every step
 * (--save-every 1), and is SIGKILLed at KILLS moments spread over the length of a run
 * (a run spends most of its time saving, so many kills land inside a save). After each
 * kill:
 *   - the path holds either no file (killed before the first save) or a complete
 *     checkpoint (magic, size and CRC-32 valid): never a torn one;
 *   - `--resume` from it to STEPS steps then gives a final checkpoint byte for byte equal
 *     to the one of the run that was never killed, and removes the temporary that a kill
 *     inside a save left behind.
 * The programs are the float build (`make test` builds them first); this file only starts
 * them and reads their checkpoints. Files go to a fresh folder under /tmp, removed after.
 */
#define _POSIX_C_SOURCE 200809L   /* fork, execv, kill, nanosleep, mkdtemp, opendir */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "files.h"
#include "harness.h"
#include "../checkpoint.h"

#define STEPS "20"      /* training steps of every run */
#define KILLS 20        /* kills, at 1/21 .. 20/21 of a run's length */
#define TEST_ALARM 300  /* seconds: the whole file takes a few */

static char dir[64];

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Starts ./images with the tiny configuration, saving to `ckpt` (resuming from it if
 * resume); its output goes to /dev/null. Returns the child's pid. */
static pid_t start_images(const char *ckpt, int resume) {
    char out[128];
    snprintf(out, sizeof out, "%s/out", dir);
    const char *argv[] = { "./images", "--size", "8", "--base", "8", "--mult", "1",
                           "--res-blocks", "1", "--attn", "none", "--T", "10",
                           "--schedule", "cosine", "--steps", STEPS, "--batch", "2",
                           "--warmup", "0", "--n-samples", "1", "--out", out,
                           "--save-every", "1", "--save", ckpt,
                           resume ? "--resume" : NULL, ckpt, NULL };
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 1);
        dup2(devnull, 2);
        execv("./images", (char *const *)argv);
        _exit(127);
    }
    return pid;
}

static int run_images(const char *ckpt, int resume) {
    int status;
    pid_t pid = start_images(ckpt, resume);
    if (pid < 0 || waitpid(pid, &status, 0) != pid) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void remove_all(void) {
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[512];
    while (d && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (remove(p) != 0) {          /* the out/ folder */
            DIR *o = opendir(p);
            struct dirent *f;
            char q[1024];
            while (o && (f = readdir(o)) != NULL)
                if (f->d_name[0] != '.') { snprintf(q, sizeof q, "%s/%s", p, f->d_name); remove(q); }
            if (o) closedir(o);
            rmdir(p);
        }
    }
    if (d) closedir(d);
    rmdir(dir);
}

int main(void) {
    alarm(TEST_ALARM);
    if (access("./images", X_OK) != 0) {
        CHECK(0, "./images not found: run from the repository root after `make`");
        return test_summary("test_kill");
    }
    snprintf(dir, sizeof dir, "/tmp/test_kill_XXXXXX");
    if (!mkdtemp(dir)) die("test: mkdtemp failed");

    /* the run that is never killed: its final checkpoint and its length */
    char ref_path[128], path[128];
    snprintf(ref_path, sizeof ref_path, "%s/straight.ckpt", dir);
    snprintf(path, sizeof path, "%s/killed.ckpt", dir);
    /* its length is the shorter of two runs (the first may pay for a cold start), so that
     * the kills, spread over it, land while a run is going */
    double t0 = now();
    CHECK(run_images(ref_path, 0) == 0, "the straight run exits 0");
    double length = now() - t0;
    t0 = now();
    CHECK(run_images(ref_path, 0) == 0, "the straight run exits 0 the second time");
    length = fmin(length, now() - t0);
    size_t ref_size = 0;
    unsigned char *ref = read_all(ref_path, &ref_size);
    CHECK(ref != NULL, "the straight run wrote its checkpoint");

    int killed = 0, complete_or_none = 0, mid_save = 0, none = 0, identical = 0;
    for (int k = 1; k <= KILLS && ref; k++) {
        remove(path);
        pid_t pid = start_images(path, 0);
        struct timespec delay = { 0, 0 };
        double d = length * k / (KILLS + 1);
        delay.tv_sec = (time_t)d;
        delay.tv_nsec = (long)((d - (double)delay.tv_sec) * 1e9);
        nanosleep(&delay, NULL);
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        killed += WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;

        /* on disk: nothing, or a complete checkpoint */
        struct stat st;
        int exists = stat(path, &st) == 0;
        CkptHeader h;
        char err[1024] = "";
        int complete = exists && checkpoint_read_header_err(path, &h, err, sizeof err) == 0;
        CHECK(!exists || complete, "kill %d: the checkpoint on disk is complete: %s", k, err);
        complete_or_none += !exists || complete;
        mid_save += temporaries_in(dir, 0) > 0;
        if (!exists) { none++; continue; }

        /* resume to the end: the same bytes as the straight run, no temporary left */
        CHECK(run_images(path, 1) == 0, "kill %d: the resumed run exits 0", k);
        size_t size = 0;
        unsigned char *got = read_all(path, &size);
        int same = got && size == ref_size && memcmp(got, ref, size) == 0;
        CHECK(same, "kill %d: resumed final checkpoint is byte for byte the straight one", k);
        identical += same;
        free(got);
        CHECK(temporaries_in(dir, 0) == 0, "kill %d: no temporary left after the resume", k);
    }
    printf("test_kill: %d kills of %d during the run (run length %.2f s): %d/%d left a "
           "complete checkpoint or none (%d none yet), %d inside a save (temporary left, "
           "removed by the resume), %d/%d resumed byte-identically\n", killed, KILLS, length,
           complete_or_none, KILLS, none, mid_save, identical, KILLS - none);
    CHECK(complete_or_none == KILLS, "every kill left a complete checkpoint or none");
    /* what the checks above are about must have happened: a kill that comes after the run
     * ended, or before its first save, checks nothing (a run that got faster than the
     * straight one would otherwise pass this test untested) */
    CHECK(killed >= KILLS / 2, "at least half the kills landed while the run was going: %d of %d",
          killed, KILLS);
    CHECK(KILLS - none >= 1 && mid_save >= 1, "some kills left a checkpoint to resume (%d) and "
          "some landed inside a save (%d)", KILLS - none, mid_save);
    free(ref);
    remove_all();
    return test_summary("test_kill");
}
