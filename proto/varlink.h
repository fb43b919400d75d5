/* varlink.h - Varlink framing: JSON texts each ended by one NUL byte.
 *
 * Only the framing lives here (bounded, incremental); the JSON itself is
 * parsed with jansson by the daemon and secmsgctl.
 */
#ifndef SECMSG_VARLINK_H
#define SECMSG_VARLINK_H

#include <stddef.h>

struct vl_reader {
	char *buf;
	size_t len, cap, max;
	size_t off;	/* start of the first message not yet popped */
	size_t part;	/* bytes of the last message whose NUL has not come */
	int err;	/* sticky: -EMSGSIZE or -ENOMEM once failed */
};

/* max: the largest message accepted (without its NUL). */
void vl_reader_init(struct vl_reader *r, size_t max);
void vl_reader_free(struct vl_reader *r);
/* Append received bytes; -EMSGSIZE once a message grows past max, -ENOMEM. */
int vl_reader_feed(struct vl_reader *r, const void *data, size_t len);
/* The next whole message (NUL-terminated string) or NULL; *n its length.
 * The pointer is valid until the next feed or pop. */
const char *vl_reader_peek(struct vl_reader *r, size_t *n);
/* Drop the message returned by peek. */
void vl_reader_pop(struct vl_reader *r);

#endif
