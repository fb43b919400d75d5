/* fileio.h - the file helpers every program shares: whole writes, bounded
 * whole-file reads, atomic replacement.
 *
 * Plain file I/O on paths and descriptors the caller names: no logging, no
 * sockets, no threads. Each function returns 0 or a negative errno code.
 */
#ifndef SECMSG_FILEIO_H
#define SECMSG_FILEIO_H

#include <stddef.h>
#include <sys/types.h>

/* fio_write_atomic: fail with -EEXIST rather than replace an existing file. */
#define FIO_NOREPLACE 0x1u

/* Write all len bytes to fd, retrying short writes and EINTR. */
int fio_write_all(int fd, const void *p, size_t len);
/*
 * Read the whole regular file path into a malloc'd buffer with a NUL after
 * its len bytes. Never blocks on a FIFO or device: -EINVAL for anything but
 * a regular file, -EISDIR for a directory, -EFBIG past max bytes (before
 * reading when the size says so, else once max + 1 bytes came).
 */
int fio_read_file(const char *path, size_t max, char **out, size_t *len);
/* Cleanse and free a buffer from fio_read_file (NULL is fine). */
void fio_free(char *buf, size_t len);
/*
 * Make path hold exactly len bytes of data with exactly mode: written to a
 * hidden temporary file ".NAME.XXXXXX" in the same directory (loaders that
 * skip dot files never see it), fsync'd, renamed over path, then the
 * directory fsync'd (best effort). On failure nothing is left behind.
 * FIO_NOREPLACE: -EEXIST if path exists, even if it appeared meanwhile.
 */
int fio_write_atomic(const char *path, const void *data, size_t len,
		     mode_t mode, unsigned flags);
/* Best effort: fsync the directory holding path (a rename or unlink in it). */
void fio_sync_dir_of(const char *path);

#endif
