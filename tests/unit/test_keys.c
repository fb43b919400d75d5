/* test_keys.c - proto/keys.c with the fixtures of tests/lib/mkpki.sh: key
 * files (PKCS#8, traditional, encrypted; refused types; file errors),
 * writing keys (encryption, modes, atomic replacement), fingerprints,
 * certificate chains, CA/CRL loading and every result of cert_verify
 * (PROTOCOL.md §3), also from several threads at once. */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "crypto.h"
#include "crypto_int.h"
#include "keys.h"
#include "tests/lib/testutil.h"

static char tmpdir[] = "/tmp/secmsg-test-keys.XXXXXX";

static const char *tmp_path(const char *name)
{
	static char path[2][512];
	static int which;

	which ^= 1;
	snprintf(path[which], sizeof(path[which]), "%s/%s", tmpdir, name);
	return path[which];
}

static char *pki(const char *file)
{
	char *p = strdup(tu_pki_path(file));

	assert_non_null(p);
	return p;
}

static uint8_t *read_all(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = malloc(1 << 20);
	size_t n;

	assert_non_null(f);
	assert_non_null(buf);
	n = fread(buf, 1, (1 << 20) - 1, f);
	fclose(f);
	buf[n] = 0;
	if (len)
		*len = n;
	return buf;
}

