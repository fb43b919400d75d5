/* varlink.c - NUL-framed messages (§9), bounded and incremental.
 *
 * Bytes are appended at len; messages are handed out from off. Every byte
 * is scanned once, when it is fed, so a peer that trickles a message one
 * byte at a time costs linear work, and a run of small messages in one
 * read is popped without moving memory (compaction happens at the next
 * feed). A message longer than max fails the reader for good.
 */
#include "varlink.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void vl_reader_init(struct vl_reader *r, size_t max)
{
	memset(r, 0, sizeof(*r));
	r->max = max;
}

void vl_reader_free(struct vl_reader *r)
{
	free(r->buf);
	vl_reader_init(r, r->max);
}

/* Check the lengths of the messages in data against max. */
static int scan(struct vl_reader *r, const char *data, size_t len)
{
	size_t part = r->part;
	const char *end = data + len;

	while (data < end) {
		const char *nul = memchr(data, '\0', (size_t)(end - data));
		size_t n = (size_t)((nul ? nul : end) - data);

		if (n > r->max - part)
			return -EMSGSIZE;
		part = nul ? 0 : part + n;
		data += n + (nul != NULL);
	}
	r->part = part;
	return 0;
}

/* Make room for n more bytes, dropping popped messages first. */
static int reserve(struct vl_reader *r, size_t n)
{
	size_t cap;
	char *b;

	if (r->off) {
		memmove(r->buf, r->buf + r->off, r->len - r->off);
		r->len -= r->off;
		r->off = 0;
	}
	if (n <= r->cap - r->len)
		return 0;
	if (n > SIZE_MAX / 2 - r->len)
		return -ENOMEM;
	cap = r->cap ? r->cap : 256;
	while (cap - r->len < n)
		cap *= 2;
	b = realloc(r->buf, cap);
	if (!b)
		return -ENOMEM;
	r->buf = b;
	r->cap = cap;
	return 0;
}

int vl_reader_feed(struct vl_reader *r, const void *data, size_t len)
{
	int e;

	if (r->err)
		return r->err;
	if (len == 0)
		return 0;
	e = scan(r, data, len);
	if (e == 0)
		e = reserve(r, len);
	if (e)
		return r->err = e;
	memcpy(r->buf + r->len, data, len);
	r->len += len;
	return 0;
}

const char *vl_reader_peek(struct vl_reader *r, size_t *n)
{
	const char *p, *nul;

	*n = 0;
	/* Only the unfinished message is held: nothing to hand out. */
	if (r->len - r->off == r->part)
		return NULL;
	p = r->buf + r->off;
	nul = memchr(p, '\0', r->len - r->off);
	if (!nul)
		return NULL;
	*n = (size_t)(nul - p);
	return p;
}

void vl_reader_pop(struct vl_reader *r)
{
	size_t n;

	if (vl_reader_peek(r, &n))
		r->off += n + 1;
	if (r->off == r->len)
		r->off = r->len = 0;
}
