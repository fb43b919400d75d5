/* control.h - the Varlink control socket (io.secmsg.Admin, PROTOCOL.md §9),
 * served by the main thread. */
#ifndef SECMSGD_CONTROL_H
#define SECMSGD_CONTROL_H

#include <stdint.h>

struct server;

/* Epoll tags the main loop routes to control_handle(). */
#define CONTROL_TAG_LISTEN 0x100
#define CONTROL_TAG_CLIENT 0x200

/* Start serving on srv->control_fd (registered in srv->epfd). */
int control_start(struct server *srv);
/* An epoll event whose tag is CONTROL_TAG_*. */
void control_handle(struct server *srv, uint64_t data, uint32_t events);
/* Close every control connection. */
void control_stop(struct server *srv);

#endif
