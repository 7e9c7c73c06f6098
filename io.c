/* io.c: atomic, checked file writes and the fault-injection hook (see io.h).
 *
 * Reading order: the fault hook (the only process-wide state in the library, for tests),
 * the system calls as the hook sees them, temporary names and stale temporaries, writing,
 * commit and abort, the destination check.
 */
#define _POSIX_C_SOURCE 200809L   /* open, fsync, lstat, kill, opendir under -std=c11 */
#include "io.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ========================================================================================
 * The fault hook: armed by a test (io_fault_arm) or by DDPM_IO_FAULT in the environment. */

static struct {
    IoFaultKind kind;
    uint64_t k;          /* the byte (FULL, SHORT) or call (EIO) that fails */
    uint64_t bytes;      /* bytes written through write() since armed */
    uint64_t calls;      /* calls made since armed */
    int fired;           /* SHORT has happened (it happens once) */
    int env_read;        /* DDPM_IO_FAULT looked at already */
} fault;

static int failed_writes;   /* io_failed_writes(): failed io_create and io_commit calls */

int io_failed_writes(void) { return failed_writes; }

void io_fault_arm(IoFaultKind kind, uint64_t k) {
    fault.kind = kind; fault.k = k; fault.bytes = 0; fault.calls = 0; fault.fired = 0;
    fault.env_read = 1;
}

void io_fault_disarm(void) { io_fault_arm(IO_FAULT_NONE, 0); }

uint64_t io_fault_calls(void) { return fault.calls; }

static void fault_from_env(void) {
    if (fault.env_read) return;
    fault.env_read = 1;
    const char *e = getenv("DDPM_IO_FAULT");
    if (!e || !*e) return;
    static const struct { const char *name; IoFaultKind kind; } kinds[] = {
        { "full:", IO_FAULT_FULL }, { "short:", IO_FAULT_SHORT }, { "eio:", IO_FAULT_EIO },
    };
    for (int i = 0; i < 3; i++) {
        size_t n = strlen(kinds[i].name);
        if (strncmp(e, kinds[i].name, n) == 0) {
            char *end;
            unsigned long long k = strtoull(e + n, &end, 10);
            if (end != e + n && *end == '\0') { io_fault_arm(kinds[i].kind, k); return; }
        }
    }
    fprintf(stderr, "warning: DDPM_IO_FAULT='%s' ignored (full:K, short:K or eio:K)\n", e);
}

/* 1 if this call is the one armed to fail with EIO (every call counts). */
static int fault_call(void) {
    uint64_t c = fault.calls++;
    if (fault.kind == IO_FAULT_EIO && c == fault.k) { errno = EIO; return 1; }
    return 0;
}

/* ========================================================================================
 * The system calls, each through the hook. */

static int sys_open(const char *path, int flags, mode_t mode) {
    if (fault_call()) return -1;
    return open(path, flags, mode);
}

/* write(2) as the hook shapes it: FULL writes up to byte k, then says ENOSPC (a partial
 * count first, as a real disk does); SHORT returns early once, at byte k. */
static ssize_t sys_write(int fd, const unsigned char *p, size_t n) {
    if (fault_call()) return -1;
    uint64_t at = fault.bytes;
    int holds_k = fault.k >= at && fault.k - at < n;          /* byte k is in this write */
    if (fault.kind == IO_FAULT_FULL && fault.k <= at) { errno = ENOSPC; return -1; }
    if (fault.kind == IO_FAULT_FULL && holds_k) n = (size_t)(fault.k - at);
    if (fault.kind == IO_FAULT_SHORT && holds_k && !fault.fired) {
        fault.fired = 1;                                      /* once, no error */
        n = fault.k > at ? (size_t)(fault.k - at) : 1;
    }
    ssize_t w = write(fd, p, n);
    if (w > 0) fault.bytes += (uint64_t)w;
    return w;
}

static int sys_fsync(int fd) { return fault_call() ? -1 : fsync(fd); }
static int sys_close(int fd) {
    if (fault_call()) { close(fd); errno = EIO; return -1; }
    return close(fd);
}
static int sys_rename(const char *a, const char *b) { return fault_call() ? -1 : rename(a, b); }

/* ========================================================================================
 * Names: the temporary beside the destination, the folder, stale temporaries. */

static char *dup_string(const char *s, size_t extra) {
    size_t n = strlen(s);
    char *d = malloc(n + extra + 1);
    if (d) memcpy(d, s, n + 1);
    return d;
}

/* The folder holding path ("." for a bare name), in a new string. */
static char *folder_of(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return dup_string(".", 0);
    if (slash == path) return dup_string("/", 0);
    char *d = dup_string(path, 0);
    if (d) d[slash - path] = '\0';
    return d;
}

