/* keys.h - key files, certificates, CRLs and fingerprints.
 *
 * Loading and writing PEM key files (private keys as PKCS#8, optionally
 * passphrase-protected), the server's certificate chain, and the client's
 * verification of that chain (§3). Like crypto.c, only keys.c includes
 * OpenSSL headers.
 */
#ifndef SECMSG_KEYS_H
#define SECMSG_KEYS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "crypto.h"

#define FPR_HEX_LEN 64 /* 64 hex digits */
#define FPR_TEXT_LEN 79 /* 16 groups of 4, 15 spaces */
#define CERT_CHAIN_MAX 4

/*
 * Read a private key (PEM, PKCS#8 or traditional; encrypted or not).
 * passphrase may be NULL for an unencrypted key. Returns -EACCES for a
 * wrong or missing passphrase, -ENOENT/-EPERM etc. for file errors,
 * -EINVAL for a key type or size §1 does not allow, -EBADMSG otherwise.
 */
int key_load_private(const char *path, const char *passphrase, sm_key **out);
/* Read a public key (PEM SubjectPublicKeyInfo); same errors. */
int key_load_public(const char *path, sm_key **out);
/* Parse a PEM public key from memory. */
int key_parse_public_pem(const void *pem, size_t len, sm_key **out);
/* Write the private key as PKCS#8 PEM (encrypted with AES-256-CBC under
 * scrypt when passphrase is non-empty) to path, created with mode 0600. */
int key_write_private(const char *path, const sm_key *k, const char *passphrase);
/*
 * The private key as unencrypted PKCS#8 PrivateKeyInfo DER, as OpenSSL
 * writes it (the IKM of the client state key, secmsg-protocol(7) CLIENT
 * STATE), in a malloc'd buffer; free it with key_der_free. -EINVAL for a
 * public key.
 */
int key_private_der(const sm_key *k, uint8_t **der, size_t *len);
/* Cleanse and free a buffer from key_private_der (NULL is fine). */
void key_der_free(uint8_t *der, size_t len);
/* Write the public key as PEM SPKI, mode 0644. */
int key_write_public(const char *path, const sm_key *k);
/* The same, but -EEXIST rather than replace a file at path. */
int key_write_public_new(const char *path, const sm_key *k);

/* SHA-256 of an SPKI, as 16 groups of 4 hex digits (out: FPR_TEXT_LEN+1). */
void fingerprint_text(const uint8_t *spki, size_t len, char *out);
/* The hex form in groups of 4 digits, as fingerprint_text prints it
 * (out: FPR_TEXT_LEN+1; a shorter hex gives fewer groups). */
void fingerprint_group(const char *hex, char *out);
/*
 * A fingerprint as a user may paste it: 64 hex digits, or 16 groups of 4
 * separated by blanks (what fingerprint_text prints), either case, blanks
 * around it ignored. out gets the lower-case hex form; 0 or -EINVAL.
 */
int fingerprint_parse(const char *s, size_t len, char out[FPR_HEX_LEN + 1]);
/* The same without spaces (out: FPR_HEX_LEN+1). */
void fingerprint_hex(const uint8_t *spki, size_t len, char *out);
/* Fingerprint of a key's SPKI, hex form; 0 or negative error. */
int key_fingerprint_hex(const sm_key *k, char out[FPR_HEX_LEN + 1]);

/* A certificate chain as DER, leaf first, as ServerHello carries it. */
struct cert_chain {
	int count;
	uint8_t *der[CERT_CHAIN_MAX];
	size_t len[CERT_CHAIN_MAX];
};

/* Read a PEM file of 1..4 certificates, leaf first (-E2BIG for more, or
 * for one over 65535 bytes; -EBADMSG for none or a damaged one). */
int cert_chain_load(const char *path, struct cert_chain *out);
void cert_chain_free(struct cert_chain *c);
/* The public key of a DER certificate. */
int cert_public_key(const uint8_t *der, size_t len, sm_key **out);

/* What a client trusts: CA certificates and optionally CRLs. */
typedef struct trust trust;

/* Load the CA file (PEM, one or more certificates) and the CRL file (PEM,
 * may be NULL). */
int trust_load(const char *ca_path, const char *crl_path, trust **out);
void trust_free(trust *t);

enum cert_result {
	CERT_OK = 0,
	CERT_MALFORMED,	  /* a certificate does not parse */
	CERT_UNTRUSTED,	  /* the chain does not verify to the CA */
	CERT_EXPIRED,	  /* a certificate is expired or not yet valid */
	CERT_REVOKED,	  /* the CRL lists the leaf (or a chain certificate) */
	CERT_CRL_INVALID, /* the CRL is missing, expired or bad */
	CERT_NAME,	  /* the leaf does not name the server */
	CERT_KEY,	  /* the leaf's key type or size is not allowed */
};

/*
 * Verify a chain (leaf first) against t at time now, and that the leaf
 * names server_name (§3: DNS subjectAltName exactly, case-insensitively,
 * or an IP address against iPAddress; the CN only when there is no SAN).
 * On CERT_OK, *leaf_key (if not NULL) receives the leaf's key. A NULL
 * server_name skips the name check (only for a server checking its own
 * chain; a client always passes its name); "" never matches. Thread-safe
 * on a shared t.
 */
enum cert_result cert_verify(const trust *t, const uint8_t *const *der,
			     const size_t *len, int count,
			     const char *server_name, time_t now,
			     sm_key **leaf_key);
const char *cert_result_str(enum cert_result r);

#endif
