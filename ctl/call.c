/* call.c - one Varlink call over the control socket (PROTOCOL.md §9).
 *
 * Blocking, with one deadline for the whole call: connect, send the
 * request (at most VL_ADMIN_REQUEST_MAX bytes, the daemon's bound) and
 * its NUL, read until the reply's NUL (bounded by
 * CTL_REPLY_MAX, through proto/varlink's reader), parse it with jansson.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "ctl.h"
#include "mono.h"
#include "varlink.h"
#include "varlink_admin.h"

/* Wait for events on fd until deadline; 0 or -ETIMEDOUT. */
static int wait_fd(int fd, short events, int64_t deadline)
{
	for (;;) {
		struct pollfd p = { .fd = fd, .events = events };
		int64_t left = deadline - mono_ms();
		int n;

		if (left <= 0)
			return -ETIMEDOUT;
		n = poll(&p, 1, left > 60000 ? 60000 : (int)left);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return -errno;
	}
}

static int connect_unix(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		int e = -errno;

		close(fd);
		return e;
	}
	return fd;
}

static int send_all(int fd, const char *p, size_t len, int64_t deadline)
{
	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		int r;

		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			if ((r = wait_fd(fd, POLLOUT, deadline)) < 0)
				return r;
			continue;
		}
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Read until one whole message is in rd. */
static int recv_msg(int fd, struct vl_reader *rd, int64_t deadline)
{
	char buf[65536];
	size_t n;

	while (!vl_reader_peek(rd, &n)) {
		ssize_t got;
		int r = wait_fd(fd, POLLIN, deadline);

		if (r < 0)
			return r;
		got = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (got < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (got < 0)
			return -errno;
		if (got == 0)
			return -ECONNRESET;
		if ((r = vl_reader_feed(rd, buf, (size_t)got)) < 0)
			return r;
	}
	return 0;
}

static char *request_text(const char *method, json_t *params)
{
	json_t *req = params ? json_pack("{s:s, s:O}", "method", method,
					 "parameters", params) :
			       json_pack("{s:s, s:{}}", "method", method,
					 "parameters");
	char *text = req ? json_dumps(req, JSON_COMPACT) : NULL;

	json_decref(req);
	return text;
}

int ctl_call(const char *path, const char *method, json_t *params,
	     int timeout_ms, json_t **reply, const char **stage)
{
	int64_t deadline = mono_ms() + timeout_ms;
	struct vl_reader rd;
	char *text;
	const char *msg;
	size_t n;
	int fd, r;

	*reply = NULL;
	*stage = "connect to";
	if (!(text = request_text(method, params)))
		return -ENOMEM;
	if (strlen(text) > VL_ADMIN_REQUEST_MAX) {	/* the daemon would close */
		free(text);
		return -EMSGSIZE;
	}
	fd = connect_unix(path);
	if (fd < 0) {
		free(text);
		return fd;
	}
	vl_reader_init(&rd, CTL_REPLY_MAX);
	*stage = "send to";
	r = send_all(fd, text, strlen(text) + 1, deadline);
	if (r == 0) {
		*stage = "receive from";
		r = recv_msg(fd, &rd, deadline);
	}
	if (r == 0) {
		msg = vl_reader_peek(&rd, &n);
		*reply = json_loadb(msg, n, 0, NULL);
		if (!json_is_object(*reply)) {
			json_decref(*reply);
			*reply = NULL;
			r = -EBADMSG;
		}
	}
	vl_reader_free(&rd);
	close(fd);
	free(text);
	return r;
}
