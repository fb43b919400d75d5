/* handshake.c - the client and server state machines of PROTOCOL.md §3.
 *
 * Each step parses the peer's body in a fixed order (type, magic, version,
 * then the fields, then the exact length), checks, and writes the next body
 * or the HandshakeError the peer is due. The transcript is one running
 * SHA-256 per side whose intermediate values give SHA-256(CH || SH*),
 * SHA-256(CH || SH) and SHA-256(CH || SH || CA) without copying messages.
 */
#include "handshake.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "frame.h"
#include "rand.h"

enum {
	ST_NONE = 0,	/* zeroed or cleared: every step is out of order */
	ST_START,	/* initialised */
	ST_WAIT,	/* server: ServerHello written; client: ClientHello */
	ST_DONE,
	ST_FAILED,
};

#define SIG_INPUT_MAX 64

static const uint8_t hs_magic[4] = { 'S', 'M', 'S', 'G' };
/* sizeof() of these includes the NUL: exactly the "text" || 0x00 of §3. */
static const char server_label[] = "secmsg/1 server signature";
static const char client_label[] = "secmsg/1 client signature";

_Static_assert(sizeof(server_label) + SHA256_LEN <= SIG_INPUT_MAX,
	       "signature input buffer");
_Static_assert(sizeof(client_label) + SHA256_LEN <= SIG_INPUT_MAX,
	       "signature input buffer");

/*
 * Public keys that stand in for an unknown user's (§3: same work, same
 * answer). The one used matches the shape of the signature presented, so
 * an unknown user costs what a known user with that key type costs. Only
 * public halves exist; nothing can ever verify under them.
 */
static const uint8_t dummy_ed25519[] = {
	0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
	0x2d, 0x03, 0x6e, 0xda, 0xb0, 0x37, 0x42, 0xae, 0xda, 0x18, 0xab, 0x12,
	0xee, 0x6d, 0x25, 0x81, 0x64, 0x79, 0x45, 0x8c, 0x5f, 0xe1, 0x0e, 0xb8,
	0x34, 0x6f, 0xb9, 0xc4, 0x3f, 0x43, 0x10, 0x17
};

static const uint8_t dummy_p256[] = {
	0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02,
	0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03,
	0x42, 0x00, 0x04, 0xca, 0xe4, 0xa8, 0x1f, 0xe8, 0x70, 0x6b, 0xc1, 0xac,
	0xb2, 0x4f, 0x9f, 0xce, 0x24, 0x33, 0x76, 0x36, 0xaa, 0xad, 0xba, 0x01,
	0x41, 0xbd, 0x51, 0xae, 0x9f, 0x11, 0xf3, 0x05, 0x5f, 0xeb, 0x2d, 0x66,
	0xcc, 0xc9, 0xbd, 0x5e, 0xc9, 0x8a, 0xbd, 0xfb, 0xcd, 0x0b, 0x80, 0x01,
	0xc3, 0x85, 0x62, 0x7d, 0x47, 0x4a, 0xd0, 0x22, 0x2b, 0x9d, 0x1e, 0x3e,
	0xbe, 0xc4, 0xf6, 0x52, 0xe7, 0xfa, 0x61
};