/* 1 if `name` is base + ".tmp." + pid (+ "." + n) and that process no longer exists. */
static int stale_temporary(const char *name, const char *base) {
    size_t bl = strlen(base);
    if (strncmp(name, base, bl) != 0 || strncmp(name + bl, ".tmp.", 5) != 0) return 0;
    const char *d = name + bl + 5;
    char *end;
    errno = 0;
    long pid = strtol(d, &end, 10);
    if (end == d || errno || pid <= 0 || pid > INT_MAX) return 0;
    if (*end == '.') {
        const char *n = end + 1;
        strtol(n, &end, 10);
        if (end == n) return 0;
    }
    if (*end != '\0' || pid == (long)getpid()) return 0;
    return kill((pid_t)pid, 0) == -1 && errno == ESRCH;
}

/* Removes temporaries of `path` left by processes killed mid-write. */
static void remove_stale_temporaries(const char *path) {
    char *dir = folder_of(path);
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    DIR *d = dir ? opendir(dir) : NULL;
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (!stale_temporary(e->d_name, base)) continue;
            size_t n = strlen(dir) + strlen(e->d_name) + 2;
            char *full = malloc(n);
            if (full) {
                snprintf(full, n, "%s/%s", dir, e->d_name);
                unlink(full);
                free(full);
            }
        }
        closedir(d);
    }
    free(dir);
}

/* ========================================================================================
 * Writing. */

IoFile *io_create(const char *path, char *err, size_t err_len) {
    fault_from_env();
    if (err_len) err[0] = '\0';
    IoFile *f = malloc(sizeof *f);
    char *dest = dup_string(path, 0), *tmp = dup_string(path, 40);
    if (!f || !dest || !tmp) {
        free(f); free(dest); free(tmp);
        snprintf(err, err_len, "cannot write %s: out of memory", path);
        return NULL;
    }
    remove_stale_temporaries(path);
    size_t n = strlen(path);
    int fd = -1;
    for (int attempt = 0; attempt < 100 && fd < 0; attempt++) {
        if (attempt == 0) snprintf(tmp + n, 40, ".tmp.%ld", (long)getpid());
        else snprintf(tmp + n, 40, ".tmp.%ld.%d", (long)getpid(), attempt);
        fd = sys_open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0666);
        if (fd < 0 && errno != EEXIST) break;
    }
    if (fd < 0) {
        failed_writes++;
        snprintf(err, err_len, "cannot create %s: %s (does the folder exist and is it "
                 "writable?)", tmp, strerror(errno));
        free(f); free(dest); free(tmp);
        return NULL;
    }
    f->path = dest; f->tmp = tmp; f->fd = fd;
    f->bytes = 0; f->err_no = 0; f->failed_at = NULL; f->used = 0;
    return f;
}

static void remember(IoFile *f, const char *what, int e) {
    if (f->err_no) return;
    f->err_no = e ? e : EIO;
    f->failed_at = what;
}

/* Sends the buffer to the file: a short count is continued, EINTR retried. */
static void flush_buffer(IoFile *f) {
    size_t done = 0;
    while (!f->err_no && done < f->used) {
        ssize_t w = sys_write(f->fd, f->buf + done, f->used - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) { remember(f, "write", w < 0 ? errno : ENOSPC); break; }
        done += (size_t)w;
    }
    f->used = 0;              /* sent, or given up on: never left full */
}

void io_write(IoFile *f, const void *p, size_t n) {
    const unsigned char *b = p;
    f->bytes += n;
    while (n > 0 && !f->err_no) {
        size_t room = sizeof f->buf - f->used, k = n < room ? n : room;
        memcpy(f->buf + f->used, b, k);
        f->used += k; b += k; n -= k;
        if (f->used == sizeof f->buf) flush_buffer(f);
    }
}

void io_putc(IoFile *f, int c) {
    unsigned char b = (unsigned char)c;
    io_write(f, &b, 1);
}

void io_puts(IoFile *f, const char *s) { io_write(f, s, strlen(s)); }

void io_printf(IoFile *f, const char *fmt, ...) {
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) { remember(f, "format", EINVAL); return; }
    if ((size_t)n < sizeof small) { io_write(f, small, (size_t)n); return; }
    char *big = malloc((size_t)n + 1);
    if (!big) { remember(f, "format", ENOMEM); return; }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    io_write(f, big, (size_t)n);
    free(big);
}

int io_failed(const IoFile *f) { return f->err_no != 0; }

/* ========================================================================================
 * Commit and abort. */

static void io_free(IoFile *f) {
    free(f->path);
    free(f->tmp);
    free(f);
}

void io_abort(IoFile *f) {
    if (!f) return;
    failed_writes++;                     /* an output given up is an output lost */
    if (f->fd >= 0) close(f->fd);
    unlink(f->tmp);
    io_free(f);
}

/* fsync of the folder, so that the rename itself is on disk. File systems that cannot
 * sync a folder say EINVAL; that is not a failure of this write. */
