/* keys.c - key files, certificate chains, CRLs and fingerprints (OpenSSL 3).
 *
 * Files are read whole into memory (bounded) and parsed from there, so file
 * errors come back as -errno and nothing ever prompts on a terminal. Files
 * are written to a temporary name in the same directory and renamed, so a
 * failure never leaves a partial key behind.
 */
#include "keys.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "crypto_int.h"
#include "fileio.h"

#define FILE_MAX (1024 * 1024) /* no key, chain, CA or CRL file is larger */
#define SCRYPT_N 16384	       /* the `openssl pkcs8 -scrypt` defaults */
#define SCRYPT_R 8
#define SCRYPT_P 1
#define PBE_SALT_LEN 16

struct trust {
	X509_STORE *store;
	bool crl;
};

/* ---- files ---- */

/* Read all of the regular file path into a malloc'd, NUL-terminated buffer. */
static int read_file(const char *path, uint8_t **out, size_t *outlen)
{
	return fio_read_file(path, FILE_MAX, (char **)out, outlen);
}

static void free_file(uint8_t *buf, size_t len)
{
	fio_free((char *)buf, len);
}

/* ---- PEM ---- */

/*
 * The next PEM block named want (blocks with other names are skipped) as
 * DER: 1 found, 0 end of input, -EBADMSG for a damaged or encrypted block.
 */
static int pem_next(BIO *b, const char *want, uint8_t **der, size_t *len)
{
	char *name = NULL, *header = NULL;
	unsigned char *data = NULL;
	unsigned long e;
	long n;
	bool match, plain;

	for (;;) {
		if (!PEM_read_bio(b, &name, &header, &data, &n)) {
			e = ERR_peek_last_error();
			ERR_clear_error();
			return ERR_GET_LIB(e) == ERR_LIB_PEM &&
			       ERR_GET_REASON(e) == PEM_R_NO_START_LINE ? 0 : -EBADMSG;
		}
		match = strcmp(name, want) == 0;
		plain = header[0] == '\0';
		OPENSSL_free(name);
		OPENSSL_free(header);
		if (match && plain && n > 0) {
			*der = data;
			*len = (size_t)n;
			return 1;
		}
		OPENSSL_clear_free(data, n > 0 ? (size_t)n : 0);
		if (match)
			return -EBADMSG;
	}
}

static X509 *x509_parse(const uint8_t *der, size_t len)
{
	const unsigned char *p = der;
	X509 *x;

	if (!der || len == 0 || len > LONG_MAX)
		return NULL;
	x = d2i_X509(NULL, &p, (long)len);
	if (x && p != der + len) {
		X509_free(x);
		x = NULL;
	}
	return x;
}

static X509_CRL *crl_parse(const uint8_t *der, size_t len)
{
	const unsigned char *p = der;
	X509_CRL *c;

	if (len > LONG_MAX)
		return NULL;
	c = d2i_X509_CRL(NULL, &p, (long)len);
	if (c && p != der + len) {
		X509_CRL_free(c);
		c = NULL;
	}
	return c;
}

/* ---- key files ---- */

struct pass {
	const char *pass;
	bool asked;
};

/* Never prompts: no passphrase given means the key cannot be decrypted. */
static int pass_cb(char *buf, int size, int rwflag, void *u)
{
	struct pass *p = u;
	size_t n;

	(void)rwflag;
	p->asked = true;
	if (!p->pass || size < 0)
		return -1;
	n = strlen(p->pass);
	if (n > (size_t)size)
		return -1;
	memcpy(buf, p->pass, n);
	return (int)n;
}

int key_load_private(const char *path, const char *passphrase, sm_key **out)
{
	struct pass pw = { passphrase, false };
	EVP_PKEY *pk = NULL;
	uint8_t *buf;
	size_t len;
	BIO *b;
	int r;

	*out = NULL;
	if ((r = read_file(path, &buf, &len)) < 0)
		return r;
	b = BIO_new_mem_buf(buf, (int)len);
	if (b)
		pk = PEM_read_bio_PrivateKey(b, NULL, pass_cb, &pw);
	BIO_free(b);
	free_file(buf, len);
	ERR_clear_error();
	if (!b)
		return -ENOMEM;
	if (!pk)
		return pw.asked ? -EACCES : -EBADMSG;
	return key_wrap(pk, out);
}

