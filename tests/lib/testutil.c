/* testutil.c - vector loading, hex and a scripted randomness source. */
#include "testutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "rand.h"

static void die(const char *what, const char *arg)
{
	fprintf(stderr, "testutil: %s: %s\n", what, arg);
	abort();
}

const char *tu_vectors_dir(void)
{
	const char *d = getenv("SECMSG_VECTORS");

	return d ? d : "tests/vectors";
}

json_t *tu_load_vectors(const char *name)
{
	char path[4096];
	json_error_t err;
	json_t *j;

	snprintf(path, sizeof(path), "%s/%s", tu_vectors_dir(), name);
	j = json_load_file(path, 0, &err);
	if (!j)
		die("cannot load vectors", path);
	return j;
}

json_t *tu_get(json_t *j, const char *path)
{
	char buf[256], *save = NULL, *tok;

	snprintf(buf, sizeof(buf), "%s", path);
	for (tok = strtok_r(buf, ".", &save); tok && j;
	     tok = strtok_r(NULL, ".", &save)) {
		if (json_is_array(j))
			j = json_array_get(j, strtoul(tok, NULL, 10));
		else
			j = json_object_get(j, tok);
	}
	if (!j)
		die("no such vector field", path);
	return j;
}

const char *tu_str(json_t *j, const char *path)
{
	json_t *v = tu_get(j, path);

	if (!json_is_string(v))
		die("not a string", path);
	return json_string_value(v);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

uint8_t *tu_unhex(const char *hex, size_t *len)
{
	size_t n = strlen(hex);
	uint8_t *out;

	if (n % 2)
		die("odd hex length", hex);
	out = malloc(n / 2 + 1);
	if (!out)
		abort();
	for (size_t i = 0; i < n / 2; i++) {
		int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);

		if (hi < 0 || lo < 0)
			die("bad hex", hex);
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	*len = n / 2;
	return out;
}

uint8_t *tu_hex(json_t *j, const char *path, size_t *len)
{
	return tu_unhex(tu_str(j, path), len);
}

void tu_hex_into(json_t *j, const char *path, uint8_t *out, size_t n)
{
	size_t len;
	uint8_t *b = tu_hex(j, path, &len);

	if (len != n)
		die("vector field has the wrong size", path);
	memcpy(out, b, n);
	free(b);
}

#define SCRIPT_MAX 256
static struct {
	uint8_t *buf[SCRIPT_MAX];
	size_t len[SCRIPT_MAX];
	size_t n, next;
} script;

/* Serves the pushed buffers in order; one request may take several
 * whole buffers (the server draws its nonce and ephemeral key at once),
 * never part of one. */
static int scripted(void *ctx, void *out, size_t len)
{
	uint8_t *p = out;

	(void)ctx;
	do {
		if (script.next >= script.n)
			die("scripted randomness exhausted", "");
		if (script.len[script.next] > len)
			die("scripted randomness: size mismatch", "");
		memcpy(p, script.buf[script.next], script.len[script.next]);
		p += script.len[script.next];
		len -= script.len[script.next];
		script.next++;
	} while (len > 0);
	return 0;
}

void tu_rand_push(const uint8_t *buf, size_t len)
{
	if (script.n >= SCRIPT_MAX)
		die("scripted randomness: too many buffers", "");
	script.buf[script.n] = malloc(len ? len : 1);
	if (!script.buf[script.n])
		abort();
	memcpy(script.buf[script.n], buf, len);
	script.len[script.n] = len;
	script.n++;
	rand_set(scripted, NULL);
}

void tu_rand_script(const uint8_t *const *bufs, const size_t *lens, size_t n)
{
	tu_rand_reset();
	for (size_t i = 0; i < n; i++)
		tu_rand_push(bufs[i], lens[i]);
}

size_t tu_rand_left(void)
{
	return script.n - script.next;
}

void tu_rand_reset(void)
{
	for (size_t i = 0; i < script.n; i++)
		free(script.buf[i]);
	memset(&script, 0, sizeof(script));
	rand_set(NULL, NULL);
}

const char *tu_pki_path(const char *file)
{
	static char path[4096];
	const char *d = getenv("SECMSG_PKI");

	snprintf(path, sizeof(path), "%s/%s", d ? d : "build/pki", file);
	return path;
}

int tu_mkdtemp(char dir[64], const char *tag)
{
	snprintf(dir, 64, "/tmp/secmsg-%s-XXXXXX", tag);
	return mkdtemp(dir) ? 0 : -1;
}

int tu_rmtree(const char *dir)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

int tu_send_all(int fd, const void *p, size_t len)
{
	const uint8_t *b = p;

	while (len > 0) {
		ssize_t n = send(fd, b, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		b += n;
		len -= (size_t)n;
	}
	return 0;
}