static const uint8_t dummy_rsa2048[] = {
	0x30, 0x82, 0x01, 0x22, 0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86,
	0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00, 0x03, 0x82, 0x01, 0x0f, 0x00,
	0x30, 0x82, 0x01, 0x0a, 0x02, 0x82, 0x01, 0x01, 0x00, 0x96, 0x01, 0x27,
	0x8b, 0x4c, 0xbf, 0x11, 0x75, 0x11, 0x5e, 0xd1, 0x28, 0x65, 0x87, 0x90,
	0x13, 0xef, 0x7d, 0x74, 0x29, 0xa4, 0x80, 0x71, 0xac, 0x22, 0x5a, 0x8c,
	0x11, 0xe1, 0x63, 0x55, 0x15, 0x1a, 0x43, 0xab, 0xaf, 0xde, 0x89, 0x81,
	0x52, 0xd4, 0xcb, 0xee, 0x93, 0x91, 0x59, 0x33, 0xac, 0x28, 0x80, 0x22,
	0x8c, 0xeb, 0x71, 0x74, 0xca, 0x02, 0x74, 0xd7, 0xb0, 0x07, 0x32, 0xe9,
	0x94, 0x42, 0x47, 0xbe, 0x50, 0xb0, 0x43, 0xa5, 0x53, 0x06, 0x69, 0xdc,
	0x53, 0x61, 0x4b, 0xb1, 0xde, 0x59, 0x65, 0x46, 0xe5, 0x26, 0x16, 0x63,
	0xa0, 0x6d, 0xf0, 0x70, 0xca, 0x7f, 0x04, 0x09, 0x8d, 0x69, 0xcc, 0xb0,
	0x6c, 0xdd, 0x39, 0x03, 0x26, 0xe3, 0x4d, 0xdb, 0x63, 0xf4, 0xa3, 0xee,
	0x59, 0xd6, 0x5a, 0xa1, 0xd8, 0x97, 0x51, 0x3a, 0x46, 0x82, 0xc3, 0x64,
	0xc4, 0x38, 0x67, 0xac, 0x90, 0x8b, 0x6c, 0x00, 0xb2, 0x66, 0x4e, 0xcf,
	0x48, 0xa8, 0xf2, 0x84, 0xd5, 0xf8, 0x62, 0x2f, 0xe2, 0x6f, 0x17, 0xf3,
	0x43, 0x88, 0xc2, 0xf8, 0xc4, 0x11, 0x17, 0xbd, 0xf7, 0xa1, 0x73, 0x0a,
	0x99, 0xd9, 0x2c, 0x27, 0x6d, 0xe2, 0x04, 0x84, 0x40, 0xa5, 0xd0, 0xeb,
	0x24, 0xfb, 0x0e, 0xba, 0xd7, 0x24, 0x34, 0x4a, 0xa5, 0x70, 0x94, 0x49,
	0x17, 0x3f, 0xd6, 0x49, 0x72, 0x6e, 0xb5, 0x53, 0x47, 0x6a, 0x2d, 0xc8,
	0x67, 0x1e, 0x28, 0xb3, 0xc0, 0x43, 0x8a, 0xf8, 0xf5, 0xa0, 0xe0, 0xd0,
	0x4a, 0xb9, 0x8e, 0x4d, 0x09, 0x0c, 0x40, 0x95, 0x64, 0xb6, 0xaa, 0xbc,
	0xe6, 0x9a, 0xdd, 0xe7, 0x84, 0x59, 0x83, 0xef, 0xf5, 0x43, 0xc1, 0x86,
	0x98, 0xcf, 0x63, 0xa3, 0x5f, 0x77, 0x49, 0x26, 0x94, 0xd5, 0x60, 0xbd,
	0x63, 0xae, 0x80, 0xdd, 0xa1, 0x57, 0x42, 0xc4, 0x23, 0xd8, 0x5c, 0xa6,
	0x3b, 0x02, 0x03, 0x01, 0x00, 0x01
};

static const struct {
	const uint8_t *spki;
	size_t len;
} dummy_spki[] = {
	{ dummy_ed25519, sizeof(dummy_ed25519) },
	{ dummy_p256, sizeof(dummy_p256) },
	{ dummy_rsa2048, sizeof(dummy_rsa2048) },
};
static sm_key *dummy_keys[3];
static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;

/* Parsed once and kept for the life of the process. */
static void dummy_load(void)
{
	for (int i = 0; i < 3; i++)
		(void)key_from_spki(dummy_spki[i].spki, dummy_spki[i].len,
				    &dummy_keys[i]);
}

static const sm_key *dummy_key(size_t siglen)
{
	pthread_once(&dummy_once, dummy_load);
	if (siglen == 64)
		return dummy_keys[0];
	if (siglen >= 256)
		return dummy_keys[2];
	return dummy_keys[1];
}

const char *hs_result_str(enum hs_result r)
{
	switch (r) {
	case HS_OK:
		return "handshake complete";
	case HS_ERR_MALFORMED:
		return "malformed handshake message";
	case HS_ERR_VERSION:
		return "unsupported protocol version";
	case HS_ERR_ZERO_SHARE:
		return "invalid key share (all-zero shared secret)";
	case HS_ERR_CLIENT_AUTH:
		return "client authentication failed (unknown user or bad signature)";
	case HS_ERR_CERT_MALFORMED:
		return "server certificate does not parse";
	case HS_ERR_CERT_UNTRUSTED:
		return "server certificate is not issued by a trusted CA";
	case HS_ERR_CERT_EXPIRED:
		return "server certificate has expired or is not yet valid";
	case HS_ERR_CERT_REVOKED:
		return "server certificate has been revoked";
	case HS_ERR_CERT_CRL:
		return "certificate revocation list is missing, expired or invalid";
	case HS_ERR_CERT_NAME:
		return "server name does not match the certificate";
	case HS_ERR_CERT_KEY:
		return "server certificate key type or size is not allowed";
	case HS_ERR_SERVER_SIG:
		return "server signature does not verify";
	case HS_ERR_PEER_ERROR:
		return "the peer reported a handshake error";
	case HS_ERR_STATE:
		return "handshake step called out of order";
	case HS_ERR_INTERNAL:
		return "internal error (out of memory or crypto failure)";
	}
	return "unknown handshake result";
}