static void write_file(const char *path, const void *p, size_t len)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(p, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static void write_str(const char *path, const char *s)
{
	write_file(path, s, strlen(s));
}

/* Concatenate PKI fixtures into a temporary file. */
static const char *concat(const char *name, const char *const *files, int n)
{
	char *all = malloc(1 << 20);
	size_t len = 0, l;
	const char *out;

	assert_non_null(all);
	for (int i = 0; i < n; i++) {
		char *p = pki(files[i]);
		uint8_t *b = read_all(p, &l);

		memcpy(all + len, b, l);
		len += l;
		free(b);
		free(p);
	}
	out = tmp_path(name);
	write_file(out, all, len);
	free(all);
	return out;
}

static sm_key *load_priv(const char *file, const char *pass)
{
	char *p = pki(file);
	sm_key *k = NULL;

	assert_int_equal(key_load_private(p, pass, &k), 0);
	free(p);
	return k;
}

static sm_key *load_pub(const char *file)
{
	char *p = pki(file);
	sm_key *k = NULL;

	assert_int_equal(key_load_public(p, &k), 0);
	free(p);
	return k;
}

static int load_priv_err(const char *path, const char *pass)
{
	sm_key *k = (sm_key *)1;
	int r = key_load_private(path, pass, &k);

	if (r < 0)
		assert_null(k);
	else
		key_unref(k);
	return r;
}

static int load_pub_err(const char *path)
{
	sm_key *k = (sm_key *)1;
	int r = key_load_public(path, &k);

	if (r < 0)
		assert_null(k);
	else
		key_unref(k);
	return r;
}

static void check_pair_signs(sm_key *priv, sm_key *pub)
{
	uint8_t sig[SIG_MAX_LEN];
	size_t siglen = sizeof(sig);

	assert_true(key_has_private(priv));
	assert_false(key_has_private(pub));
	assert_true(key_equal(priv, pub));
	assert_int_equal(key_sign(priv, "m", 1, sig, &siglen), 0);
	assert_int_equal(key_verify(pub, "m", 1, sig, siglen), 0);
}

/* ---- loading key files ---- */

static void test_load_user_keys(void **state)
{
	static const struct {
		const char *name;
		enum key_type t;
		int bits;
	} users[] = {
		{ "alice", KEY_ED25519, 256 },	 { "bob", KEY_ECDSA_P256, 256 },
		{ "carol", KEY_RSA, 2048 },	 { "dave", KEY_ED25519, 256 },
		{ "erin", KEY_ED25519, 256 },	 { "server", KEY_ED25519, 256 },
		{ "server-ecdsa", KEY_ECDSA_P256, 256 },
		{ "server-rsa", KEY_RSA, 2048 },
	};
	char name[64];

	(void)state;
	for (size_t i = 0; i < sizeof(users) / sizeof(users[0]); i++) {
		sm_key *priv, *pub;

		snprintf(name, sizeof(name), "%s.key", users[i].name);
		priv = load_priv(name, NULL);
		assert_int_equal(key_type(priv), users[i].t);
		assert_int_equal(key_bits(priv), users[i].bits);
		if (strncmp(users[i].name, "server", 6) == 0) {
			key_unref(priv);
			continue;
		}
		snprintf(name, sizeof(name), "%s.pub", users[i].name);
		pub = load_pub(name);
		check_pair_signs(priv, pub);
		key_unref(priv);
		key_unref(pub);
	}
	/* Different users have different keys. */
	sm_key *a = load_pub("alice.pub"), *d = load_pub("dave.pub");

	assert_false(key_equal(a, d));
	key_unref(a);
	key_unref(d);
}

static void test_load_refused_types(void **state)
{
	static const char *const files[] = {
		"rsa1024.key", "rsa1024.pub", "p384.key", "p384.pub",
		"server-rsa1024.key",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		char *p = pki(files[i]);

		if (strstr(files[i], ".pub"))
			assert_int_equal(load_pub_err(p), -EINVAL);
		else
			assert_int_equal(load_priv_err(p, NULL), -EINVAL);
		free(p);
	}
}

static void test_passphrase(void **state)
{
	char *enc = pki("alice-enc.key"), *plain = pki("alice.key");
	sm_key *k, *pub;

	(void)state;
	assert_int_equal(load_priv_err(enc, NULL), -EACCES);
	assert_int_equal(load_priv_err(enc, ""), -EACCES);
	assert_int_equal(load_priv_err(enc, "wrong"), -EACCES);
	assert_int_equal(load_priv_err(enc, "correct horse "), -EACCES);
	assert_int_equal(load_priv_err(enc, "Correct horse"), -EACCES);
	assert_int_equal(key_load_private(enc, "correct horse", &k), 0);
	pub = load_pub("alice.pub");
	check_pair_signs(k, pub);
	key_unref(k);
	/* A passphrase for a key that has none is ignored. */
	assert_int_equal(key_load_private(plain, "correct horse", &k), 0);
	assert_true(key_equal(k, pub));
	key_unref(k);
	key_unref(pub);
	free(enc);
	free(plain);
}

static void test_load_errors(void **state)
{
	char *pubf = pki("alice.pub"), *keyf = pki("alice.key");
	char *cert = pki("server.pem"), *crl = pki("crl.pem");
	const char *p;

	(void)state;
	assert_int_equal(load_priv_err(tmp_path("missing"), NULL), -ENOENT);
	assert_int_equal(load_pub_err(tmp_path("missing")), -ENOENT);
	assert_int_equal(load_priv_err(tmpdir, NULL), -EISDIR);
	assert_int_equal(load_pub_err(tmpdir), -EISDIR);
	assert_int_equal(load_priv_err("/dev/null", NULL), -EINVAL);
	p = tmp_path("empty");
	write_file(p, "", 0);
	assert_int_equal(load_priv_err(p, NULL), -EBADMSG);
	assert_int_equal(load_pub_err(p), -EBADMSG);
	p = tmp_path("garbage");
	write_str(p, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
	assert_int_equal(load_priv_err(p, NULL), -EBADMSG);
	assert_int_equal(load_priv_err(p, "pass"), -EBADMSG);
	/* The wrong kind of file. */
	assert_int_equal(load_priv_err(pubf, NULL), -EBADMSG);
	assert_int_equal(load_priv_err(cert, NULL), -EBADMSG);
	assert_int_equal(load_pub_err(keyf), -EBADMSG);
	assert_int_equal(load_pub_err(cert), -EBADMSG);
	assert_int_equal(load_pub_err(crl), -EBADMSG);
	if (geteuid() != 0) {
		p = tmp_path("unreadable");
		write_file(p, "x", 1);
		assert_int_equal(chmod(p, 0), 0);
		assert_int_equal(load_priv_err(p, NULL), -EACCES);
		unlink(p);
	}
	free(pubf);
	free(keyf);
	free(cert);
	free(crl);
}

static void test_parse_public_pem(void **state)
{
	char *pubf = pki("bob.pub");
	size_t len, spkilen;
	uint8_t *pem = read_all(pubf, &len), extra[128];
	const uint8_t *spki;
	sm_key *k, *bad = (sm_key *)1;
	BIO *b;
	char *data;
	long n;

	(void)state;
	assert_int_equal(key_parse_public_pem(pem, len, &k), 0);
	assert_int_equal(key_type(k), KEY_ECDSA_P256);
	/* Text around the block is fine; a cut block is not. */
	assert_int_equal(key_parse_public_pem(pem, len - 30, &bad), -EBADMSG);
	assert_null(bad);
	assert_int_equal(key_parse_public_pem("junk", 4, &bad), -EBADMSG);
	assert_int_equal(key_parse_public_pem("", 0, &bad), -EBADMSG);

	/* An SPKI with a trailing byte inside the PEM block. */
	spki = key_spki(k, &spkilen);
	memcpy(extra, spki, spkilen);
	extra[spkilen] = 0;
	b = BIO_new(BIO_s_mem());
	assert_true(PEM_write_bio(b, "PUBLIC KEY", "", extra, (long)spkilen + 1) > 0);
	n = BIO_get_mem_data(b, &data);
	assert_int_equal(key_parse_public_pem(data, (size_t)n, &bad), -EBADMSG);
	BIO_free(b);
	/* Only SubjectPublicKeyInfo: not the same bytes under another name. */
	b = BIO_new(BIO_s_mem());
	assert_true(PEM_write_bio(b, "EC PUBLIC KEY", "", spki, (long)spkilen) > 0);
	n = BIO_get_mem_data(b, &data);
	assert_int_equal(key_parse_public_pem(data, (size_t)n, &bad), -EBADMSG);
	BIO_free(b);
	key_unref(k);
	free(pem);
	free(pubf);
}

/* Write pk in the traditional ("BEGIN EC/RSA PRIVATE KEY") format. */
static void write_traditional(const char *path, EVP_PKEY *pk, const char *pass)
{
	BIO *b = BIO_new_file(path, "w");

	assert_non_null(b);
	assert_int_equal(PEM_write_bio_PrivateKey_traditional(b, pk,
			 pass ? EVP_aes_256_cbc() : NULL, (unsigned char *)pass,
			 pass ? (int)strlen(pass) : 0, NULL, NULL), 1);
	BIO_free(b);
}

static void test_traditional_pem(void **state)
{
	static const char *const names[] = { "bob", "carol" };
	char file[32];

	(void)state;
	for (size_t i = 0; i < 2; i++) {
		const char *p = tmp_path("trad.key");
		sm_key *orig, *k;
		uint8_t *text;

		snprintf(file, sizeof(file), "%s.key", names[i]);
		orig = load_priv(file, NULL);
		write_traditional(p, key_pkey(orig), NULL);
		text = read_all(p, NULL);
		assert_non_null(strstr((char *)text, i ? "BEGIN RSA PRIVATE KEY" :
					"BEGIN EC PRIVATE KEY"));
		free(text);
		assert_int_equal(key_load_private(p, NULL, &k), 0);
		assert_true(key_equal(k, orig));
		assert_true(key_has_private(k));
		key_unref(k);

		write_traditional(p, key_pkey(orig), "tr4d");
		assert_int_equal(load_priv_err(p, NULL), -EACCES);
		assert_int_equal(load_priv_err(p, "trad"), -EACCES);
		assert_int_equal(key_load_private(p, "tr4d", &k), 0);
		assert_true(key_equal(k, orig));
		key_unref(k);
		key_unref(orig);
	}
}

/* ---- writing key files ---- */

static mode_t file_mode(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return st.st_mode & 07777;
}

static bool starts_with_file(const char *path, const char *prefix)
{
	uint8_t *text = read_all(path, NULL);
	bool ok = strncmp((char *)text, prefix, strlen(prefix)) == 0;

	free(text);
	return ok;
}

/* The encrypted PKCS#8 file uses PBES2 with scrypt and AES-256-CBC. */
static void check_pbes2_scrypt(const char *path)
{
	BIO *b = BIO_new_file(path, "r");
	X509_SIG *p8;
	const X509_ALGOR *alg;
	PBE2PARAM *pbe2;

	assert_non_null(b);
	p8 = PEM_read_bio_PKCS8(b, NULL, NULL, NULL);
	assert_non_null(p8);
	X509_SIG_get0(p8, &alg, NULL);
	assert_int_equal(OBJ_obj2nid(alg->algorithm), NID_pbes2);
	pbe2 = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBE2PARAM), alg->parameter);
	assert_non_null(pbe2);
	assert_int_equal(OBJ_obj2nid(pbe2->keyfunc->algorithm), NID_id_scrypt);
	assert_int_equal(OBJ_obj2nid(pbe2->encryption->algorithm), NID_aes_256_cbc);
	PBE2PARAM_free(pbe2);
	X509_SIG_free(p8);
	BIO_free(b);
}

