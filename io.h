/* io.h: the one way the project writes a file: atomically, with every error checked.
 *
 * What is here: `IoFile`, a file being written under a unique temporary name beside its
 * destination, and committed by rename() once all of it is on disk; a check of what sits
 * at a destination path before anything is computed; and a fault-injection hook that the
 * tests arm to make the k-th byte or the k-th call fail as a full disk, a short write or
 * an I/O error would.
 * What is not: reading, formats, buffering policy beyond one buffer, or portability beyond
 * POSIX (open, write, fsync, rename; libc only).
 *
 * Typical use (checkpoints, pictures, CSVs, summaries):
 *   char err[512];
 *   IoFile *f = io_create("out/toy2d/samples.csv", err, sizeof err);
 *   if (!f) { fprintf(stderr, "error: %s\n", err); ... }
 *   io_printf(f, "x,y\n"); io_write(f, bytes, n); ...      errors are remembered
 *   if (io_commit(f, err, sizeof err) != 0) { fprintf(stderr, "error: %s\n", err); ... }
 *
 * What a commit guarantees: the data goes to `path.tmp.<pid>` (".<n>" appended if that
 * name is taken: two runs saving to one path never share a temporary), is written in full
 * (a short write is continued, EINTR is retried), fsync()ed, closed, renamed over `path`,
 * and the folder is fsync()ed, so that after io_commit returns 0 the new file survives a
 * crash or a power cut. Until the rename, `path` keeps whatever it held before; a process
 * killed mid-write leaves its temporary behind (nothing can remove it), and the next
 * io_create for the same path removes temporaries whose process no longer exists.
 * On any failure the temporary is removed and the message says what failed, e.g.
 *   "cannot write out/a.png: No space left on device (after 8192 of the bytes given)"
 */
#ifndef IO_H
#define IO_H

#include <stddef.h>
#include <stdint.h>

#define IO_BUF_BYTES 65536

typedef struct {
    char *path;                       /* the destination, e.g. "out/toy2d/samples.csv" */
    char *tmp;                        /* the temporary beside it, e.g. "...csv.tmp.4242" */
    int fd;                           /* the temporary's descriptor, -1 once closed */
    uint64_t bytes;                   /* bytes given so far (io_write, io_printf, ...) */
    int err_no;                       /* the first failure's errno; 0 = none so far */
    const char *failed_at;            /* what failed first: "write", "fsync", ... */
    size_t used;                      /* bytes waiting in buf */
    unsigned char buf[IO_BUF_BYTES];
} IoFile;

/* Creates the temporary for `path`. NULL (and the reason in err) if it cannot. */
IoFile *io_create(const char *path, char *err, size_t err_len);

/* Append bytes. A failure is remembered (later calls do nothing) and io_commit reports it. */
void io_write(IoFile *f, const void *p, size_t n);
void io_putc(IoFile *f, int c);
void io_puts(IoFile *f, const char *s);
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
void io_printf(IoFile *f, const char *fmt, ...);
int io_failed(const IoFile *f);       /* 1 once anything failed */

/* Flush, fsync, close, rename over path, fsync the folder; frees f. 0 on success; on
 * failure −1, the temporary removed and the message in err. */
int io_commit(IoFile *f, char *err, size_t err_len);
/* Gives up: closes and removes the temporary, frees f. `path` is untouched; the file
 * counts as a failed write (io_failed_writes). */
void io_abort(IoFile *f);

/* Files this process failed to write (each failed io_create or io_commit, and each
 * io_abort, counts one), so
 * that a program can exit non-zero at the end if any output was lost, after writing all
 * the others: `return io_failed_writes() ? 1 : 0;`. */
int io_failed_writes(void);

/* A folder where outputs will go: 0 if a file can be created (and removed) in it now,
 * else −1 and the reason in err, e.g. "cannot write in out/x: Read-only file system".
 * For programs to check every output before the first training step. */
int io_check_folder(const char *dir, char *err, size_t err_len);

/* What may be replaced at `path`, checked before any work is done:
 *   nothing there, or a regular file that starts with `magic` (magic_len bytes; with
 *   magic NULL any regular file)  → 0;
 *   a symbolic link, a directory, a device, a pipe, a regular file without the magic, a
 *   folder that does not exist or is not writable, a path longer than the system allows
 *   → −1 with the reason in err, e.g. "out/x.ckpt is a symbolic link: give the file it
 *   points to, or another path".
 * `what` names the file in the message ("a DDPM checkpoint"). */
int io_check_dest(const char *path, const unsigned char *magic, size_t magic_len,
                  const char *what, char *err, size_t err_len);

/* ----------------------------------------------------------------------------------------
 * Fault injection, for the tests. Counting starts when armed, over every IoFile:
 *   IO_FAULT_FULL   the disk fills at byte k: bytes 0..k−1 are written, then ENOSPC
 *   IO_FAULT_SHORT  the write crossing byte k returns early, with no error (write(2) may);
 *                   the helper must finish the write, so the file must come out complete
 *   IO_FAULT_EIO    the k-th call (k = 0 first) among open, write, fsync, close, rename
 *                   and the folder's open and fsync fails with EIO
 * A program reads the same from the environment at its first io_create:
 *   DDPM_IO_FAULT=full:K | short:K | eio:K   (e.g. DDPM_IO_FAULT=full:0 ./toy2d) */
typedef enum { IO_FAULT_NONE = 0, IO_FAULT_FULL, IO_FAULT_SHORT, IO_FAULT_EIO } IoFaultKind;
void io_fault_arm(IoFaultKind kind, uint64_t k);
void io_fault_disarm(void);
uint64_t io_fault_calls(void);        /* calls counted since armed (to size a sweep) */

#endif