void hs_write_error(struct writer *out, enum hs_error_code code)
{
	wr_u8(out, HS_ERROR);
	wr_u8(out, (uint8_t)code);
}

int hs_parse_error(const uint8_t *body, size_t len, uint8_t *code)
{
	if (len != 2 || body[0] != HS_ERROR)
		return -EBADMSG;
	*code = body[1];
	return 0;
}

/* Replace whatever a failed step wrote with the HandshakeError due. */
static enum hs_result hs_fail(struct writer *out, size_t start,
			      enum hs_error_code code, enum hs_result r)
{
	out->len = start;
	out->failed = false;
	hs_write_error(out, code);
	return r;
}

/* "label" || 0x00 || h: the bytes a transcript signature covers. */
static size_t sig_input(uint8_t out[SIG_INPUT_MAX], const char *label,
			size_t label_size, const uint8_t h[SHA256_LEN])
{
	memcpy(out, label, label_size);
	memcpy(out + label_size, h, SHA256_LEN);
	return label_size + SHA256_LEN;
}

/* PRK = Extract(salt, Z); c2s, s2c = Expand(PRK, ...). */
static int derive(const uint8_t salt[SHA256_LEN], const uint8_t z[X25519_LEN],
		  struct hs_secrets *sec)
{
	uint8_t prk[SHA256_LEN];
	int e;

	e = crypto_hkdf_extract(salt, SHA256_LEN, z, X25519_LEN, prk);
	if (e == 0)
		e = crypto_hkdf_expand(prk, "secmsg/1 c2s", sec->c2s,
				       HS_SECRET_LEN);
	if (e == 0)
		e = crypto_hkdf_expand(prk, "secmsg/1 s2c", sec->s2c,
				       HS_SECRET_LEN);
	crypto_cleanse(prk, sizeof(prk));
	if (e < 0)
		crypto_cleanse(sec, sizeof(*sec));
	return e;
}

/* Hash more of the transcript and read the digest so far. */
static int transcript_add(sm_hash *h, const void *p, size_t len,
			  uint8_t out[SHA256_LEN])
{
	if (!h || hash_update(h, p, len) < 0 || hash_peek(h, out) < 0)
		return -EIO;
	return 0;
}

static bool is_error_body(const uint8_t *b, size_t len)
{
	return len == 2 && b[0] == HS_ERROR;
}

/* ---- server ---- */

struct client_hello {
	uint8_t version;
	char username[NAME_MAX_LEN + 1];
	uint8_t share[X25519_LEN];
};

/*
 * The version chosen for a ClientHello offering up to `version`: a server
 * of version 1 only takes 1 (as version 1 says); a later server takes the
 * lower of the offer and its own highest, so that a client of a later
 * version still meets it (ClientHello's layout is the same in every
 * version). 0 gets HandshakeError 1, whatever follows.
 */
static enum hs_result parse_client_hello(const uint8_t *b, size_t len,
					 unsigned max, struct client_hello *m)
{
	struct reader r;
	const uint8_t *magic;
	uint8_t type, version;

	if (len > FRAME_HS_MAX)
		return HS_ERR_MALFORMED;
	rd_init(&r, b, len);
	type = rd_u8(&r);
	magic = rd_ptr(&r, sizeof(hs_magic));
	version = rd_u8(&r);
	if (rd_error(&r) || type != HS_CLIENT_HELLO ||
	    memcmp(magic, hs_magic, sizeof(hs_magic)) != 0)
		return HS_ERR_MALFORMED;
	if (version < 1 || (max == 1 && version != 1))
		return HS_ERR_VERSION;
	m->version = version < max ? version : (uint8_t)max;
	rd_name(&r, m->username);
	(void)rd_ptr(&r, HS_NONCE_LEN); /* client_nonce: only hashed */
	rd_opaque(&r, m->share, X25519_LEN);
	return rd_end(&r) == 0 ? HS_OK : HS_ERR_MALFORMED;
}