static int count_dir_entries(void)
{
	DIR *d = opendir(tmpdir);
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static void clear_dir(void)
{
	DIR *d = opendir(tmpdir);
	struct dirent *e;
	char p[600];

	if (!d)
		return;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(p, sizeof(p), "%s/%s", tmpdir, e->d_name);
		unlink(p);
	}
	closedir(d);
}

static void round_trip(sm_key *k)
{
	const char *priv = tmp_path("rt.key"), *pub;
	sm_key *back;
	mode_t old;

	/* Encrypted. An existing, more open file is replaced (new inode). */
	write_file(priv, "old", 3);
	assert_int_equal(chmod(priv, 0644), 0);
	assert_int_equal(key_write_private(priv, k, "s3cret pass"), 0);
	assert_int_equal(file_mode(priv), 0600);
	assert_true(starts_with_file(priv, "-----BEGIN ENCRYPTED PRIVATE KEY-----\n"));
	check_pbes2_scrypt(priv);
	assert_int_equal(load_priv_err(priv, NULL), -EACCES);
	assert_int_equal(load_priv_err(priv, "s3cret"), -EACCES);
	assert_int_equal(key_load_private(priv, "s3cret pass", &back), 0);
	assert_true(key_equal(back, k));
	assert_true(key_has_private(back));
	key_unref(back);

	/* Unencrypted, for NULL and for "". */
	assert_int_equal(key_write_private(priv, k, NULL), 0);
	assert_true(starts_with_file(priv, "-----BEGIN PRIVATE KEY-----\n"));
	assert_int_equal(key_load_private(priv, NULL, &back), 0);
	assert_true(key_equal(back, k));
	key_unref(back);
	assert_int_equal(key_write_private(priv, k, ""), 0);
	assert_int_equal(file_mode(priv), 0600);
	assert_true(starts_with_file(priv, "-----BEGIN PRIVATE KEY-----\n"));

	/* Public: 0644 whatever the umask. */
	pub = tmp_path("rt.pub");
	old = umask(077);
	assert_int_equal(key_write_public(pub, k), 0);
	umask(old);
	assert_int_equal(file_mode(pub), 0644);
	assert_true(starts_with_file(pub, "-----BEGIN PUBLIC KEY-----\n"));
	assert_int_equal(key_load_public(pub, &back), 0);
	assert_true(key_equal(back, k));
	assert_false(key_has_private(back));
	/* Only a key with its private half can be written as one. */
	assert_int_equal(key_write_private(priv, back, NULL), -EINVAL);
	key_unref(back);

	/* No temporary file is left behind. */
	assert_int_equal(count_dir_entries(), 2);
	clear_dir();
}

static void test_write_round_trip(void **state)
{
	sm_key *k;

	(void)state;
	clear_dir();
	assert_int_equal(key_generate(KEY_ED25519, &k), 0);
	round_trip(k);
	key_unref(k);
	assert_int_equal(key_generate(KEY_ECDSA_P256, &k), 0);
	round_trip(k);
	key_unref(k);
	k = load_priv("carol.key", NULL);
	round_trip(k);
	/* Failures leave nothing behind. */
	assert_int_equal(key_write_private(tmp_path("no/such/dir"), k, NULL), -ENOENT);
	assert_int_equal(key_write_public(tmp_path("no/such/dir"), k), -ENOENT);
	assert_int_equal(key_write_public(tmpdir, k), -EISDIR);
	assert_int_equal(key_write_public_new(tmpdir, k), -EEXIST);
	assert_int_equal(count_dir_entries(), 0);
	key_unref(k);
}

/* ---- fingerprints ---- */