/* The first PEM "PUBLIC KEY" block of b. */
static int parse_public_bio(BIO *b, sm_key **out)
{
	uint8_t *der;
	size_t len;
	int r = pem_next(b, "PUBLIC KEY", &der, &len);

	if (r == 0)
		return -EBADMSG;
	if (r < 0)
		return r;
	r = key_from_spki(der, len, out);
	OPENSSL_free(der);
	return r;
}

int key_parse_public_pem(const void *pem, size_t len, sm_key **out)
{
	BIO *b;
	int r;

	*out = NULL;
	if (len > INT_MAX)
		return -EBADMSG;
	if (!(b = BIO_new_mem_buf(pem, (int)len)))
		return -ENOMEM;
	r = parse_public_bio(b, out);
	BIO_free(b);
	return r;
}

int key_load_public(const char *path, sm_key **out)
{
	uint8_t *buf;
	size_t len;
	int r;

	*out = NULL;
	if ((r = read_file(path, &buf, &len)) < 0)
		return r;
	r = key_parse_public_pem(buf, len, out);
	free_file(buf, len);
	return r;
}

/* Encrypted PKCS#8 (PBES2: scrypt, AES-256-CBC) of p8 into b. */
static int write_p8_encrypted(BIO *b, PKCS8_PRIV_KEY_INFO *p8,
			      const char *passphrase)
{
	size_t plen = strlen(passphrase);
	X509_ALGOR *alg;
	X509_SIG *enc;
	int r = -EIO;

	if (plen > INT_MAX)
		return -EINVAL;
	alg = PKCS5_pbe2_set_scrypt(EVP_aes_256_cbc(), NULL, PBE_SALT_LEN, NULL,
				    SCRYPT_N, SCRYPT_R, SCRYPT_P);
	if (!alg)
		return -EIO;
	enc = PKCS8_set0_pbe(passphrase, (int)plen, p8, alg);
	if (!enc) {
		X509_ALGOR_free(alg);
		return -EIO;
	}
	if (PEM_write_bio_PKCS8(b, enc) == 1)
		r = 0;
	X509_SIG_free(enc);
	return r;
}

int key_write_private(const char *path, const sm_key *k, const char *passphrase)
{
	PKCS8_PRIV_KEY_INFO *p8 = NULL;
	BIO *b = NULL;
	char *data;
	long n;
	int r = -EIO;

	if (!key_has_private(k))
		return -EINVAL;
	/* A secure-memory BIO cleanses its buffer when it grows or is freed. */
	if (!(b = BIO_new(BIO_s_secmem())) || !(p8 = EVP_PKEY2PKCS8(key_pkey(k))))
		goto out;
	if (passphrase && passphrase[0])
		r = write_p8_encrypted(b, p8, passphrase);
	else
		r = PEM_write_bio_PKCS8_PRIV_KEY_INFO(b, p8) == 1 ? 0 : -EIO;
	if (r == 0)
		r = (n = BIO_get_mem_data(b, &data)) > 0 ?
			fio_write_atomic(path, data, (size_t)n, 0600, 0) : -EIO;
out:
	PKCS8_PRIV_KEY_INFO_free(p8); /* cleanses the key material */
	BIO_free(b);
	ERR_clear_error();
	return r;
}

int key_private_der(const sm_key *k, uint8_t **der, size_t *len)
{
	PKCS8_PRIV_KEY_INFO *p8;
	unsigned char *p = NULL;
	int n;

	*der = NULL;
	*len = 0;
	if (!k || !key_has_private(k))
		return -EINVAL;
	if (!(p8 = EVP_PKEY2PKCS8(key_pkey(k)))) {
		ERR_clear_error();
		return -EIO;
	}
	n = i2d_PKCS8_PRIV_KEY_INFO(p8, &p);
	PKCS8_PRIV_KEY_INFO_free(p8); /* cleanses the key material */
	ERR_clear_error();
	if (n <= 0)
		return -EIO;
	/* Into our own buffer, so that the caller frees it with free(). */
	*der = malloc((size_t)n);
	if (*der) {
		memcpy(*der, p, (size_t)n);
		*len = (size_t)n;
	}
	OPENSSL_clear_free(p, (size_t)n);
	return *der ? 0 : -ENOMEM;
}