static int sync_folder(const char *path) {
    char *dir = folder_of(path);
    if (!dir) { errno = ENOMEM; return -1; }
    int fd = sys_open(dir, O_RDONLY, 0);
    free(dir);
    if (fd < 0) return -1;
    int rc = sys_fsync(fd);
    int e = errno;
    close(fd);
    errno = e;
    return (rc != 0 && e != EINVAL) ? -1 : 0;
}

static int commit(IoFile *f, char *err, size_t err_len) {
    if (err_len) err[0] = '\0';
    flush_buffer(f);
    if (!f->err_no && sys_fsync(f->fd) != 0) remember(f, "fsync", errno);
    if (sys_close(f->fd) != 0) remember(f, "close", errno);
    f->fd = -1;
    if (f->err_no) {
        snprintf(err, err_len, "cannot write %s: %s (%s of %s after %llu bytes given); any "
                 "earlier %s is unchanged", f->path, strerror(f->err_no), f->failed_at,
                 f->tmp, (unsigned long long)f->bytes, f->path);
        unlink(f->tmp);
        io_free(f);
        return -1;
    }
    if (sys_rename(f->tmp, f->path) != 0) {
        int e = errno;
        snprintf(err, err_len, "cannot rename %s to %s: %s; any earlier file is unchanged",
                 f->tmp, f->path, strerror(e));
        unlink(f->tmp);
        io_free(f);
        return -1;
    }
    if (sync_folder(f->path) != 0) {
        snprintf(err, err_len, "wrote %s, but syncing its folder failed: %s (a power cut "
                 "now could lose it)", f->path, strerror(errno));
        io_free(f);
        return -1;
    }
    io_free(f);
    return 0;
}

int io_commit(IoFile *f, char *err, size_t err_len) {
    int rc = commit(f, err, err_len);
    failed_writes += rc != 0;
    return rc;
}

int io_check_folder(const char *dir, char *err, size_t err_len) {
    size_t n = strlen(dir) + 32;
    char *probe = malloc(n);
    if (!probe) { snprintf(err, err_len, "out of memory"); return -1; }
    snprintf(probe, n, "%s/.probe.%ld", dir, (long)getpid());
    int fd = open(probe, O_WRONLY | O_CREAT | O_EXCL, 0666);
    if (fd < 0) {
        snprintf(err, err_len, "cannot write in %s: %s", dir, strerror(errno));
        free(probe);
        return -1;
    }
    close(fd);
    unlink(probe);
    free(probe);
    if (err_len) err[0] = '\0';
    return 0;
}

/* ========================================================================================
 * What sits at a destination. */

int io_check_dest(const char *path, const unsigned char *magic, size_t magic_len,
                  const char *what, char *err, size_t err_len) {
    if (err_len) err[0] = '\0';
    if (!path[0]) { snprintf(err, err_len, "empty path for %s", what); return -1; }
    if (strlen(path) + 40 >= PATH_MAX) {
        snprintf(err, err_len, "%.60s...: a path of %zu bytes is too long (at most %d)",
                 path, strlen(path), PATH_MAX - 41);
        return -1;
    }
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (S_ISLNK(st.st_mode)) {
            snprintf(err, err_len, "%s is a symbolic link: give the file it points to, or "
                     "another path (a save never writes through a link)", path);
            return -1;
        }
        if (S_ISDIR(st.st_mode)) {
            snprintf(err, err_len, "%s is a folder: give a file name for %s", path, what);
            return -1;
        }
        if (!S_ISREG(st.st_mode)) {
            snprintf(err, err_len, "%s is not a regular file (a device or a pipe): give a "
                     "file name for %s", path, what);
            return -1;
        }
        if (magic) {
            unsigned char head[64];
            size_t got = 0;
            FILE *in = fopen(path, "rb");
            if (in) { got = fread(head, 1, magic_len < sizeof head ? magic_len : sizeof head, in); fclose(in); }
            if (got != magic_len || memcmp(head, magic, magic_len) != 0) {
                snprintf(err, err_len, "%s exists and is not %s: it is left alone; remove it "
                         "or choose another path", path, what);
                return -1;
            }
        }
    } else if (errno != ENOENT) {
        snprintf(err, err_len, "cannot use %s: %s", path, strerror(errno));
        return -1;
    }
    char *dir = folder_of(path);
    if (!dir) { snprintf(err, err_len, "out of memory"); return -1; }
    int rc = 0;
    if (stat(dir, &st) != 0) {
        snprintf(err, err_len, "cannot write %s: folder %s: %s", path, dir, strerror(errno));
        rc = -1;
    } else if (!S_ISDIR(st.st_mode)) {
        snprintf(err, err_len, "cannot write %s: %s is not a folder", path, dir);
        rc = -1;
    } else if (access(dir, W_OK | X_OK) != 0) {
        snprintf(err, err_len, "cannot write %s: folder %s: %s", path, dir, strerror(errno));
        rc = -1;
    }
    free(dir);
    return rc;
}