static void test_fingerprints(void **state)
{
	char *pubf = pki("alice.pub");
	char text[FPR_TEXT_LEN + 1], hex[FPR_HEX_LEN + 1], khex[FPR_HEX_LEN + 1];
	char *name = NULL, *header = NULL;
	unsigned char *der = NULL;
	long derlen;
	struct iov_c v;
	uint8_t md[SHA256_LEN];
	size_t len;
	const uint8_t *spki;
	sm_key *k = load_pub("alice.pub");
	BIO *b = BIO_new_file(pubf, "r");

	(void)state;
	spki = key_spki(k, &len);
	fingerprint_text(spki, len, text);
	fingerprint_hex(spki, len, hex);
	assert_int_equal(key_fingerprint_hex(k, khex), 0);
	assert_string_equal(hex, khex);
	assert_int_equal(strlen(text), FPR_TEXT_LEN);
	assert_int_equal(strlen(hex), FPR_HEX_LEN);
	for (size_t i = 0, j = 0; i < FPR_TEXT_LEN; i++) {
		if (i % 5 == 4) {
			assert_int_equal(text[i], ' ');
			continue;
		}
		assert_true((text[i] >= '0' && text[i] <= '9') ||
			    (text[i] >= 'a' && text[i] <= 'f'));
		assert_int_equal(text[i], hex[j++]);
	}
	/* It is the SHA-256 of the file's DER, independently computed. */
	assert_non_null(b);
	assert_int_equal(PEM_read_bio(b, &name, &header, &der, &derlen), 1);
	assert_int_equal((size_t)derlen, len);
	assert_memory_equal(der, spki, len);
	v.p = der;
	v.len = (size_t)derlen;
	assert_int_equal(crypto_sha256(&v, 1, md), 0);
	for (int i = 0; i < SHA256_LEN; i++) {
		char two[3];

		snprintf(two, sizeof(two), "%02x", md[i]);
		assert_memory_equal(two, hex + 2 * i, 2);
	}
	OPENSSL_free(name);
	OPENSSL_free(header);
	OPENSSL_free(der);
	BIO_free(b);
	key_unref(k);
	free(pubf);
}

/* ---- certificate chains ---- */

static void load_chain(const char *file, struct cert_chain *c)
{
	char *p = pki(file);

	assert_int_equal(cert_chain_load(p, c), 0);
	free(p);
}

/* The grouped form round-trips through fingerprint_parse, which also
 * takes upper case and refuses anything but 64 digits in 1 or 16 groups. */
static void test_fingerprint_forms(void **state)
{
	static const char hex[] = "0123456789abcdef0123456789abcdef"
				  "0123456789abcdef0123456789abcdef";
	static const char *const bad[] = {
		"", "0123", "0123456789abcdef0123456789abcdef0123456789abcdef"
		"0123456789abcde", "0123456789abcdef0123456789abcdef0123456789abcdef"
		"0123456789abcdef0", "01234567 89abcdef 0123456789abcdef0123456789"
		"abcdef0123456789abcdef0123456789abcdef", "0123 4567 89ab cdef "
		"0123 4567 89ab cdef 0123 4567 89ab cdef 0123 4567 89ab cdeg",
		"0123:4567:89ab:cdef:0123:4567:89ab:cdef:0123:4567:89ab:cdef:"
		"0123:4567:89ab:cdef", "0123 4567 89ab cdef 0123 4567 89ab cdef "
		"0123 4567 89ab cdef 0123 4567 89ab cde f",
	};
	char text[FPR_TEXT_LEN + 1], out[FPR_HEX_LEN + 1];

	(void)state;
	fingerprint_group(hex, text);
	assert_int_equal(strlen(text), FPR_TEXT_LEN);
	assert_memory_equal(text, "0123 4567 89ab cdef 0123", 24);
	assert_int_equal(fingerprint_parse(text, strlen(text), out), 0);
	assert_string_equal(out, hex);
	assert_int_equal(fingerprint_parse(hex, strlen(hex), out), 0);
	assert_string_equal(out, hex);
	assert_int_equal(fingerprint_parse(" 0123456789ABCDEF0123456789abcdef"
					   "0123456789abcdef0123456789ABCDEF\r",
					   66, out), 0);
	assert_string_equal(out, hex);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (fingerprint_parse(bad[i], strlen(bad[i]), out) != -EINVAL)
			fail_msg("accepted '%s'", bad[i]);
	fingerprint_group("0123456", text);	/* short: fewer groups */
	assert_string_equal(text, "0123 456");
}

static void test_cert_chain_load(void **state)
{
	static const char *const leaves[] = {
		"server", "server-chain", "server-ecdsa", "server-rsa", "server-cn",
		"server-wrongname", "server-expired", "server-notyet",
		"server-revoked", "server-untrusted",
	};
	static const char *const five[] = {
		"server-chain.pem", "server-chain.pem", "server.pem",
	};
	struct cert_chain c, inter;
	char file[64];
	sm_key *k, *leaf;
	char *p;

	(void)state;
	for (size_t i = 0; i < sizeof(leaves) / sizeof(leaves[0]); i++) {
		snprintf(file, sizeof(file), "%s.pem", leaves[i]);
		load_chain(file, &c);
		assert_int_equal(c.count, i == 1 ? 2 : 1);
		snprintf(file, sizeof(file), "%s.key", leaves[i]);
		k = load_priv(file, NULL);
		assert_int_equal(cert_public_key(c.der[0], c.len[0], &leaf), 0);
		assert_true(key_equal(k, leaf));
		key_unref(leaf);
		key_unref(k);
		cert_chain_free(&c);
	}
	/* The chain file holds the leaf, then the intermediate, as DER. */
	load_chain("server-chain.pem", &c);
	load_chain("inter.pem", &inter);
	assert_int_equal(inter.count, 1);
	assert_int_equal(c.len[1], inter.len[0]);
	assert_memory_equal(c.der[1], inter.der[0], inter.len[0]);
	assert_int_equal(cert_public_key(c.der[0], c.len[0] - 1, &leaf), -EBADMSG);
	assert_null(leaf);
	assert_int_equal(cert_public_key(c.der[0], 10, &leaf), -EBADMSG);
	cert_chain_free(&c);
	cert_chain_free(&c);
	cert_chain_free(&inter);

	load_chain("server-rsa1024.pem", &c);
	assert_int_equal(cert_public_key(c.der[0], c.len[0], &leaf), -EINVAL);
	cert_chain_free(&c);

	/* Too many, none, not certificates, no file. */
	assert_int_equal(cert_chain_load(concat("five.pem", five, 3), &c), -E2BIG);
	assert_int_equal(c.count, 0);
	p = pki("server.key");
	assert_int_equal(cert_chain_load(p, &c), -EBADMSG);
	free(p);
	write_file(tmp_path("empty.pem"), "", 0);
	assert_int_equal(cert_chain_load(tmp_path("empty.pem"), &c), -EBADMSG);
	write_str(tmp_path("bad.pem"),
		  "-----BEGIN CERTIFICATE-----\nMAMCAQA=\n-----END CERTIFICATE-----\n");
	assert_int_equal(cert_chain_load(tmp_path("bad.pem"), &c), -EBADMSG);
	assert_int_equal(cert_chain_load(tmp_path("missing.pem"), &c), -ENOENT);
	assert_int_equal(c.count, 0);
}