void key_der_free(uint8_t *der, size_t len)
{
	if (der) {
		crypto_cleanse(der, len);
		free(der);
	}
}

/* The public key as PEM SPKI, written by fio_write_atomic with flags. */
static int write_public(const char *path, const sm_key *k, unsigned flags)
{
	size_t len;
	const uint8_t *spki = key_spki(k, &len);
	BIO *b = BIO_new(BIO_s_mem());
	char *data;
	long n;
	int r = -EIO;

	if (!b)
		return -ENOMEM;
	if (len <= LONG_MAX &&
	    PEM_write_bio(b, "PUBLIC KEY", "", spki, (long)len) > 0 &&
	    (n = BIO_get_mem_data(b, &data)) > 0)
		r = fio_write_atomic(path, data, (size_t)n, 0644, flags);
	BIO_free(b);
	ERR_clear_error();
	return r;
}

int key_write_public(const char *path, const sm_key *k)
{
	return write_public(path, k, 0);
}

int key_write_public_new(const char *path, const sm_key *k)
{
	return write_public(path, k, FIO_NOREPLACE);
}

/* ---- fingerprints ---- */

static void hex_encode(const uint8_t *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		*out++ = digits[p[i] >> 4];
		*out++ = digits[p[i] & 15];
	}
	*out = '\0';
}

void fingerprint_hex(const uint8_t *spki, size_t len, char *out)
{
	struct iov_c v = { spki, len };
	uint8_t md[SHA256_LEN];

	if (crypto_sha256(&v, 1, md) < 0) {
		out[0] = '\0'; /* only on allocation failure */
		return;
	}
	hex_encode(md, sizeof(md), out);
}

void fingerprint_group(const char *hex, char *out)
{
	size_t i, o = 0;

	for (i = 0; i < FPR_HEX_LEN && hex[i]; i++) {
		if (i > 0 && i % 4 == 0)
			out[o++] = ' ';
		out[o++] = hex[i];
	}
	out[o] = '\0';
}

void fingerprint_text(const uint8_t *spki, size_t len, char *out)
{
	char hex[FPR_HEX_LEN + 1];

	fingerprint_hex(spki, len, hex);
	fingerprint_group(hex, out);
}

static bool fpr_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int fingerprint_parse(const char *s, size_t len, char out[FPR_HEX_LEN + 1])
{
	static const char digits[] = "0123456789abcdef";
	size_t i = 0, n = 0, group = 0;
	bool grouped = false;

	while (len > 0 && fpr_blank(s[len - 1]))
		len--;
	while (i < len && fpr_blank(s[i]))
		i++;
	for (; i < len; i++) {
		if (fpr_blank(s[i])) {
			if (group != 4)
				return -EINVAL;
			grouped = true;
			group = 0;
			while (i + 1 < len && fpr_blank(s[i + 1]))
				i++;
			continue;
		}
		if (hex_digit(s[i]) < 0 || n == FPR_HEX_LEN ||
		    (grouped && group == 4))
			return -EINVAL;
		out[n++] = digits[hex_digit(s[i])];
		group++;
	}
	if (n != FPR_HEX_LEN || (grouped && group != 4))
		return -EINVAL;
	out[n] = '\0';
	return 0;
}

int key_fingerprint_hex(const sm_key *k, char out[FPR_HEX_LEN + 1])
{
	struct iov_c v;
	uint8_t md[SHA256_LEN];
	int r;

	v.p = key_spki(k, &v.len);
	if ((r = crypto_sha256(&v, 1, md)) < 0) {
		out[0] = '\0';
		return r;
	}
	hex_encode(md, sizeof(md), out);
	return 0;
}

/* ---- certificate chains ---- */

void cert_chain_free(struct cert_chain *c)
{
	if (!c)
		return;
	for (int i = 0; i < CERT_CHAIN_MAX; i++)
		OPENSSL_free(c->der[i]);
	memset(c, 0, sizeof(*c));
}

static int chain_read(BIO *b, struct cert_chain *out)
{
	uint8_t *der;
	size_t len;
	X509 *x;
	int r;

	while ((r = pem_next(b, "CERTIFICATE", &der, &len)) > 0) {
		if (out->count == CERT_CHAIN_MAX || len > UINT16_MAX) {
			OPENSSL_free(der);
			return -E2BIG;
		}
		if (!(x = x509_parse(der, len))) {
			OPENSSL_free(der);
			ERR_clear_error();
			return -EBADMSG;
		}
		X509_free(x);
		out->der[out->count] = der;
		out->len[out->count] = len;
		out->count++;
	}
	if (r == 0 && out->count == 0)
		r = -EBADMSG;
	return r;
}