/* The HandshakeError code a server failure earns. */
static enum hs_error_code server_code(enum hs_result r)
{
	switch (r) {
	case HS_ERR_VERSION:
		return HSE_VERSION;
	case HS_ERR_MALFORMED:
	case HS_ERR_ZERO_SHARE:
		return HSE_MALFORMED;
	case HS_ERR_CLIENT_AUTH:
		return HSE_AUTH;
	default:
		return HSE_BUSY; /* our own failure: nothing the client did */
	}
}

/* Cleanse the secrets and drop the transcript; the username stays. */
static void server_wipe(struct hs_server *hs)
{
	crypto_cleanse(hs->eph_priv, sizeof(hs->eph_priv));
	crypto_cleanse(hs->z, sizeof(hs->z));
	crypto_cleanse(hs->h_ch_sh, sizeof(hs->h_ch_sh));
	hash_free(hs->transcript);
	hs->transcript = NULL;
}

void hs_server_init_version(struct hs_server *hs,
			    const struct hs_server_identity *id,
			    unsigned max_version)
{
	memset(hs, 0, sizeof(*hs));
	hs->id = id;
	hs->max_version = max_version <= HS_VERSION_MAX ? (uint8_t)max_version : 0;
	hs->state = ST_START;
}

void hs_server_init(struct hs_server *hs, const struct hs_server_identity *id)
{
	hs_server_init_version(hs, id, 1);
}

void hs_server_clear(struct hs_server *hs)
{
	server_wipe(hs);
	crypto_cleanse(hs, sizeof(*hs));
}

/* SH* : everything of ServerHello but the signature. */
static int write_sh_star(const struct cert_chain *c, uint8_t version,
			 const uint8_t *nonce, const uint8_t *share,
			 struct writer *out)
{
	if (c->count < 1 || c->count > CERT_CHAIN_MAX)
		return -EINVAL;
	wr_u8(out, HS_SERVER_HELLO);
	wr_u8(out, version);
	wr_bytes(out, nonce, HS_NONCE_LEN);
	wr_bytes(out, share, X25519_LEN);
	wr_u8(out, (uint8_t)c->count);
	for (int i = 0; i < c->count; i++)
		wr_bytes16(out, c->der[i], c->len[i]);
	return wr_error(out) ? -ENOBUFS : 0;
}

/* Append server_signature over SHA-256(CH || SH*), then hash it too. */
static int write_server_sig(struct hs_server *hs, const uint8_t h[SHA256_LEN],
			    struct writer *out)
{
	uint8_t in[SIG_INPUT_MAX], sig[SIG_MAX_LEN];
	size_t n = sig_input(in, server_label, sizeof(server_label), h);
	size_t siglen = sizeof(sig), start = out->len;

	if (key_sign(hs->id->key, in, n, sig, &siglen) < 0)
		return -EIO;
	wr_bytes16(out, sig, siglen);
	if (wr_error(out))
		return -ENOBUFS;
	return transcript_add(hs->transcript, out->p + start, out->len - start,
			      hs->h_ch_sh);
}

static enum hs_result server_reply(struct hs_server *hs, const uint8_t *ch,
				   size_t chlen, const uint8_t *share,
				   struct writer *out)
{
	uint8_t rnd[HS_NONCE_LEN + X25519_LEN], pub[X25519_LEN], h[SHA256_LEN];
	const uint8_t *nonce = rnd;
	size_t start = out->len;
	int e;

	/* One draw for the nonce and the ephemeral key, in that order: each
	 * RAND_bytes call costs OpenSSL a fork check (a getpid system call). */
	if (rand_bytes(rnd, sizeof(rnd)) < 0)
		return HS_ERR_INTERNAL;
	memcpy(hs->eph_priv, rnd + HS_NONCE_LEN, X25519_LEN);
	crypto_cleanse(rnd + HS_NONCE_LEN, X25519_LEN);
	if (crypto_x25519_public(hs->eph_priv, pub) < 0)
		return HS_ERR_INTERNAL;
	e = crypto_x25519_kp(hs->eph_priv, pub, share, hs->z);
	crypto_cleanse(hs->eph_priv, sizeof(hs->eph_priv));
	if (e == -EINVAL)
		return HS_ERR_ZERO_SHARE;
	if (e < 0)
		return HS_ERR_INTERNAL;
	hs->transcript = hash_new();
	if (!hs->transcript || hash_update(hs->transcript, ch, chlen) < 0 ||
	    write_sh_star(&hs->id->chain, hs->version, nonce, pub, out) < 0 ||
	    transcript_add(hs->transcript, out->p + start, out->len - start,
			   h) < 0 ||
	    write_server_sig(hs, h, out) < 0)
		return HS_ERR_INTERNAL;
	return HS_OK;
}