/* ---- trust and cert_verify ---- */

enum trust_kind {
	T_PLAIN,	  /* ca.pem */
	T_CRL,		  /* ca.pem, crl.pem */
	T_CRL_EXPIRED,	  /* ca.pem, crl-expired.pem */
	T_OTHER,	  /* other-ca.pem */
	T_BOTH,		  /* ca.pem and other-ca.pem in one file */
	T_INTER,	  /* inter.pem only (a partial chain) */
	T_CRL_CA_ONLY,	  /* ca.pem, the CRL of ca only */
	T_CRL_INTER_ONLY, /* ca.pem, the CRL of inter only */
	T_COUNT,
};

static trust *trusts[T_COUNT];

/* Split crl.pem (mkpki.sh writes ca's CRL, then inter's). */
static void split_crl(void)
{
	char *p = pki("crl.pem");
	size_t len;
	uint8_t *text = read_all(p, &len);
	char *second;

	second = strstr(strstr((char *)text, "-----BEGIN X509 CRL") + 1,
			"-----BEGIN X509 CRL");
	assert_non_null(second);
	write_file(tmp_path("crl-ca.pem"), text, (size_t)(second - (char *)text));
	write_file(tmp_path("crl-inter.pem"), second,
		   len - (size_t)(second - (char *)text));
	free(text);
	free(p);
}

static void make_trust(enum trust_kind kind, const char *ca, const char *crl,
		       bool crl_is_tmp)
{
	char *cap = ca[0] == '/' ? strdup(ca) : pki(ca);
	char *crlp = NULL;

	if (crl)
		crlp = crl_is_tmp ? strdup(tmp_path(crl)) : pki(crl);
	assert_int_equal(trust_load(cap, crlp, &trusts[kind]), 0);
	free(cap);
	free(crlp);
}

static int setup_trusts(void **state)
{
	static const char *const both[] = { "ca.pem", "other-ca.pem" };
	char *bothp;

	(void)state;
	split_crl();
	bothp = strdup(concat("both.pem", both, 2));
	make_trust(T_PLAIN, "ca.pem", NULL, false);
	make_trust(T_CRL, "ca.pem", "crl.pem", false);
	make_trust(T_CRL_EXPIRED, "ca.pem", "crl-expired.pem", false);
	make_trust(T_OTHER, "other-ca.pem", NULL, false);
	make_trust(T_BOTH, bothp, NULL, false);
	make_trust(T_INTER, "inter.pem", NULL, false);
	make_trust(T_CRL_CA_ONLY, "ca.pem", "crl-ca.pem", true);
	make_trust(T_CRL_INTER_ONLY, "ca.pem", "crl-inter.pem", true);
	free(bothp);
	return 0;
}

static int teardown_trusts(void **state)
{
	(void)state;
	for (int i = 0; i < T_COUNT; i++) {
		trust_free(trusts[i]);
		trusts[i] = NULL;
	}
	clear_dir();
	return 0;
}

static enum cert_result verify_chain(const struct cert_chain *c, enum trust_kind t,
				     const char *name, time_t now, sm_key **leaf)
{
	return cert_verify(trusts[t], (const uint8_t *const *)c->der, c->len,
			   c->count, name, now, leaf);
}

static enum cert_result verify_file(const char *file, enum trust_kind t,
				    const char *name)
{
	struct cert_chain c;
	enum cert_result r;

	load_chain(file, &c);
	r = verify_chain(&c, t, name, time(NULL), NULL);
	cert_chain_free(&c);
	return r;
}

static void test_trust_load(void **state)
{
	char *ca = pki("ca.pem"), *crl = pki("crl.pem"), *pub = pki("alice.pub");
	trust *t = (trust *)1;

	(void)state;
	assert_int_equal(trust_load(tmp_path("missing"), NULL, &t), -ENOENT);
	assert_null(t);
	assert_int_equal(trust_load(ca, tmp_path("missing"), &t), -ENOENT);
	assert_null(t);
	assert_int_equal(trust_load(pub, NULL, &t), -EBADMSG);
	assert_int_equal(trust_load(crl, NULL, &t), -EBADMSG);
	assert_int_equal(trust_load(ca, ca, &t), -EBADMSG); /* no CRL in it */
	assert_int_equal(trust_load(ca, pub, &t), -EBADMSG);
	assert_int_equal(trust_load(ca, crl, &t), 0);
	trust_free(t);
	trust_free(NULL);
	free(ca);
	free(crl);
	free(pub);
}

struct vcase {
	const char *file;
	enum trust_kind trust;
	const char *name;
	enum cert_result want;
};

