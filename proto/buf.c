/* buf.c - bounds-checked reader and writer. */
#include "buf.h"

#include <errno.h>
#include <string.h>

void rd_init(struct reader *r, const void *data, size_t len)
{
	r->p = data;
	r->len = len;
	r->off = 0;
	r->failed = false;
}

size_t rd_left(const struct reader *r)
{
	return r->failed ? 0 : r->len - r->off;
}

bool rd_error(const struct reader *r)
{
	return r->failed;
}

void rd_fail(struct reader *r)
{
	r->failed = true;
}

const uint8_t *rd_ptr(struct reader *r, size_t n)
{
	const uint8_t *p;

	if (r->failed || n > r->len - r->off) {
		r->failed = true;
		return NULL;
	}
	p = r->p + r->off;
	r->off += n;
	return p;
}

uint8_t rd_u8(struct reader *r)
{
	const uint8_t *p = rd_ptr(r, 1);

	return p ? p[0] : 0;
}

uint16_t rd_u16(struct reader *r)
{
	const uint8_t *p = rd_ptr(r, 2);

	return p ? (uint16_t)(p[0] << 8 | p[1]) : 0;
}

uint32_t rd_u32(struct reader *r)
{
	const uint8_t *p = rd_ptr(r, 4);

	return p ? be32_get(p) : 0;
}

uint64_t rd_u64(struct reader *r)
{
	const uint8_t *p = rd_ptr(r, 8);

	if (!p)
		return 0;
	return (uint64_t)be32_get(p) << 32 | be32_get(p + 4);
}

void rd_opaque(struct reader *r, void *out, size_t n)
{
	const uint8_t *p = rd_ptr(r, n);

	if (p)
		memcpy(out, p, n);
	else
		memset(out, 0, n);
}

const uint8_t *rd_bytes16(struct reader *r, size_t *len)
{
	size_t n = rd_u16(r);
	const uint8_t *p = rd_ptr(r, n);

	*len = p ? n : 0;
	return p;
}

void rd_name(struct reader *r, char out[NAME_MAX_LEN + 1])
{
	size_t n = rd_u8(r);
	const uint8_t *p;

	out[0] = '\0';
	if (r->failed)
		return;
	if (n < 1 || n > NAME_MAX_LEN) {
		r->failed = true;
		return;
	}
	p = rd_ptr(r, n);
	if (!p)
		return;
	if (!name_valid((const char *)p, n)) {
		r->failed = true;
		return;
	}
	memcpy(out, p, n);
	out[n] = '\0';
}

int rd_end(const struct reader *r)
{
	return (r->failed || r->off != r->len) ? -EBADMSG : 0;
}

void wr_init(struct writer *w, void *buf, size_t cap)
{
	w->p = buf;
	w->cap = cap;
	w->len = 0;
	w->failed = false;
}

bool wr_error(const struct writer *w)
{
	return w->failed;
}

uint8_t *wr_reserve(struct writer *w, size_t n)
{
	uint8_t *p;

	if (w->failed || n > w->cap - w->len) {
		w->failed = true;
		return NULL;
	}
	p = w->p + w->len;
	w->len += n;
	return p;
}

void wr_bytes(struct writer *w, const void *data, size_t n)
{
	uint8_t *p = wr_reserve(w, n);

	if (p && n)
		memcpy(p, data, n);
}

void wr_u8(struct writer *w, uint8_t v)
{
	wr_bytes(w, &v, 1);
}

void wr_u16(struct writer *w, uint16_t v)
{
	uint8_t b[2] = { v >> 8, v & 0xff };

	wr_bytes(w, b, 2);
}

void wr_u32(struct writer *w, uint32_t v)
{
	uint8_t b[4];

	be32_put(b, v);
	wr_bytes(w, b, 4);
}

void wr_u64(struct writer *w, uint64_t v)
{
	wr_u32(w, (uint32_t)(v >> 32));
	wr_u32(w, (uint32_t)v);
}

void wr_bytes16(struct writer *w, const void *data, size_t n)
{
	if (n > 0xffff) {
		w->failed = true;
		return;
	}
	wr_u16(w, (uint16_t)n);
	wr_bytes(w, data, n);
}

void wr_name(struct writer *w, const char *name)
{
	size_t n = strnlen(name, NAME_MAX_LEN + 1);

	if (!name_valid(name, n)) {
		w->failed = true;
		return;
	}
	wr_u8(w, (uint8_t)n);
	wr_bytes(w, name, n);
}

static bool name_char(unsigned char c, bool first)
{
	if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
		return true;
	return !first && (c == '.' || c == '_' || c == '-');
}

bool name_valid(const char *s, size_t len)
{
	if (len < 1 || len > NAME_MAX_LEN)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!name_char((unsigned char)s[i], i == 0))
			return false;
	return true;
}

bool name_valid_str(const char *s)
{
	return name_valid(s, strnlen(s, NAME_MAX_LEN + 1));
}
