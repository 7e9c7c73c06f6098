/* cli.h: what the two programs (toy2d.c, images.c) share and nothing else: option values
 * with one-line errors, wall-clock time, and output folders. No diffusion here.
 */
#ifndef CLI_H
#define CLI_H

/* "--name value" or "--name=value": splits argv[*i] into name (at most `len` bytes) and
 * value; *value is NULL for a flag without "=" (the caller takes argv[++*i] if it needs one).
 * Dies with a one-line message on an argument that does not start with "--". */
void cli_split(const char *program, char **argv, int i, char *name, int len, const char **value);
/* The value of option `opt` as an integer in lo..hi, or a number in [lo, hi]; anything else
 * dies with "OPT: 'VALUE' is not an integer in LO..HI". */
long cli_int(const char *opt, const char *value, long lo, long hi);
double cli_double(const char *opt, const char *value, double lo, double hi);

double now_seconds(void);                  /* wall clock, for progress lines and reports */
void make_folder(const char *path);        /* mkdir -p; dies with the reason if it cannot */
/* dir/name in a static buffer: use the result before the next call */
const char *path_in(const char *dir, const char *name);

#endif
