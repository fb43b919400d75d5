/* fileio.c - whole writes, bounded whole-file reads, atomic replacement.
 *
 * Reads may hold secrets (private keys, passphrases): a buffer that has to
 * grow is copied and the old one cleansed, never realloc'd, and
 * fio_free() cleanses. Regular files only: the file is opened O_NONBLOCK
 * so that a FIFO planted at the path cannot hang the reader, then fstat
 * refuses it.
 */
#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto.h"

#define READ_FIRST 4096	/* first buffer when the size is unknown (0) */

int fio_write_all(int fd, const void *p, size_t len)
{
	const char *c = p;
	ssize_t n;

	while (len > 0) {
		n = write(fd, c, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		c += n;
		len -= (size_t)n;
	}
	return 0;
}

void fio_free(char *buf, size_t len)
{
	if (!buf)
		return;
	crypto_cleanse(buf, len);
	free(buf);
}

/* Grow *buf (holding len bytes, room cap) to room want, cleansing the old. */
static int grow(char **buf, size_t len, size_t *cap, size_t want)
{
	char *nb = malloc(want);

	if (!nb)
		return -ENOMEM;
	if (*buf) {
		memcpy(nb, *buf, len);
		fio_free(*buf, *cap);
	}
	*buf = nb;
	*cap = want;
	return 0;
}

/* Read fd to its end, at most max bytes; size is a hint from fstat. */
static int read_fd(int fd, size_t size, size_t max, char **out, size_t *outlen)
{
	size_t len = 0, cap = 0;
	char *buf = NULL;
	ssize_t n;
	int r;

	if ((r = grow(&buf, 0, &cap, (size ? size : READ_FIRST) + 1)) < 0)
		return r;
	for (;;) {
		if (len + 1 == cap && (r = grow(&buf, len, &cap,
		    cap - 1 > max / 2 ? max + 2 : 2 * cap)) < 0)
			break;
		n = read(fd, buf + len, cap - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		r = n < 0 ? -errno : 0;
		if (n <= 0)
			break;
		len += (size_t)n;
		if (len > max) {
			r = -EFBIG;
			break;
		}
	}
	if (r < 0) {
		fio_free(buf, cap);
		return r;
	}
	buf[len] = '\0';
	*out = buf;
	*outlen = len;
	return 0;
}

int fio_read_file(const char *path, size_t max, char **out, size_t *len)
{
	struct stat st;
	int fd, r;

	*out = NULL;
	*len = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		r = -errno;
	else if (S_ISDIR(st.st_mode))
		r = -EISDIR;
	else if (!S_ISREG(st.st_mode))
		r = -EINVAL;
	else if ((unsigned long long)st.st_size > max)
		r = -EFBIG;
	else
		r = read_fd(fd, (size_t)st.st_size, max, out, len);
	close(fd);
	return r;
}

/* The directory part of path ("." or "/" when it has none). */
static int dir_of(const char *path, char *out, size_t len)
{
	const char *slash = strrchr(path, '/');
	int n;

	if (!slash)
		n = snprintf(out, len, ".");
	else if (slash == path)
		n = snprintf(out, len, "/");
	else
		n = snprintf(out, len, "%.*s", (int)(slash - path), path);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

void fio_sync_dir_of(const char *path)
{
	char dir[4096];
	int fd;

	if (dir_of(path, dir, sizeof(dir)) < 0)
		return;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return;
	(void)fsync(fd);
	close(fd);
}

/* DIR/.NAME.XXXXXX for path DIR/NAME (malloc'd). */
static char *temp_name(const char *path)
{
	const char *slash = strrchr(path, '/');
	size_t dlen = slash ? (size_t)(slash - path) + 1 : 0;
	size_t n = strlen(path) + sizeof("..XXXXXX");
	char *tmp = malloc(n);

	if (tmp)
		snprintf(tmp, n, "%.*s.%s.XXXXXX", (int)dlen, path, path + dlen);
	return tmp;
}

/* rename, or without replacing: link + unlink where renameat2 is missing. */
static int put_in_place(const char *tmp, const char *path, unsigned flags)
{
	if (!(flags & FIO_NOREPLACE))
		return rename(tmp, path) < 0 ? -errno : 0;
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -errno;
	if (link(tmp, path) < 0)
		return -errno;
	unlink(tmp);
	return 0;
}

int fio_write_atomic(const char *path, const void *data, size_t len,
		     mode_t mode, unsigned flags)
{
	char *tmp;
	int fd, r = 0;

	if ((flags & FIO_NOREPLACE) && access(path, F_OK) == 0)
		return -EEXIST;
	if (!(tmp = temp_name(path)))
		return -ENOMEM;
	fd = mkostemp(tmp, O_CLOEXEC);	/* created 0600 */
	if (fd < 0) {
		r = -errno;
		free(tmp);
		return r;
	}
	if (fchmod(fd, mode) < 0)
		r = -errno;
	if (r == 0)
		r = fio_write_all(fd, data, len);
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0)
		r = put_in_place(tmp, path, flags);
	if (r < 0)
		unlink(tmp);
	else
		fio_sync_dir_of(path);
	free(tmp);
	return r;
}