static const struct vcase vcases[] = {
	{ "server.pem", T_PLAIN, "localhost", CERT_OK },
	{ "server.pem", T_PLAIN, "127.0.0.1", CERT_OK },
	{ "server.pem", T_PLAIN, "::1", CERT_OK },
	{ "server.pem", T_PLAIN, "0:0:0:0:0:0:0:1", CERT_OK },
	{ "server.pem", T_PLAIN, "LOCALHOST", CERT_OK },
	{ "server.pem", T_PLAIN, "LocalHost", CERT_OK },
	{ "server.pem", T_PLAIN, "localhost.", CERT_NAME },
	{ "server.pem", T_PLAIN, "localhost2", CERT_NAME },
	{ "server.pem", T_PLAIN, "ocalhost", CERT_NAME },
	{ "server.pem", T_PLAIN, "", CERT_NAME },
	{ "server.pem", T_PLAIN, NULL, CERT_OK }, /* no name check */
	{ "server.pem", T_PLAIN, "127.0.0.2", CERT_NAME },
	{ "server.pem", T_PLAIN, "::2", CERT_NAME },
	{ "server.pem", T_PLAIN, "::ffff:127.0.0.1", CERT_NAME },
	{ "server.pem", T_PLAIN, "other.example", CERT_NAME },
	{ "server.pem", T_CRL, "localhost", CERT_OK },
	{ "server.pem", T_CRL_CA_ONLY, "localhost", CERT_OK },
	{ "server.pem", T_CRL_INTER_ONLY, "localhost", CERT_CRL_INVALID },
	{ "server.pem", T_CRL_EXPIRED, "localhost", CERT_CRL_INVALID },
	{ "server.pem", T_OTHER, "localhost", CERT_UNTRUSTED },
	{ "server.pem", T_BOTH, "localhost", CERT_OK },
	{ "server.pem", T_INTER, "localhost", CERT_UNTRUSTED },
	{ "server-chain.pem", T_PLAIN, "localhost", CERT_OK },
	{ "server-chain.pem", T_PLAIN, "::1", CERT_OK },
	{ "server-chain.pem", T_CRL, "localhost", CERT_OK },
	{ "server-chain.pem", T_CRL_EXPIRED, "localhost", CERT_CRL_INVALID },
	/* §3: the leaf's issuer needs a CRL; the others' apply if present. */
	{ "server-chain.pem", T_CRL_CA_ONLY, "localhost", CERT_CRL_INVALID },
	{ "server-chain.pem", T_CRL_INTER_ONLY, "localhost", CERT_OK },
	{ "server-chain.pem", T_INTER, "localhost", CERT_OK },
	{ "server-chain.pem", T_OTHER, "localhost", CERT_UNTRUSTED },
	{ "server-ecdsa.pem", T_PLAIN, "localhost", CERT_OK },
	{ "server-ecdsa.pem", T_CRL, "127.0.0.1", CERT_OK },
	{ "server-rsa.pem", T_PLAIN, "localhost", CERT_OK },
	{ "server-rsa.pem", T_CRL, "::1", CERT_OK },
	{ "server-cn.pem", T_PLAIN, "localhost", CERT_OK },
	{ "server-cn.pem", T_PLAIN, "LOCALHOST", CERT_OK },
	{ "server-cn.pem", T_PLAIN, "127.0.0.1", CERT_NAME },
	{ "server-cn.pem", T_PLAIN, "other.example", CERT_NAME },
	/* extendedKeyUsage clientAuth only: not issued for a server */
	{ "server-clientauth.pem", T_PLAIN, "localhost", CERT_UNTRUSTED },
	{ "server-wrongname.pem", T_PLAIN, "localhost", CERT_NAME },
	{ "server-wrongname.pem", T_PLAIN, "127.0.0.1", CERT_NAME },
	{ "server-wrongname.pem", T_PLAIN, "other.example", CERT_OK },
	{ "server-wrongname.pem", T_PLAIN, "Other.Example", CERT_OK },
	{ "server-wrongname.pem", T_PLAIN, NULL, CERT_OK },
	{ "server-expired.pem", T_PLAIN, NULL, CERT_EXPIRED },
	{ "server-rsa1024.pem", T_PLAIN, NULL, CERT_KEY },
	{ "server-expired.pem", T_PLAIN, "localhost", CERT_EXPIRED },
	{ "server-expired.pem", T_CRL, "localhost", CERT_EXPIRED },
	{ "server-notyet.pem", T_PLAIN, "localhost", CERT_EXPIRED },
	{ "server-notyet.pem", T_CRL, "localhost", CERT_EXPIRED },
	{ "server-revoked.pem", T_PLAIN, "localhost", CERT_OK },
	{ "server-revoked.pem", T_CRL, "localhost", CERT_REVOKED },
	{ "server-revoked.pem", T_CRL_CA_ONLY, "localhost", CERT_REVOKED },
	{ "server-revoked.pem", T_CRL, "wrong.example", CERT_REVOKED },
	{ "server-untrusted.pem", T_PLAIN, "localhost", CERT_UNTRUSTED },
	{ "server-untrusted.pem", T_CRL, "localhost", CERT_UNTRUSTED },
	{ "server-untrusted.pem", T_PLAIN, "wrong.example", CERT_UNTRUSTED },
	{ "server-untrusted.pem", T_OTHER, "localhost", CERT_OK },
	{ "server-untrusted.pem", T_BOTH, "localhost", CERT_OK },
	{ "server-rsa1024.pem", T_PLAIN, "localhost", CERT_KEY },
	{ "server-rsa1024.pem", T_CRL, "localhost", CERT_KEY },
};

static void test_verify_fixtures(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(vcases) / sizeof(vcases[0]); i++) {
		const struct vcase *v = &vcases[i];
		enum cert_result r = verify_file(v->file, v->trust, v->name);

		if (r != v->want)
			fail_msg("case %zu: %s, trust %d, name %s: got %d (%s), want %d",
				 i, v->file, v->trust, v->name ? v->name : "(null)",
				 r, cert_result_str(r), v->want);
	}
}

static void test_verify_leaf_key(void **state)
{
	struct cert_chain c;
	sm_key *leaf = (sm_key *)1, *k = load_priv("server.key", NULL);

	(void)state;
	load_chain("server.pem", &c);
	assert_int_equal(verify_chain(&c, T_CRL, "localhost", time(NULL), &leaf),
			 CERT_OK);
	assert_non_null(leaf);
	assert_true(key_equal(leaf, k));
	assert_false(key_has_private(leaf));
	key_unref(leaf);
	leaf = (sm_key *)1;
	assert_int_equal(verify_chain(&c, T_CRL, "nope", time(NULL), &leaf), CERT_NAME);
	assert_null(leaf);
	leaf = (sm_key *)1;
	assert_int_equal(verify_chain(&c, T_OTHER, "localhost", time(NULL), &leaf),
			 CERT_UNTRUSTED);
	assert_null(leaf);
	cert_chain_free(&c);
	key_unref(k);
}

