/* checkpoint.h: save and load a model and its training state, validated and atomic.
 *
 * What is here: a header of named settings (`CkptHeader`: the program writes whatever it
 * needs to rebuild its model, e.g. "model" = "mlp", "T" = 50, "hidden" = 128), and the
 * save/load of a ParamSet (weights, EMA weights, Adam moments, Adam step) with the
 * random generator, so that a resumed run continues bit for bit.
 * What is not: any particular model. checkpoint.c sees only tensor.h; the program reads
 * the header, builds its model from it (which declares and allocates the ParamSet), then
 * loads the numbers into it. Plain stdio, no mmap, no compression.
 *
 * Typical use:
 *   save:    CkptHeader h; ckpt_header_init(&h);
 *            ckpt_set_string(&h, "model", "mlp"); ckpt_set_int(&h, "hidden", 128); ...
 *            if (checkpoint_save("run.ckpt", &h, &ps, &rng) != 0) exit(1);
 *   resume:  checkpoint_read_header("run.ckpt", &h);    read the settings, build the model
 *            checkpoint_load("run.ckpt", &h, &ps, &rng); then keep training
 *
 * Errors: every function below that can fail returns 0 on success and −1 on failure,
 * with ONE line on stderr naming the file, the problem and a hint, e.g.
 *   error: run.ckpt: fc1.w: file has (34, 64), model has (34, 128): build the model with
 *   the settings it was saved with (they are in the file's header)
 * and then leaves everything it was given unchanged (the ParamSet, the Rng, the header,
 * and any file already at the destination path). The `_err` variants write the same line
 * (without "error: ") into a buffer instead of stderr, for tests and for programs that
 * add their own context.
 *
 * ========================================================================================
 * File format, version 1. A byte stream with no padding or alignment. All integers are
 * little-endian, unsigned unless said: u8, u32 (4 bytes), u64 (8 bytes); i64 is two's
 * complement in 8 bytes. f64 and f32 are IEEE-754 binary64 / binary32, stored as the u64 /
 * u32 with the same bits (little-endian). A string is u32 byte length L then L bytes of
 * UTF-8, with no terminating NUL and no NUL inside.
 *
 *   offset  size  field
 *   0       8     magic: the ASCII bytes "DDPMCKPT"
 *   8       4     u32 format version = 1
 *   12      8     u64 file size in bytes, this field and the checksum included
 *   20      4     u32 real size R: 4 (tensor values below are f32) or 8 (f64); the
 *                 writer's `real`. A loader converts if its `real` differs (double → float
 *                 rounds to nearest, float → double is exact); bit-exact resume needs the
 *                 same `real` on both sides.
 *   24      4     u32 number of settings S, 0..64
 *   28      ...   S settings, each:
 *                   string  name (1..47 bytes), unique in the file
 *                   u8      type: 1 = int64, 2 = double, 3 = string
 *                   value   type 1: i64;  type 2: f64;  type 3: string (0..255 bytes)
 *           8     i64 step: Adam steps taken (ParamSet.step), ≥ 0
 *           32    Rng state: u64 s[0], s[1], s[2], s[3] (xoshiro256**, in this order)
 *           8     f64 spare: the waiting second Box-Muller normal
 *           1     u8 has_spare: 0 or 1
 *           4     u32 number of tensors P, then P tensors in the ParamSet's declaration
 *                 order, each:
 *                   string  name (1..47 bytes), e.g. "fc1.w"
 *                   u32     ndim, 1..4
 *                   ndim u32 shape, each ≥ 1, e.g. 34, 128; n = product of the shape
 *                   n values (R bytes each, row-major as in memory): the weights w
 *                   n values: the EMA weights
 *                   n values: the Adam first moment m
 *                   n values: the Adam second moment v
 *   size−4  4     u32 checksum: CRC-32 of every byte before it (offset 0 to size−5).
 *                 The CRC-32 of zlib and PNG: reflected polynomial 0xEDB88320, initial
 *                 value 0xFFFFFFFF, final xor 0xFFFFFFFF; crc("123456789") = 0xCBF43926,
 *                 so Python's zlib.crc32(data[:-4]) checks it.
 *
 * A reader in Python: data = open(p, "rb").read(); check data[:8] == b"DDPMCKPT",
 * struct.unpack_from("<I", data, 8) == (1,), then walk the fields above with "<I", "<Q",
 * "<q", "<d", "<B", and numpy.frombuffer(data, "<f8" or "<f4", n, offset) per array.
 *
 * What a load checks, in this order, and the message it gives:
 *   fewer than 8 bytes that begin like the magic, or a short fixed part
 *                                         "truncated at byte N"
 *   other magic                           "not a DDPM checkpoint"
 *   version ≠ 1                           "format version V is not supported (this build
 *                                         reads version 1)"
 *   a size field above 64 GiB             "malformed: the file says it has M bytes, ..."
 *   file shorter than its size field      "truncated at byte N (the file says M bytes)"
 *   file longer than its size field       "N bytes after the end of the checkpoint"
 *   checksum mismatch                     "corrupted (CRC-32 mismatch)"
 *   a field out of range (a file made by another writer)   "malformed: ..."
 *   tensor count, each name, each shape against the model  "fc1.w: file has (..), model
 *                                         has (..)" and a hint
 * Nothing is written into the ParamSet or the Rng unless every check passed. A load reads
 * at most what the size field announces (plus 1 MiB to count trailing bytes), so a device
 * like /dev/zero or a file that is not a checkpoint is refused after its first 28 bytes.
 *
 * Saving is atomic and goes through io.h: nothing is written unless what is at `path` is
 * absent or a regular file that starts with the magic (a symbolic link, a folder, a
 * device, or any other file is left alone, with a message saying so); the file is written
 * under a unique temporary name beside `path` (path.tmp.<pid>), every write checked,
 * fsync()ed, closed, renamed over `path` (atomic on POSIX), and the folder fsync()ed.
 * What is guaranteed: at every moment, even if the process is killed or the power fails,
 * `path` holds either the previous complete checkpoint or the new complete one. On any
 * failure the temporary is removed and the previous file is untouched; a process killed
 * mid-save leaves its temporary behind, and the next save to the same path removes it.
 */
