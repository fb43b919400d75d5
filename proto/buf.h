/* buf.h - bounds-checked reader and writer for the secmsg wire types.
 *
 * Every read from peer-controlled bytes goes through a struct reader: it
 * knows how many bytes remain, and once a read fails the reader stays
 * failed, so a parser can read every field and check rd_error() once.
 */
#ifndef SECMSG_BUF_H
#define SECMSG_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NAME_MAX_LEN 32 /* PROTOCOL.md §1: name is 1..32 bytes */

struct reader {
	const uint8_t *p;
	size_t len;
	size_t off;
	bool failed;
};

struct writer {
	uint8_t *p;
	size_t cap;
	size_t len;
	bool failed;
};

/* Start reading len bytes at data. */
void rd_init(struct reader *r, const void *data, size_t len);
/* Bytes not yet read (0 once failed). */
size_t rd_left(const struct reader *r);
/* True once any read ran past the end or met a malformed field. */
bool rd_error(const struct reader *r);
/* Mark the reader failed (a field had a bad value). */
void rd_fail(struct reader *r);
uint8_t rd_u8(struct reader *r);
uint16_t rd_u16(struct reader *r);
uint32_t rd_u32(struct reader *r);
uint64_t rd_u64(struct reader *r);
/* Copy exactly n bytes to out (zeroed on failure). */
void rd_opaque(struct reader *r, void *out, size_t n);
/* Point at the next n bytes without copying; NULL on failure. */
const uint8_t *rd_ptr(struct reader *r, size_t n);
/* A bytes16 field: returns a pointer to its bytes and sets *len. */
const uint8_t *rd_bytes16(struct reader *r, size_t *len);
/* A name field, validated (§1) and NUL-terminated into out. */
void rd_name(struct reader *r, char out[NAME_MAX_LEN + 1]);
/* 0 when every read succeeded and nothing is left over, else -EBADMSG. */
int rd_end(const struct reader *r);

/* Start writing into cap bytes at buf. */
void wr_init(struct writer *w, void *buf, size_t cap);
bool wr_error(const struct writer *w);
void wr_u8(struct writer *w, uint8_t v);
void wr_u16(struct writer *w, uint16_t v);
void wr_u32(struct writer *w, uint32_t v);
void wr_u64(struct writer *w, uint64_t v);
void wr_bytes(struct writer *w, const void *data, size_t n);
/* A bytes16 field; fails if n > 65535. */
void wr_bytes16(struct writer *w, const void *data, size_t n);
/* A name field; fails if name is not valid (§1). */
void wr_name(struct writer *w, const char *name);
/* Reserve n bytes and return where they start (NULL on failure). */
uint8_t *wr_reserve(struct writer *w, size_t n);

/* True if s (len bytes) is a valid user name: [a-z0-9][a-z0-9._-]*, 1..32. */
bool name_valid(const char *s, size_t len);
/* Same for a NUL-terminated string. */
bool name_valid_str(const char *s);

/* Big-endian helpers for code that works on raw buffers. */
static inline uint32_t be32_get(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static inline void be32_put(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

#endif