enum hs_result hs_server_hello(struct hs_server *hs, const uint8_t *ch,
			       size_t len, struct writer *out)
{
	struct client_hello m;
	size_t start = out->len;
	enum hs_result r;

	if (hs->state != ST_START || !hs->id || hs->max_version < 1)
		return HS_ERR_STATE;
	hs->state = ST_FAILED;
	if (is_error_body(ch, len))
		return HS_ERR_PEER_ERROR; /* closed without an answer (§5) */
	r = parse_client_hello(ch, len, hs->max_version, &m);
	if (r == HS_OK) {
		/* The lower of the client's and ours: the client's, here. */
		hs->version = m.version;
		memcpy(hs->username, m.username, sizeof(hs->username));
		r = server_reply(hs, ch, len, m.share, out);
	}
	if (r != HS_OK) {
		server_wipe(hs);
		return hs_fail(out, start, server_code(r), r);
	}
	hs->state = ST_WAIT;
	return HS_OK;
}

static enum hs_result parse_client_auth(const uint8_t *b, size_t len,
					const uint8_t **sig, size_t *siglen)
{
	struct reader r;
	uint8_t type;

	if (len > FRAME_HS_MAX)
		return HS_ERR_MALFORMED;
	rd_init(&r, b, len);
	type = rd_u8(&r);
	if (type != HS_CLIENT_AUTH)
		rd_fail(&r);
	*sig = rd_bytes16(&r, siglen);
	if (*siglen > SIG_MAX_LEN)
		rd_fail(&r);
	return rd_end(&r) == 0 ? HS_OK : HS_ERR_MALFORMED;
}

/*
 * Verify client_signature; an unknown user is verified against a stand-in
 * key, so both failures take the same path and give the same answer.
 */
static enum hs_result server_verify(struct hs_server *hs, const uint8_t *ca,
				    size_t len, const uint8_t *sig,
				    size_t siglen, const sm_key *user_key,
				    struct hs_secrets *sec)
{
	const sm_key *k = user_key ? user_key : dummy_key(siglen);
	uint8_t in[SIG_INPUT_MAX], salt[SHA256_LEN];
	size_t n;
	int e;

	n = sig_input(in, client_label, sizeof(client_label), hs->h_ch_sh);
	if (transcript_add(hs->transcript, ca, len, salt) < 0)
		return HS_ERR_INTERNAL;
	e = k ? key_verify(k, in, n, sig, siglen) : -EIO;
	if (e != 0 || !user_key)
		return HS_ERR_CLIENT_AUTH;
	return derive(salt, hs->z, sec) == 0 ? HS_OK : HS_ERR_INTERNAL;
}

enum hs_result hs_server_auth(struct hs_server *hs, const uint8_t *ca,
			      size_t len, const sm_key *user_key,
			      struct writer *out, struct hs_secrets *sec)
{
	const uint8_t *sig;
	size_t siglen, start = out->len;
	enum hs_result r;

	if (hs->state != ST_WAIT)
		return HS_ERR_STATE;
	hs->state = ST_FAILED;
	if (is_error_body(ca, len)) {
		server_wipe(hs);
		return HS_ERR_PEER_ERROR; /* closed without an answer (§5) */
	}
	r = parse_client_auth(ca, len, &sig, &siglen);
	if (r == HS_OK)
		r = server_verify(hs, ca, len, sig, siglen, user_key, sec);
	server_wipe(hs);
	if (r != HS_OK)
		return hs_fail(out, start, server_code(r), r);
	hs->state = ST_DONE;
	return HS_OK;
}

/* ---- client ---- */

struct server_hello {
	uint8_t version;
	const uint8_t *share;
	int count;
	const uint8_t *der[CERT_CHAIN_MAX];
	size_t len[CERT_CHAIN_MAX];
	size_t star_len; /* bytes of SH* */
	const uint8_t *sig;
	size_t siglen;
};

