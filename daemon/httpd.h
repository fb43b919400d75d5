/* httpd.h - GET /metrics and GET /health on the metrics socket, served
 * by the main thread (secmsgd(8), METRICS). */
#ifndef SECMSGD_HTTPD_H
#define SECMSGD_HTTPD_H

#include <stdbool.h>
#include <stdint.h>

struct server;

/* Epoll tags the main loop routes to httpd_handle() (the low 12 bits, as
 * control.h's; a client's slot and generation above them). */
#define HTTPD_TAG_LISTEN 0x400
#define HTTPD_TAG_CLIENT 0x500
#define HTTPD_TAG_TIMER 0x600
#define HTTPD_TAG_MASK 0xfff

/* Bounds on what a client of the endpoint may cost. */
#define HTTPD_MAX_CONNS 16	/* more at once get 503 and are closed */
#define HTTPD_TIMEOUT_MS 3000	/* a connection's whole life: 408 if no head */
#define HTTPD_ASK_MS 1000	/* wait for the workers' gauges */
/* /health answers 503 while a worker's loop has not gone round for this
 * long (it goes round at least every 100 ms). */
#define HEALTH_STALL_MS 2000

/* Serve srv->metrics_fd from srv->epfd. 0 or a negative errno. */
int httpd_start(struct server *srv);
/* Whether an epoll tag is one of httpd's. */
bool httpd_owns(uint64_t data);
/* An epoll event whose tag is HTTPD_TAG_*. */
void httpd_handle(struct server *srv, uint64_t data, uint32_t events);
/* Close every connection; free. */
void httpd_stop(struct server *srv);

#endif
