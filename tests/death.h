/* death.h: a check that a call dies with the right message.
 *
 *   check_dies(what, fn, ctx, expect)   runs fn(ctx) in a child process (fork) with its
 *                                       stderr into a pipe; passes if the child exits with
 *                                       status 1 (die's) and its stderr contains `expect`
 *
 * A call that returns, crashes on a signal, or says something else fails the check. POSIX
 * (fork, pipe, waitpid): the test defines _POSIX_C_SOURCE before its first include.
 */
#ifndef DEATH_H
#define DEATH_H

#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

static void check_dies(const char *what, void (*fn)(void *), void *ctx, const char *expect) {
    int fd[2];
    fflush(stdout);
    fflush(stderr);
    if (pipe(fd) != 0) { CHECK(0, "%s: no pipe for the child's stderr", what); return; }
    pid_t child = fork();
    if (child < 0) { CHECK(0, "%s: fork failed", what); close(fd[0]); close(fd[1]); return; }
    if (child == 0) {                       /* the child: stderr into the pipe, then the call */
        close(fd[0]);
        dup2(fd[1], 2);
        close(fd[1]);
        fn(ctx);
        _exit(0);                           /* it returned: not a death */
    }
    close(fd[1]);
    char said[1024];
    size_t n = 0;
    ssize_t got;
    while (n < sizeof said - 1 && (got = read(fd[0], said + n, sizeof said - 1 - n)) > 0)
        n += (size_t)got;
    said[n] = 0;
    close(fd[0]);
    int status = 0;
    waitpid(child, &status, 0);
    int died = WIFEXITED(status) && WEXITSTATUS(status) == 1;
    CHECK(died && strstr(said, expect) != NULL, "%s: %s, said \"%s\" (expected \"%s\")", what,
          WIFSIGNALED(status) ? "crashed on a signal" : died ? "died" : "did not die with status 1",
          said, expect);
}

#endif
