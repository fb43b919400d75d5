/* syncshim.c - an LD_PRELOAD shim for test_durable.c: fsync() and
 * fdatasync() first wait $SYNCSHIM_DELAY_MS milliseconds, then do the real
 * call, then append "sync NS" (CLOCK_MONOTONIC, when it returned) to the
 * file $SYNCSHIM_LOG. A slow disk made visible: an answer that depends on
 * a flush can be checked against the flushes that had completed when it
 * arrived. Built without sanitizers (make tests builds it); never linked
 * into anything.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int log_fd = -1;
static long delay_ms;

__attribute__((constructor)) static void shim_init(void)
{
	const char *path = getenv("SYNCSHIM_LOG");
	const char *d = getenv("SYNCSHIM_DELAY_MS");

	real_fsync = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
	real_fdatasync = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
	if (path)
		log_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
			      0600);
	delay_ms = d ? strtol(d, NULL, 10) : 0;
}

static void note(void)
{
	struct timespec t;
	char line[48];
	int n;

	clock_gettime(CLOCK_MONOTONIC, &t);
	n = snprintf(line, sizeof(line), "sync %lld\n",
		     (long long)t.tv_sec * 1000000000LL + t.tv_nsec);
	if (log_fd >= 0 && write(log_fd, line, (size_t)n) != n)
		(void)0;	/* the test then finds no flush and fails */
}

static int slow(int (*real)(int), int fd)
{
	int r;

	if (delay_ms > 0)
		usleep((useconds_t)delay_ms * 1000);
	r = real(fd);
	note();
	return r;
}

int fsync(int fd)
{
	return slow(real_fsync, fd);
}

int fdatasync(int fd)
{
	return slow(real_fdatasync, fd);
}
