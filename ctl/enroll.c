/* enroll.c - the users directory: USERS_DIR/NAME.pem, one key per user.
 *
 * A new key file appears whole or not at all: proto/keys writes the PEM
 * to a temporary file in the same directory (fsync, mode 0644), which is
 * then renamed into place (RENAME_NOREPLACE without --force, so a file
 * that appeared meanwhile is not overwritten either) and the directory
 * synced. The temporary name starts with '.', which secmsgd's users
 * loader skips without a warning.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"
#include "keys.h"

/* Best effort: the rename or unlink is done either way. */
static void sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return;
	fsync(fd);
	close(fd);
}

static int user_path(const char *dir, const char *name, const char *prefix,
		     const char *suffix, char *out, size_t len)
{
	int n = snprintf(out, len, "%s/%s%s.pem%s", dir, prefix, name, suffix);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* rename without replacing; link+unlink where the file system lacks it. */
static int rename_noreplace(const char *from, const char *to)
{
	if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -errno;
	if (link(from, to) < 0)
		return -errno;
	unlink(from);
	return 0;
}

int ctl_enroll_write(const char *dir, const char *name, const sm_key *key,
		     bool force, char *path, size_t pathlen)
{
	char tmp[CTL_PATH_MAX], suffix[32];
	int r;

	snprintf(suffix, sizeof(suffix), ".new-%ld", (long)getpid());
	if ((r = user_path(dir, name, "", "", path, pathlen)) < 0 ||
	    (r = user_path(dir, name, ".", suffix, tmp, sizeof(tmp))) < 0)
		return r;
	if (!force && access(path, F_OK) == 0)
		return -EEXIST;
	if ((r = key_write_public(tmp, key)) < 0)
		return r;
	if (force)
		r = rename(tmp, path) < 0 ? -errno : 0;
	else
		r = rename_noreplace(tmp, path);
	if (r < 0) {
		unlink(tmp);
		return r;
	}
	sync_dir(dir);
	return 0;
}

int ctl_enroll_remove(const char *dir, const char *name, char *path,
		      size_t pathlen)
{
	int r = user_path(dir, name, "", "", path, pathlen);

	if (r < 0)
		return r;
	if (unlink(path) < 0)
		return -errno;
	sync_dir(dir);
	return 0;
}