/* A version outside 1..offered gets HandshakeError 1. */
static enum hs_result parse_server_hello(const uint8_t *b, size_t len,
					 unsigned offered,
					 struct server_hello *m)
{
	struct reader r;
	uint8_t type, version;

	if (len > FRAME_HS_MAX)
		return HS_ERR_MALFORMED;
	rd_init(&r, b, len);
	type = rd_u8(&r);
	version = rd_u8(&r);
	if (rd_error(&r) || type != HS_SERVER_HELLO)
		return HS_ERR_MALFORMED;
	if (version < 1 || version > offered)
		return HS_ERR_VERSION;
	m->version = version;
	(void)rd_ptr(&r, HS_NONCE_LEN); /* server_nonce: only hashed */
	m->share = rd_ptr(&r, X25519_LEN);
	m->count = rd_u8(&r);
	if (m->count < 1 || m->count > CERT_CHAIN_MAX)
		rd_fail(&r);
	for (int i = 0; i < m->count && !rd_error(&r); i++)
		m->der[i] = rd_bytes16(&r, &m->len[i]);
	m->star_len = len - rd_left(&r);
	m->sig = rd_bytes16(&r, &m->siglen);
	if (m->siglen > SIG_MAX_LEN)
		rd_fail(&r);
	return rd_end(&r) == 0 ? HS_OK : HS_ERR_MALFORMED;
}

static enum hs_result cert_map(enum cert_result c)
{
	switch (c) {
	case CERT_OK:
		return HS_OK;
	case CERT_MALFORMED:
		return HS_ERR_CERT_MALFORMED;
	case CERT_UNTRUSTED:
		return HS_ERR_CERT_UNTRUSTED;
	case CERT_EXPIRED:
		return HS_ERR_CERT_EXPIRED;
	case CERT_REVOKED:
		return HS_ERR_CERT_REVOKED;
	case CERT_CRL_INVALID:
		return HS_ERR_CERT_CRL;
	case CERT_NAME:
		return HS_ERR_CERT_NAME;
	case CERT_KEY:
		return HS_ERR_CERT_KEY;
	}
	return HS_ERR_CERT_MALFORMED;
}

/* The chain, then server_signature with the leaf's key; on HS_OK the
 * transcript holds CH || SH. */
static enum hs_result client_check_server(struct hs_client *hs,
					  const uint8_t *sh, size_t len,
					  const struct server_hello *m)
{
	const struct hs_client_config *cfg = hs->cfg;
	time_t now = cfg->now ? cfg->now : time(NULL);
	uint8_t h[SHA256_LEN], in[SIG_INPUT_MAX];
	sm_key *leaf = NULL;
	enum cert_result c;
	size_t n;
	int e;

	c = cert_verify(cfg->trust, m->der, m->len, m->count, cfg->server_name,
			now, &leaf);
	if (c != CERT_OK || !leaf) {
		key_unref(leaf);
		return c != CERT_OK ? cert_map(c) : HS_ERR_INTERNAL;
	}
	e = transcript_add(hs->transcript, sh, m->star_len, h);
	n = sig_input(in, server_label, sizeof(server_label), h);
	if (e == 0)
		e = key_verify(leaf, in, n, m->sig, m->siglen);
	key_unref(leaf);
	if (e == -EBADMSG)
		return HS_ERR_SERVER_SIG;
	if (e < 0 || hash_update(hs->transcript, sh + m->star_len,
				 len - m->star_len) < 0)
		return HS_ERR_INTERNAL;
	return HS_OK;
}

/* Z, then ClientAuth over SHA-256(CH || SH), then the secrets. */
static enum hs_result client_auth(struct hs_client *hs,
				  const struct server_hello *m,
				  struct writer *out, struct hs_secrets *sec)
{
	uint8_t z[X25519_LEN], h[SHA256_LEN], in[SIG_INPUT_MAX];
	uint8_t sig[SIG_MAX_LEN];
	size_t n, siglen = sizeof(sig), start = out->len;
	enum hs_result r = HS_ERR_INTERNAL;
	int e;

