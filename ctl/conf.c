/* conf.c - where secmsgctl finds the control socket and users directory.
 *
 * From secmsgd's configuration file, read with secmsgd's own table
 * (ctl/dconf.c, config_read): the same keys, defaults, checks and
 * relative-path rule as the daemon, without reading the files it names.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"

static void defaults(struct ctl_paths *p)
{
	snprintf(p->socket, sizeof(p->socket), "%s", CTL_DEFAULT_SOCKET);
	snprintf(p->users_dir, sizeof(p->users_dir), "%s",
		 CTL_DEFAULT_USERS_DIR);
}

int ctl_conf_load(const char *path, bool required, struct ctl_paths *p,
		  char *err, size_t errlen)
{
	struct config c;
	int r;

	defaults(p);
	r = config_read(&c, path, err, errlen);
	if (r == -ENOENT && !required)	/* no file: the defaults */
		return 0;
	if (r < 0)
		return r;
	snprintf(p->socket, sizeof(p->socket), "%s", c.control_socket);
	snprintf(p->users_dir, sizeof(p->users_dir), "%s", c.users_dir);
	return 0;
}
