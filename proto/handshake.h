/* handshake.h - the handshake of PROTOCOL.md §3 as two state machines.
 *
 * Pure: each step takes a message body and writes the next one into a
 * caller's struct writer; nothing here touches a socket. A step that fails
 * writes the HandshakeError body the peer must get (when one is due) and
 * returns a precise result, so the caller can log it or tell its user.
 */
#ifndef SECMSG_HANDSHAKE_H
#define SECMSG_HANDSHAKE_H

#include <stdint.h>
#include <time.h>

#include "buf.h"
#include "crypto.h"
#include "keys.h"

#define HS_CLIENT_HELLO 0x01
#define HS_SERVER_HELLO 0x02
#define HS_CLIENT_AUTH 0x03
#define HS_ERROR 0x0F

#define HS_NONCE_LEN 32
#define HS_SECRET_LEN 32
#define HS_VERSION_MAX 2 /* the highest protocol version proto speaks */

/* HandshakeError codes (§3). */
enum hs_error_code {
	HSE_VERSION = 1,
	HSE_MALFORMED = 2,
	HSE_AUTH = 3,
	HSE_BUSY = 4,
	HSE_TIMEOUT = 5,
};

/* Outcome of a handshake step. */
enum hs_result {
	HS_OK = 0,
	HS_ERR_MALFORMED,	/* the peer's message does not parse */
	HS_ERR_VERSION,		/* the peer speaks another version */
	HS_ERR_ZERO_SHARE,	/* X25519 gave an all-zero secret */
	HS_ERR_CLIENT_AUTH,	/* server: unknown user or bad client signature */
	HS_ERR_CERT_MALFORMED,	/* client: a certificate does not parse */
	HS_ERR_CERT_UNTRUSTED,	/* client: chain does not verify to the CA */
	HS_ERR_CERT_EXPIRED,	/* client: a certificate is not valid now */
	HS_ERR_CERT_REVOKED,	/* client: the CRL lists the certificate */
	HS_ERR_CERT_CRL,	/* client: the CRL is missing, expired or bad */
	HS_ERR_CERT_NAME,	/* client: the leaf does not name the server */
	HS_ERR_CERT_KEY,	/* client: the leaf's key is not allowed */
	HS_ERR_SERVER_SIG,	/* client: server signature does not verify */
	HS_ERR_PEER_ERROR,	/* the peer sent HandshakeError (see peer_code) */
	HS_ERR_STATE,		/* a step called out of order */
	HS_ERR_INTERNAL,	/* out of memory, crypto library failure */
};

const char *hs_result_str(enum hs_result r);

/* The traffic secrets a finished handshake yields. */
struct hs_secrets {
	uint8_t c2s[HS_SECRET_LEN];
	uint8_t s2c[HS_SECRET_LEN];
};

/* What a server presents: its key and certificate chain (shared, read-only). */
struct hs_server_identity {
	sm_key *key;
	struct cert_chain chain;
};

struct hs_server {
	int state;
	const struct hs_server_identity *id;
	uint8_t max_version;	/* highest version this server speaks */
	uint8_t version;	/* the one chosen, once ServerHello is written */
	char username[NAME_MAX_LEN + 1];
	uint8_t eph_priv[X25519_LEN];
	uint8_t z[X25519_LEN];
	uint8_t h_ch_sh[SHA256_LEN]; /* SHA-256(CH || SH) */
	sm_hash *transcript;	     /* CH || SH, then || CA */
};

/* Begin a server handshake with identity id (which must outlive hs),
 * speaking version 1 only. */
void hs_server_init(struct hs_server *hs, const struct hs_server_identity *id);
/*
 * The same for a server that speaks versions 1 to max_version (1 or 2;
 * anything else makes hs_server_hello fail with HS_ERR_STATE). A
 * ClientHello of a version in that range is answered at that version (the
 * lower of the client's and ours, VERSION 2 of the page); any other gets
 * HandshakeError 1. hs->version holds the choice after hs_server_hello.
 */
void hs_server_init_version(struct hs_server *hs,
			    const struct hs_server_identity *id,
			    unsigned max_version);
/* Free and cleanse. */
void hs_server_clear(struct hs_server *hs);
/*
 * Take a ClientHello body; on HS_OK write the ServerHello body to out and
 * hs->username names the user. On failure out holds a HandshakeError body
 * (code 1 or 2).
 */
enum hs_result hs_server_hello(struct hs_server *hs, const uint8_t *ch,
			       size_t len, struct writer *out);
/*
 * Take a ClientAuth body and the user's enrolled key (NULL for an unknown
 * user: the same work is done and the same answer given). On HS_OK the
 * traffic secrets are in *sec. On failure out holds a HandshakeError body.
 */
enum hs_result hs_server_auth(struct hs_server *hs, const uint8_t *ca,
			      size_t len, const sm_key *user_key,
			      struct writer *out, struct hs_secrets *sec);

/* What a client needs. */
struct hs_client_config {
	const char *username;
	const sm_key *key;	  /* the user's private key */
	const trust *trust;	  /* CA and CRL */
	const char *server_name;  /* the name the leaf must carry */
	time_t now;		  /* 0: the current time */
	uint8_t max_version;	  /* the version offered (0: 1; at most
				   * HS_VERSION_MAX) */
};

struct hs_client {
	int state;
	const struct hs_client_config *cfg;
	uint8_t version;	/* the server's choice, once finished */
	uint8_t eph_priv[X25519_LEN];
	uint8_t eph_pub[X25519_LEN];
	sm_hash *transcript;
	uint8_t peer_code; /* HandshakeError code the server sent */
};

void hs_client_init(struct hs_client *hs, const struct hs_client_config *cfg);
void hs_client_clear(struct hs_client *hs);
/* Write the ClientHello body (draws the nonce, then the ephemeral key). */
enum hs_result hs_client_hello(struct hs_client *hs, struct writer *out);
/*
 * Take the server's reply (a ServerHello or a HandshakeError body). A
 * ServerHello of a version from 1 to the one offered is taken (its version
 * in hs->version); any other gets HandshakeError 1. On
 * HS_OK write ClientAuth to out and the traffic secrets to *sec; on a
 * failed check write HandshakeError 3 (§3) and return which check failed;
 * on a HandshakeError from the server, return HS_ERR_PEER_ERROR with
 * hs->peer_code set and write nothing.
 */
enum hs_result hs_client_finish(struct hs_client *hs, const uint8_t *sh,
				size_t len, struct writer *out,
				struct hs_secrets *sec);

/* Write a HandshakeError body. */
void hs_write_error(struct writer *out, enum hs_error_code code);
/* Parse a HandshakeError body: 0 and *code, or -EBADMSG. */
int hs_parse_error(const uint8_t *body, size_t len, uint8_t *code);

#endif
