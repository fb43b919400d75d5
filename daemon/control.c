/* control.c - placeholder until the Varlink server lands: the control
 * socket accepts and closes connections. */
#include "control.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server.h"

int control_start(struct server *srv)
{
	struct epoll_event ev = { .events = EPOLLIN,
				  .data.u64 = CONTROL_TAG_LISTEN };

	return epoll_ctl(srv->epfd, EPOLL_CTL_ADD, srv->control_fd, &ev);
}

void control_handle(struct server *srv, uint64_t data, uint32_t events)
{
	int fd;

	(void)data;
	(void)events;
	fd = accept4(srv->control_fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd >= 0)
		close(fd);
}

void control_stop(struct server *srv)
{
	(void)srv;
}
