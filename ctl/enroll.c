/* enroll.c - the users directory: USERS_DIR/NAME.pem, one key per user.
 *
 * A new key file appears whole or not at all: proto/keys writes the PEM
 * through fio_write_atomic, to a hidden temporary file in the same
 * directory (secmsgd's users loader skips dot files without a warning),
 * fsync'd with mode 0644, then renamed into place, without replacing a
 * file unless --force (so a file that appeared meanwhile is not
 * overwritten either), and the directory synced.
 */
#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#include "ctl.h"
#include "fileio.h"
#include "keys.h"

static int user_path(const char *dir, const char *name, char *out, size_t len)
{
	int n = snprintf(out, len, "%s/%s.pem", dir, name);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int ctl_enroll_write(const char *dir, const char *name, const sm_key *key,
		     bool force, char *path, size_t pathlen)
{
	int r = user_path(dir, name, path, pathlen);

	if (r < 0)
		return r;
	return force ? key_write_public(path, key) :
		       key_write_public_new(path, key);
}

int ctl_enroll_remove(const char *dir, const char *name, char *path,
		      size_t pathlen)
{
	int r = user_path(dir, name, path, pathlen);

	if (r < 0)
		return r;
	if (unlink(path) < 0)
		return -errno;
	fio_sync_dir_of(path);
	return 0;
}