#ifndef CHECKPOINT_H
#define CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "tensor.h"

#define CKPT_FORMAT_VERSION 1
#define CKPT_MAX_SETTINGS 64     /* settings in one header */
#define CKPT_NAME_LEN 48         /* a setting's name: at most 47 bytes + NUL */
#define CKPT_STRING_LEN 256      /* a string value: at most 255 bytes + NUL */
#define CKPT_MAX_FILE_BYTES ((uint64_t)1 << 36)   /* 64 GiB: a larger size field is refused */

/* ----------------------------------------------------------------------------------------
 * The header: named settings, in the order they were first set. */
typedef enum { CKPT_INT = 1, CKPT_DOUBLE = 2, CKPT_STRING = 3 } CkptType; /* = file codes */

typedef struct {
    char name[CKPT_NAME_LEN];   /* e.g. "T", "schedule", "data.mean0" */
    CkptType type;
    int64_t i;                  /* the value if type == CKPT_INT, e.g. 50 */
    double d;                   /* the value if type == CKPT_DOUBLE, e.g. 7.5 */
    char s[CKPT_STRING_LEN];    /* the value if type == CKPT_STRING, e.g. "linear" */
} CkptSetting;

typedef struct {
    CkptSetting set[CKPT_MAX_SETTINGS];
    int count;
    int real_size;              /* read from a file: its R, 4 (float) or 8 (double), so that
                                   a program can say when a load converts; 0 otherwise (a
                                   save writes this build's sizeof(real) whatever it holds) */
} CkptHeader;

void ckpt_header_init(CkptHeader *h);   /* empty */

/* Set a setting, replacing any earlier one of the same name (whatever its type). A name
 * that is empty or longer than 47 bytes, a string longer than 255 bytes, or a 65th
 * setting is a programming error: die() says which. */
void ckpt_set_int(CkptHeader *h, const char *name, int64_t v);
void ckpt_set_double(CkptHeader *h, const char *name, double v);
void ckpt_set_string(CkptHeader *h, const char *name, const char *v);

/* Get a setting: 0 and *v set if `name` exists with that type, −1 otherwise (*v untouched,
 * nothing printed: the caller knows whether a missing setting is an error or a default).
 * ckpt_get_string points *v into the header. */
int ckpt_get_int(const CkptHeader *h, const char *name, int64_t *v);
int ckpt_get_double(const CkptHeader *h, const char *name, double *v);
int ckpt_get_string(const CkptHeader *h, const char *name, const char **v);
const CkptSetting *ckpt_find(const CkptHeader *h, const char *name);  /* NULL if missing */

/* Prints "name = value" one per line (strings quoted, doubles with 17 digits). */
void ckpt_print(FILE *f, const CkptHeader *h);

/* ----------------------------------------------------------------------------------------
 * Save and load. */

/* Writes h, ps (w, ema, m, v, step) and rng to `path` atomically (see above). Refuses,
 * before writing anything, a `path` that holds something other than a checkpoint. */
int checkpoint_save(const char *path, const CkptHeader *h, const ParamSet *ps, const Rng *rng);

/* What checkpoint_save checks first, for a program to call before training: 0 if `path`
 * may receive a checkpoint (nothing there, or a checkpoint; its folder writable), else −1
 * with one line on stderr ("error: ...") or in err. */
int checkpoint_check_dest(const char *path, char *err, size_t err_len);

/* Reads and validates the whole file (magic, version, size, checksum) and fills h with its
 * settings, so that the program can build its model before loading the numbers. */
int checkpoint_read_header(const char *path, CkptHeader *h);

/* Validates everything (see above) against ps, which the program has built (declared and
 * allocated) from the header: the same tensors with the same names and shapes in the same
 * order. Then restores ps->w, ps->ema, ps->m, ps->v, ps->step, the Rng (if rng is not NULL)
 * and h (if not NULL). Gradients are not stored: each training step zeroes them anyway. */
int checkpoint_load(const char *path, CkptHeader *h, ParamSet *ps, Rng *rng);

/* The same three with the one-line message (without "error: ") written into err
 * (err_len bytes, always NUL-terminated; "" on success) instead of stderr. */
int checkpoint_save_err(const char *path, const CkptHeader *h, const ParamSet *ps,
                        const Rng *rng, char *err, size_t err_len);
int checkpoint_read_header_err(const char *path, CkptHeader *h, char *err, size_t err_len);
int checkpoint_load_err(const char *path, CkptHeader *h, ParamSet *ps, Rng *rng,
                        char *err, size_t err_len);

/* The same two on a file already in memory (size bytes at buf; `name` is what messages
 * call it), for the fuzz targets and for programs that hold the bytes already. */
int checkpoint_read_header_mem(const void *buf, size_t size, const char *name, CkptHeader *h,
                               char *err, size_t err_len);
int checkpoint_load_mem(const void *buf, size_t size, const char *name, CkptHeader *h,
                        ParamSet *ps, Rng *rng, char *err, size_t err_len);

#endif