int cert_chain_load(const char *path, struct cert_chain *out)
{
	uint8_t *buf;
	size_t len;
	BIO *b;
	int r;

	memset(out, 0, sizeof(*out));
	if ((r = read_file(path, &buf, &len)) < 0)
		return r;
	if ((b = BIO_new_mem_buf(buf, (int)len)))
		r = chain_read(b, out);
	else
		r = -ENOMEM;
	BIO_free(b);
	free_file(buf, len);
	if (r < 0)
		cert_chain_free(out);
	return r;
}

static int x509_key(X509 *x, sm_key **out)
{
	unsigned char *spki = NULL;
	int n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &spki);
	int r;

	if (n <= 0) {
		ERR_clear_error();
		return -EBADMSG;
	}
	r = key_from_spki(spki, (size_t)n, out);
	OPENSSL_free(spki);
	ERR_clear_error();
	return r;
}

int cert_public_key(const uint8_t *der, size_t len, sm_key **out)
{
	X509 *x = x509_parse(der, len);
	int r;

	*out = NULL;
	if (!x) {
		ERR_clear_error();
		return -EBADMSG;
	}
	r = x509_key(x, out);
	X509_free(x);
	return r;
}

/* ---- trust: CA certificates and CRLs ---- */

void trust_free(trust *t)
{
	if (!t)
		return;
	X509_STORE_free(t->store);
	free(t);
}

/* Add every certificate (CRL) of the PEM text buf to the store. */
static int store_add_pem(X509_STORE *st, uint8_t *buf, size_t len, bool crl)
{
	BIO *b = BIO_new_mem_buf(buf, (int)len);
	uint8_t *der;
	size_t dlen;
	int r, n = 0, ok = 0;

	if (!b)
		return -ENOMEM;
	while ((r = pem_next(b, crl ? "X509 CRL" : "CERTIFICATE", &der, &dlen)) > 0) {
		if (crl) {
			X509_CRL *c = crl_parse(der, dlen);

			ok = c && X509_STORE_add_crl(st, c) == 1;
			X509_CRL_free(c);
		} else {
			X509 *x = x509_parse(der, dlen);

			/* Cache the extensions now, before threads share x. */
			ok = x && X509_check_purpose(x, -1, 0) == 1 &&
			     X509_STORE_add_cert(st, x) == 1;
			X509_free(x);
		}
		OPENSSL_free(der);
		if (!ok) {
			r = -EBADMSG;
			break;
		}
		n++;
	}
	BIO_free(b);
	ERR_clear_error();
	if (r == 0 && n == 0)
		r = -EBADMSG;
	return r;
}

static int store_add_file(X509_STORE *st, const char *path, bool crl)
{
	uint8_t *buf;
	size_t len;
	int r;

	if ((r = read_file(path, &buf, &len)) < 0)
		return r;
	r = len > INT_MAX ? -EFBIG : store_add_pem(st, buf, len, crl);
	free_file(buf, len);
	return r;
}

int trust_load(const char *ca_path, const char *crl_path, trust **out)
{
	trust *t = calloc(1, sizeof(*t));
	int r;

	*out = NULL;
	if (!t || !(t->store = X509_STORE_new())) {
		free(t);
		return -ENOMEM;
	}
	r = store_add_file(t->store, ca_path, false);
	if (r == 0 && crl_path) {
		r = store_add_file(t->store, crl_path, true);
		t->crl = true;
	}
	if (r < 0) {
		trust_free(t);
		return r;
	}
	*out = t;
	return 0;
}

/* ---- certificate verification (§3) ---- */

/*
 * §3: the CRLs apply to every certificate of the chain whose issuer they
 * belong to, but only the leaf's issuer must have one. So a missing CRL is
 * forgiven above the leaf; an expired or bad one never is.
 */
