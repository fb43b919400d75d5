/* conf.c - the two keys of secmsgd.conf that secmsgctl needs.
 *
 * Read with iniparser directly (secmsgctl does not link the daemon's
 * config.c): [server] control_socket and users_dir. Relative values are
 * relative to the file's directory, as secmsgd resolves them; an empty
 * control_socket (systemd passes the socket) keeps the default.
 */
#include <errno.h>
#include <iniparser.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "ctl.h"

static int quiet(const char *fmt, ...)
{
	(void)fmt;
	return 0;
}

/* dir of path + "/" + value, or value itself when absolute. */
static int resolve(const char *path, const char *value, char *out, size_t len)
{
	const char *slash = strrchr(path, '/');
	int n;

	if (value[0] == '/' || !slash)
		n = snprintf(out, len, "%s", value);
	else
		n = snprintf(out, len, "%.*s/%s", (int)(slash - path), path,
			     value);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static void defaults(struct ctl_paths *p)
{
	snprintf(p->socket, sizeof(p->socket), "%s", CTL_DEFAULT_SOCKET);
	snprintf(p->users_dir, sizeof(p->users_dir), "%s",
		 CTL_DEFAULT_USERS_DIR);
}

int ctl_conf_load(const char *path, bool required, struct ctl_paths *p,
		  char *err, size_t errlen)
{
	dictionary *d;
	const char *sock, *users;
	struct stat st;
	FILE *f;
	int r = 0;

	defaults(p);
	f = fopen(path, "re");
	if (!f) {
		if (errno == ENOENT && !required)
			return 0;
		r = -errno;
		snprintf(err, errlen, "cannot read %s: %s", path,
			 strerror(-r));
		return r;
	}
	if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
		fclose(f);
		snprintf(err, errlen, "cannot read %s: %s", path,
			 strerror(EISDIR));
		return -EISDIR;
	}
	fclose(f);
	iniparser_set_error_callback(quiet);
	d = iniparser_load(path);
	iniparser_set_error_callback(NULL);
	if (!d) {
		snprintf(err, errlen, "%s: not a valid configuration file",
			 path);
		return -EINVAL;
	}
	sock = iniparser_getstring(d, "server:control_socket", "");
	users = iniparser_getstring(d, "server:users_dir", "");
	if (sock[0])
		r = resolve(path, sock, p->socket, sizeof(p->socket));
	if (r == 0 && users[0])
		r = resolve(path, users, p->users_dir, sizeof(p->users_dir));
	if (r < 0)
		snprintf(err, errlen, "%s: a path is too long", path);
	iniparser_freedict(d);
	return r;
}