	e = crypto_x25519_kp(hs->eph_priv, hs->eph_pub, m->share, z);
	if (e < 0)
		return e == -EINVAL ? HS_ERR_ZERO_SHARE : HS_ERR_INTERNAL;
	if (hash_peek(hs->transcript, h) < 0)
		goto out;
	n = sig_input(in, client_label, sizeof(client_label), h);
	if (key_sign(hs->cfg->key, in, n, sig, &siglen) < 0)
		goto out;
	wr_u8(out, HS_CLIENT_AUTH);
	wr_bytes16(out, sig, siglen);
	if (wr_error(out) || transcript_add(hs->transcript, out->p + start,
					    out->len - start, h) < 0)
		goto out;
	if (derive(h, z, sec) == 0)
		r = HS_OK;
out:
	crypto_cleanse(z, sizeof(z));
	return r;
}

static void client_wipe(struct hs_client *hs)
{
	crypto_cleanse(hs->eph_priv, sizeof(hs->eph_priv));
	hash_free(hs->transcript);
	hs->transcript = NULL;
}

void hs_client_init(struct hs_client *hs, const struct hs_client_config *cfg)
{
	memset(hs, 0, sizeof(*hs));
	hs->cfg = cfg;
	hs->state = ST_START;
}

void hs_client_clear(struct hs_client *hs)
{
	client_wipe(hs);
	crypto_cleanse(hs, sizeof(*hs));
}

/* The version a client offers: 0 means 1 (callers of before version 2). */
static unsigned offered_version(const struct hs_client_config *cfg)
{
	return cfg->max_version ? cfg->max_version : 1;
}

static bool config_usable(const struct hs_client_config *cfg)
{
	return cfg && cfg->username && name_valid_str(cfg->username) &&
	       cfg->key && cfg->trust && cfg->server_name &&
	       offered_version(cfg) <= HS_VERSION_MAX;
}

enum hs_result hs_client_hello(struct hs_client *hs, struct writer *out)
{
	uint8_t nonce[HS_NONCE_LEN];
	size_t start = out->len;

	if (hs->state != ST_START || !hs->cfg)
		return HS_ERR_STATE;
	hs->state = ST_FAILED;
	if (!config_usable(hs->cfg) || rand_bytes(nonce, sizeof(nonce)) < 0 ||
	    crypto_x25519_keygen(hs->eph_priv, hs->eph_pub) < 0)
		goto fail;
	wr_u8(out, HS_CLIENT_HELLO);
	wr_bytes(out, hs_magic, sizeof(hs_magic));
	wr_u8(out, (uint8_t)offered_version(hs->cfg));
	wr_name(out, hs->cfg->username);
	wr_bytes(out, nonce, sizeof(nonce));
	wr_bytes(out, hs->eph_pub, sizeof(hs->eph_pub));
	hs->transcript = hash_new();
	if (wr_error(out) || !hs->transcript ||
	    hash_update(hs->transcript, out->p + start, out->len - start) < 0)
		goto fail;
	hs->state = ST_WAIT;
	return HS_OK;
fail:
	client_wipe(hs);
	out->len = start; /* nothing is due to the server yet */
	out->failed = false;
	return HS_ERR_INTERNAL;
}

/* §3: a client that fails any check after ServerHello sends HandshakeError
 * 3; a ServerHello that does not parse gets 2, another version 1. */
static enum hs_error_code client_code(enum hs_result r)
{
	if (r == HS_ERR_MALFORMED)
		return HSE_MALFORMED;
	if (r == HS_ERR_VERSION)
		return HSE_VERSION;
	return HSE_AUTH;
}

enum hs_result hs_client_finish(struct hs_client *hs, const uint8_t *sh,
				size_t len, struct writer *out,
				struct hs_secrets *sec)
{
	struct server_hello m;
	size_t start = out->len;
	enum hs_result r;

	if (hs->state != ST_WAIT)
		return HS_ERR_STATE;
	hs->state = ST_FAILED;
	if (is_error_body(sh, len)) {
		hs->peer_code = sh[1];
		client_wipe(hs);
		return HS_ERR_PEER_ERROR;
	}
	r = parse_server_hello(sh, len, offered_version(hs->cfg), &m);
	if (r == HS_OK)
		r = client_check_server(hs, sh, len, &m);
	if (r == HS_OK)
		r = client_auth(hs, &m, out, sec);
	client_wipe(hs);
	if (r != HS_OK)
		return hs_fail(out, start, client_code(r), r);
	hs->version = m.version;
	hs->state = ST_DONE;
	return HS_OK;
}