static void test_verify_time(void **state)
{
	struct cert_chain c;
	time_t now = time(NULL);

	(void)state;
	load_chain("server.pem", &c);
	assert_int_equal(verify_chain(&c, T_PLAIN, "localhost", now, NULL), CERT_OK);
	assert_int_equal(verify_chain(&c, T_PLAIN, "localhost", 86400, NULL),
			 CERT_EXPIRED);
	assert_int_equal(verify_chain(&c, T_PLAIN, "localhost",
				      now + 30LL * 365 * 86400, NULL), CERT_EXPIRED);
	cert_chain_free(&c);
	/* In January 2020 crl-expired.pem was valid, but the CA was not yet:
	 * the CRL check passes and the validity check fails. */
	load_chain("server-expired.pem", &c);
	assert_int_equal(verify_chain(&c, T_CRL_EXPIRED, "localhost",
				      1579046400 /* 2020-01-15 */, NULL), CERT_EXPIRED);
	cert_chain_free(&c);
}

static void test_verify_chain_shapes(void **state)
{
	struct cert_chain c, s, ca, other;
	const uint8_t *der[CERT_CHAIN_MAX + 1];
	size_t len[CERT_CHAIN_MAX + 1];
	uint8_t garbage[64], *longer;
	time_t now = time(NULL);
	trust *t = trusts[T_PLAIN];

	(void)state;
	load_chain("server-chain.pem", &c);
	load_chain("server.pem", &s);
	load_chain("ca.pem", &ca);
	load_chain("other-ca.pem", &other);

	/* The leaf without its intermediate. */
	der[0] = c.der[0];
	len[0] = c.len[0];
	assert_int_equal(cert_verify(t, der, len, 1, "localhost", now, NULL),
			 CERT_UNTRUSTED);
	/* Extra certificates are harmless: the root itself, an unrelated CA. */
	der[1] = c.der[1];
	len[1] = c.len[1];
	der[2] = ca.der[0];
	len[2] = ca.len[0];
	der[3] = other.der[0];
	len[3] = other.len[0];
	assert_int_equal(cert_verify(t, der, len, 4, "localhost", now, NULL), CERT_OK);
	/* Counts outside 1..4. */
	der[4] = s.der[0];
	len[4] = s.len[0];
	assert_int_equal(cert_verify(t, der, len, 5, "localhost", now, NULL),
			 CERT_MALFORMED);
	assert_int_equal(cert_verify(t, der, len, 0, "localhost", now, NULL),
			 CERT_MALFORMED);
	assert_int_equal(cert_verify(t, der, len, -1, "localhost", now, NULL),
			 CERT_MALFORMED);
	/* Garbage, truncation, a trailing byte, NULL, in any position. */
	memset(garbage, 0x30, sizeof(garbage));
	der[1] = garbage;
	len[1] = sizeof(garbage);
	assert_int_equal(cert_verify(t, der, len, 2, "localhost", now, NULL),
			 CERT_MALFORMED);
	der[0] = garbage;
	len[0] = sizeof(garbage);
	assert_int_equal(cert_verify(t, der, len, 1, "localhost", now, NULL),
			 CERT_MALFORMED);
	der[0] = s.der[0];
	len[0] = s.len[0] - 1;
	assert_int_equal(cert_verify(t, der, len, 1, "localhost", now, NULL),
			 CERT_MALFORMED);
	longer = malloc(s.len[0] + 1);
	assert_non_null(longer);
	memcpy(longer, s.der[0], s.len[0]);
	longer[s.len[0]] = 0;
	der[0] = longer;
	len[0] = s.len[0] + 1;
	assert_int_equal(cert_verify(t, der, len, 1, "localhost", now, NULL),
			 CERT_MALFORMED);
	der[0] = NULL;
	len[0] = 0;
	assert_int_equal(cert_verify(t, der, len, 1, "localhost", now, NULL),
			 CERT_MALFORMED);
	/* Flipping any byte of the signed part breaks the signature. */
	memcpy(longer, s.der[0], s.len[0]);
	der[0] = longer;
	len[0] = s.len[0];
	for (size_t i = 4; i < s.len[0]; i += 37) {
		enum cert_result r;

		longer[i] ^= 0x01;
		r = cert_verify(t, der, len, 1, "localhost", now, NULL);
		assert_int_not_equal(r, CERT_OK);
		longer[i] ^= 0x01;
	}
	/* No trust at all. */
	der[0] = s.der[0];
	len[0] = s.len[0];
	assert_int_equal(cert_verify(NULL, der, len, 1, "localhost", now, NULL),
			 CERT_UNTRUSTED);
	free(longer);
	cert_chain_free(&c);
	cert_chain_free(&s);
	cert_chain_free(&ca);
	cert_chain_free(&other);
}

/*
 * SECURITY.md §7.14's name rules that no other case could fail on: no
 * wildcards (a '*' in a DNS SAN or in the CN never matches, not even the
 * same literal name; without the check, "*.localhost" would match itself),
 * and a duplicated or undecodable subjectAltName never lets the CN (which
 * names localhost in both) stand in for it. OpenSSL 3 refuses those two
 * before cert_verify's own name check is reached: it marks the
 * certificate invalid, so the chain does not verify and trust_load will
 * not take it as an anchor either. These cases pin that refusal.
 */
