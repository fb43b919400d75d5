/* addr.h - "HOST:PORT" and "[IPv6]:PORT" text, the one grammar of every
 * address secmsg reads or prints.
 *
 * Pure functions on text and sockaddr structures: no sockets, no name
 * resolution (the client resolves a host name itself).
 */
#ifndef SECMSG_ADDR_H
#define SECMSG_ADDR_H

#include <netinet/in.h>
#include <stddef.h>
#include <sys/socket.h>

/* "[v6 address]:65535" and its NUL. */
#define ADDR_TEXT_MAX (INET6_ADDRSTRLEN + 8)

/*
 * Split "HOST:PORT" or "[HOST]:PORT" (an IPv6 address, brackets needed as
 * soon as the host has a colon). host gets the host without brackets
 * (hostlen bytes with its NUL: a longer one is refused, never cut); the
 * port is 1..65535 in at most 5 decimal digits. -EINVAL for the form or
 * the host (empty, brackets inside), -ERANGE for the port.
 */
int addr_split(const char *s, char *host, size_t hostlen, unsigned *port);
/* A numeric "IPv4:PORT" or "[IPv6]:PORT" into *ss and *sslen; errors as
 * addr_split, and -EINVAL for a host that is not such an address. */
int addr_parse(const char *s, struct sockaddr_storage *ss, socklen_t *sslen);
/* "IPv4:PORT" or "[IPv6]:PORT" for an AF_INET or AF_INET6 address, "?"
 * for another family (out: ADDR_TEXT_MAX). */
void addr_format(const struct sockaddr *sa, char *out, size_t len);

#endif