static int verify_cb(int ok, X509_STORE_CTX *ctx)
{
	if (!ok && X509_STORE_CTX_get_error(ctx) == X509_V_ERR_UNABLE_TO_GET_CRL &&
	    X509_STORE_CTX_get_error_depth(ctx) > 0)
		return 1;
	return ok;
}

static enum cert_result map_verify_error(int err)
{
	switch (err) {
	case X509_V_ERR_CERT_HAS_EXPIRED:
	case X509_V_ERR_CERT_NOT_YET_VALID:
		return CERT_EXPIRED;
	case X509_V_ERR_CERT_REVOKED:
		return CERT_REVOKED;
	case X509_V_ERR_UNABLE_TO_GET_CRL:
	case X509_V_ERR_CRL_HAS_EXPIRED:
	case X509_V_ERR_CRL_NOT_YET_VALID:
	case X509_V_ERR_CRL_SIGNATURE_FAILURE:
	case X509_V_ERR_UNABLE_TO_DECRYPT_CRL_SIGNATURE:
	case X509_V_ERR_ERROR_IN_CRL_LAST_UPDATE_FIELD:
	case X509_V_ERR_ERROR_IN_CRL_NEXT_UPDATE_FIELD:
	case X509_V_ERR_UNABLE_TO_GET_CRL_ISSUER:
	case X509_V_ERR_KEYUSAGE_NO_CRL_SIGN:
	case X509_V_ERR_DIFFERENT_CRL_SCOPE:
	case X509_V_ERR_CRL_PATH_VALIDATION_ERROR:
	case X509_V_ERR_UNHANDLED_CRITICAL_CRL_EXTENSION:
		return CERT_CRL_INVALID;
	case X509_V_ERR_ERROR_IN_CERT_NOT_BEFORE_FIELD:
	case X509_V_ERR_ERROR_IN_CERT_NOT_AFTER_FIELD:
		return CERT_MALFORMED;
	default:
		/* UNABLE_TO_GET_ISSUER_CERT(_LOCALLY), SELF_SIGNED_CERT_IN_CHAIN,
		 * DEPTH_ZERO_SELF_SIGNED_CERT, CERT_SIGNATURE_FAILURE, INVALID_CA,
		 * PATH_LENGTH_EXCEEDED, ... and anything unforeseen: fail closed. */
		return CERT_UNTRUSTED;
	}
}

static enum cert_result chain_verify(const trust *t, X509 *leaf,
				     STACK_OF(X509) *rest, time_t now)
{
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	unsigned long flags = X509_V_FLAG_PARTIAL_CHAIN;
	enum cert_result res = CERT_UNTRUSTED;
	int ok;

	if (!ctx || X509_STORE_CTX_init(ctx, t->store, leaf, rest) != 1)
		goto out;
	if (t->crl)
		flags |= X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL;
	X509_STORE_CTX_set_flags(ctx, flags);
	/* A leaf whose extendedKeyUsage excludes serverAuth was not issued
	 * for a server (certificates without the extension still pass). */
	X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER);
	X509_STORE_CTX_set_time(ctx, 0, now);
	X509_STORE_CTX_set_verify_cb(ctx, verify_cb);
	ok = X509_verify_cert(ctx);
	res = ok == 1 ? CERT_OK : map_verify_error(X509_STORE_CTX_get_error(ctx));
out:
	X509_STORE_CTX_free(ctx);
	return res;
}

static char ascii_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* name (a DNS name) equals the n bytes p, ASCII case-insensitively. */
static bool dns_equal(const char *name, const unsigned char *p, size_t n)
{
	if (n == 0 || strlen(name) != n || memchr(p, '*', n))
		return false;
	for (size_t i = 0; i < n; i++)
		if (ascii_lower(name[i]) != ascii_lower((char)p[i]))
			return false;
	return true;
}

/* The CN is used only when there is no subjectAltName (and never for IPs). */
static bool cn_matches(X509 *x, const char *name)
{
	const X509_NAME *subj = X509_get_subject_name(x);
	unsigned char *utf8;
	int i = -1, n;
	bool match = false;

	while (!match &&
	       (i = X509_NAME_get_index_by_NID(subj, NID_commonName, i)) >= 0) {
		X509_NAME_ENTRY *e = X509_NAME_get_entry(subj, i);

		n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(e));
		if (n < 0)
			continue;
		match = dns_equal(name, utf8, (size_t)n);
		OPENSSL_free(utf8);
	}
	return match;
}