static void test_verify_san_rules(void **state)
{
	static const struct vcase cases[] = {
		{ "server-wildcard.pem", T_PLAIN, "*.localhost", CERT_NAME },
		{ "server-wildcard.pem", T_PLAIN, "*", CERT_NAME },
		{ "server-wildcard.pem", T_PLAIN, "a.localhost", CERT_NAME },
		{ "server-wildcard.pem", T_PLAIN, "localhost", CERT_NAME },
		{ "server-wildcard.pem", T_PLAIN, NULL, CERT_OK },
		{ "server-wildcard-cn.pem", T_PLAIN, "*.localhost", CERT_NAME },
		{ "server-wildcard-cn.pem", T_PLAIN, "a.localhost", CERT_NAME },
		{ "server-wildcard-cn.pem", T_PLAIN, NULL, CERT_OK },
		{ "server-dupsan.pem", T_PLAIN, "localhost", CERT_UNTRUSTED },
		{ "server-dupsan.pem", T_PLAIN, NULL, CERT_UNTRUSTED },
		{ "server-badsan.pem", T_PLAIN, "localhost", CERT_UNTRUSTED },
		{ "server-badsan.pem", T_PLAIN, NULL, CERT_UNTRUSTED },
	};
	static const char *const bad[] = { "server-dupsan.pem",
					   "server-badsan.pem" };
	trust *t;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct vcase *v = &cases[i];
		enum cert_result r = verify_file(v->file, v->trust, v->name);

		if (r != v->want)
			fail_msg("%s, name %s: got %d (%s), want %d", v->file,
				 v->name ? v->name : "(null)", r,
				 cert_result_str(r), v->want);
	}
	/* Nor as a pinned anchor (a CA file holding the server's leaf). */
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *p = pki(bad[i]);

		t = (trust *)1;
		assert_int_equal(trust_load(p, NULL, &t), -EBADMSG);
		assert_null(t);
		free(p);
	}
}

static void test_result_str(void **state)
{
	static const struct {
		enum cert_result r;
		const char *word;
	} words[] = {
		{ CERT_OK, "valid" },		{ CERT_MALFORMED, "malformed" },
		{ CERT_UNTRUSTED, "trusted CA" }, { CERT_EXPIRED, "expired" },
		{ CERT_REVOKED, "revoked" },	{ CERT_CRL_INVALID, "revocation list" },
		{ CERT_NAME, "name" },		{ CERT_KEY, "key" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		const char *s = cert_result_str(words[i].r);

		assert_non_null(strstr(s, words[i].word));
		for (size_t j = 0; j < i; j++)
			assert_string_not_equal(s, cert_result_str(words[j].r));
	}
	assert_non_null(cert_result_str((enum cert_result)99));
}

/* Several threads share one trust object, read-only. */
struct worker_arg {
	struct cert_chain *chains;
	int bad;
};

static void *verify_worker(void *p)
{
	static const enum cert_result want[] = { CERT_OK, CERT_OK, CERT_REVOKED,
						 CERT_EXPIRED };
	struct worker_arg *a = p;

	for (int i = 0; i < 25; i++)
		for (int j = 0; j < 4; j++) {
			sm_key *leaf = NULL;

			if (verify_chain(&a->chains[j], T_CRL, "localhost", time(NULL),
					 &leaf) != want[j])
				a->bad++;
			key_unref(leaf);
		}
	return NULL;
}

static void test_verify_threads(void **state)
{
	struct cert_chain chains[4];
	struct worker_arg args[4];
	pthread_t th[4];

	(void)state;
	load_chain("server.pem", &chains[0]);
	load_chain("server-chain.pem", &chains[1]);
	load_chain("server-revoked.pem", &chains[2]);
	load_chain("server-expired.pem", &chains[3]);
	for (int i = 0; i < 4; i++) {
		args[i].chains = chains;
		args[i].bad = 0;
		assert_int_equal(pthread_create(&th[i], NULL, verify_worker, &args[i]), 0);
	}
	/* Every thread joined before any check: a failed check leaves the
	 * test, and a thread still running would read chains from a stack
	 * frame that is gone (with a mutant, test_keys hung until killed). */
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(args[i].bad, 0);
	for (int i = 0; i < 4; i++)
		cert_chain_free(&chains[i]);
}

static int setup(void **state)
{
	struct stat st;

	(void)state;
	if (stat(tu_pki_path(".done"), &st) != 0) {
		fprintf(stderr, "test_keys: no PKI at %s; run tests/lib/mkpki.sh\n",
			tu_pki_path(""));
		return -1;
	}
	if (!mkdtemp(tmpdir))
		return -1;
	return crypto_init();
}

static int teardown(void **state)
{
	(void)state;
	clear_dir();
	rmdir(tmpdir);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_load_user_keys),
		cmocka_unit_test(test_load_refused_types),
		cmocka_unit_test(test_passphrase),
		cmocka_unit_test(test_load_errors),
		cmocka_unit_test(test_parse_public_pem),
		cmocka_unit_test(test_traditional_pem),
		cmocka_unit_test(test_write_round_trip),
		cmocka_unit_test(test_fingerprints),
		cmocka_unit_test(test_fingerprint_forms),
		cmocka_unit_test(test_cert_chain_load),
		cmocka_unit_test(test_trust_load),
		cmocka_unit_test_setup_teardown(test_verify_fixtures, setup_trusts,
						teardown_trusts),
		cmocka_unit_test_setup_teardown(test_verify_leaf_key, setup_trusts,
						teardown_trusts),
		cmocka_unit_test_setup_teardown(test_verify_time, setup_trusts,
						teardown_trusts),
		cmocka_unit_test_setup_teardown(test_verify_chain_shapes, setup_trusts,
						teardown_trusts),
		cmocka_unit_test_setup_teardown(test_verify_san_rules, setup_trusts,
						teardown_trusts),
		cmocka_unit_test(test_result_str),
		cmocka_unit_test_setup_teardown(test_verify_threads, setup_trusts,
						teardown_trusts),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
