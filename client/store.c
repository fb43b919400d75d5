/* store.c - the state file's lock, load and save. */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "keygen.h"

static int set_paths(struct cstore *s, const char *dir, const char *user)
{
	int a = snprintf(s->path, sizeof(s->path), "%s/%s.state", dir, user);
	int b = snprintf(s->lock_path, sizeof(s->lock_path), "%s/%s.lock", dir,
			 user);

	return a < 0 || b < 0 || (size_t)a >= sizeof(s->path) ||
	       (size_t)b >= sizeof(s->lock_path) ? -ENAMETOOLONG : 0;
}

/* Open the lock file and lock it without waiting. The lock goes with the
 * open file description: a second open, even in this process, is refused
 * (flock, unlike fcntl locks). The file itself stays: removing it would
 * let two clients lock two different files of one name. */
static int take_lock(struct cstore *s)
{
	int fd = open(s->lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
		      0600);

	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno == EWOULDBLOCK ? CSTORE_LOCKED : -errno;

		close(fd);
		return e;
	}
	s->lock_fd = fd;
	s->locked = true;
	return 0;
}

/* Load the state file; none yet is an empty state for user. Anything
 * else that goes wrong is the user's to look at: never a fresh state. */
static int load(struct cstore *s, const char *user, char *err, size_t errlen)
{
	int r = state_load(s->path, s->key, &s->st);

	if (r == -ENOENT)
		return state_init(&s->st, user);
	if (r == 0 && strcmp(s->st.self, user) != 0) {
		snprintf(err, errlen, "cannot use the state file %s: it belongs "
			 "to %s, not %s", s->path, s->st.self, user);
		return -EBADMSG;
	}
	if (r < 0)
		snprintf(err, errlen, "cannot use the state file %s: %s%s",
			 s->path, r == -EACCES || r == -EBADMSG ||
			 r == -EPROTONOSUPPORT || r == -EFBIG ?
			 state_strerror(r) : strerror(-r), r != -EACCES ? "" :
			 " (if your key changed, the server has ended your "
			 "conversations: move the file away to start without "
			 "them; see secmsg-client(1))");
	return r;
}

int cstore_open(struct cstore *s, const char *dir, const char *user,
		sm_key *key, char *err, size_t errlen)
{
	int r;

	memset(s, 0, sizeof(*s));
	s->lock_fd = -1;
	if (set_paths(s, dir, user) < 0) {
		snprintf(err, errlen, "state directory path too long: %s", dir);
		return -ENAMETOOLONG;
	}
	if ((r = keygen_make_dirs(dir)) < 0) {
		snprintf(err, errlen, "cannot create %s: %s", dir, strerror(-r));
		return r;
	}
	r = take_lock(s);
	if (r == CSTORE_LOCKED)
		snprintf(err, errlen, "another secmsg-client of %s is running "
			 "on this machine (it holds %s)", user, s->lock_path);
	else if (r < 0)
		snprintf(err, errlen, "cannot lock %s: %s", s->lock_path,
			 strerror(-r));
	if (r < 0)
		return r;
	s->key = key_ref(key);
	r = load(s, user, err, errlen);
	if (r < 0)
		cstore_close(s);
	return r;
}

int cstore_save(struct cstore *s)
{
	int r;

	if (!cstore_held(s))
		return -EBADF;
	r = state_save(s->path, &s->st, s->key);
	if (r == 0)
		s->saves++;
	return r;
}

void cstore_close(struct cstore *s)
{
	state_free(&s->st);
	if (s->key)
		key_unref(s->key);
	s->key = NULL;
	if (s->locked)
		close(s->lock_fd);
	s->locked = false;
	s->lock_fd = -1;
}

bool cstore_held(const struct cstore *s)
{
	return s->locked && s->key;
}