static enum cert_result name_check(X509 *x, const char *name)
{
	unsigned char ip[16];
	int iplen = 0, crit = -1;
	GENERAL_NAMES *sans;
	bool match = false;

	if (!name[0])
		return CERT_NAME;
	if (inet_pton(AF_INET, name, ip) == 1)
		iplen = 4;
	else if (inet_pton(AF_INET6, name, ip) == 1)
		iplen = 16;
	sans = X509_get_ext_d2i(x, NID_subject_alt_name, &crit, NULL);
	if (!sans) {
		ERR_clear_error();
		if (crit != -1)
			return CERT_MALFORMED; /* duplicated or undecodable SAN */
		return iplen == 0 && cn_matches(x, name) ? CERT_OK : CERT_NAME;
	}
	for (int i = 0; !match && i < sk_GENERAL_NAME_num(sans); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);

		if (iplen == 0 && g->type == GEN_DNS)
			match = dns_equal(name, ASN1_STRING_get0_data(g->d.dNSName),
					  (size_t)ASN1_STRING_length(g->d.dNSName));
		else if (iplen > 0 && g->type == GEN_IPADD)
			match = ASN1_STRING_length(g->d.iPAddress) == iplen &&
				memcmp(ASN1_STRING_get0_data(g->d.iPAddress), ip,
				       (size_t)iplen) == 0;
	}
	GENERAL_NAMES_free(sans);
	return match ? CERT_OK : CERT_NAME;
}

/* Parse the chain: leaf into *leaf, the rest into *rest. */
static bool chain_parse(const uint8_t *const *der, const size_t *len, int count,
			X509 **leaf, STACK_OF(X509) **rest)
{
	X509 *x;

	*leaf = NULL;
	if (!(*rest = sk_X509_new_null()))
		return false;
	for (int i = 0; i < count; i++) {
		if (!(x = x509_parse(der[i], len[i])))
			return false;
		if (i == 0)
			*leaf = x;
		else if (!sk_X509_push(*rest, x)) {
			X509_free(x);
			return false;
		}
	}
	return true;
}

static enum cert_result verify_parsed(const trust *t, X509 *leaf,
				      STACK_OF(X509) *rest,
				      const char *server_name, time_t now,
				      sm_key **leaf_key)
{
	enum cert_result res;
	sm_key *k = NULL;
	int r;

	if ((res = chain_verify(t, leaf, rest, now)) != CERT_OK)
		return res;
	r = x509_key(leaf, &k);
	if (r < 0)
		return r == -EINVAL ? CERT_KEY : CERT_MALFORMED;
	res = server_name ? name_check(leaf, server_name) : CERT_OK;
	if (res == CERT_OK && leaf_key)
		*leaf_key = k;
	else
		key_unref(k);
	return res;
}

enum cert_result cert_verify(const trust *t, const uint8_t *const *der,
			     const size_t *len, int count,
			     const char *server_name, time_t now,
			     sm_key **leaf_key)
{
	enum cert_result res = CERT_MALFORMED;
	STACK_OF(X509) *rest = NULL;
	X509 *leaf = NULL;

	if (leaf_key)
		*leaf_key = NULL;
	if (!t)
		return CERT_UNTRUSTED;
	if (count >= 1 && count <= CERT_CHAIN_MAX &&
	    chain_parse(der, len, count, &leaf, &rest))
		res = verify_parsed(t, leaf, rest, server_name, now, leaf_key);
	X509_free(leaf);
	sk_X509_pop_free(rest, X509_free);
	ERR_clear_error();
	return res;
}

const char *cert_result_str(enum cert_result r)
{
	switch (r) {
	case CERT_OK:
		return "server certificate is valid";
	case CERT_MALFORMED:
		return "server certificate is malformed";
	case CERT_UNTRUSTED:
		return "server certificate is not signed by a trusted CA";
	case CERT_EXPIRED:
		return "server certificate has expired or is not yet valid";
	case CERT_REVOKED:
		return "server certificate is revoked";
	case CERT_CRL_INVALID:
		return "certificate revocation list is missing, expired or invalid";
	case CERT_NAME:
		return "server name does not match the certificate";
	case CERT_KEY:
		return "server certificate key type or size is not allowed";
	}
	return "unknown certificate verification result";
}
