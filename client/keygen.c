/* keygen.c - make, show and load the user's key files. */
#include "keygen.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "keys.h"
#include "pass.h"

#define PROG "secmsg-client"

static const struct {
	const char *word;
	enum key_type type;
} types[] = {
	{ "ed25519", KEY_ED25519 },
	{ "ecdsa", KEY_ECDSA_P256 },
	{ "rsa", KEY_RSA },
};

int keygen_parse_type(const char *s, enum key_type *t)
{
	size_t i;

	if (!s) {
		*t = KEY_ED25519;
		return 0;
	}
	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		if (strcmp(s, types[i].word) == 0) {
			*t = types[i].type;
			return 0;
		}
	}
	return -EINVAL;
}

int keygen_make_dirs(const char *path)
{
	char tmp[4096];
	char *p;

	if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	for (p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

_Static_assert(PASS_MIN == 8, "the words below say 8");
/* Asks for a new passphrase on a terminal before giving up. */
#define KEYGEN_ASKS 3

/* Why pass cannot protect a key, or NULL when it can. */
static const char *pass_unfit(const char *pass)
{
	if (pass[0] == '\0')
		return "empty passphrase: use --no-passphrase to write an "
		       "unprotected key";
	/* The key file resists guessing only as well as its passphrase:
	 * scrypt's cost cannot be raised within PKCS#8 (SECURITY.md W8). */
	if (strlen(pass) < PASS_MIN)
		return "the passphrase is too short: at least 8 characters "
		       "(or --no-passphrase)";
	return NULL;
}

/* Ask on the terminal, twice; 0, -EILSEQ when the two differ, or the
 * prompt's error. */
static int ask_twice(char *pass, size_t len)
{
	char again[PASS_MAX];
	int r = pass_prompt("New passphrase for the key: ", pass, len);

	if (r == 0)
		r = pass_prompt("Same passphrase again: ", again,
				sizeof(again));
	if (r == 0 && strcmp(pass, again) != 0)
		r = -EILSEQ;
	crypto_cleanse(again, sizeof(again));
	return r;
}

/* The new key's passphrase: from a file (taken or refused), or none, or
 * asked on the terminal until it is fit and typed the same twice (at
 * most KEYGEN_ASKS times, as passwd(1) does). */
static int new_passphrase(const struct keygen_opts *o, char *pass,
			  size_t len)
{
	const char *why;
	int r;

	pass[0] = '\0';
	if (o->no_passphrase)
		return 0;
	if (o->passphrase_file) {
		r = pass_read_file(o->passphrase_file, pass, len);
		if (r < 0) {
			fprintf(stderr, PROG ": %s: %s\n", o->passphrase_file,
				strerror(-r));
			return r;
		}
		if ((why = pass_unfit(pass))) {
			fprintf(stderr, PROG ": %s\n", why);
			return -EINVAL;
		}
		return 0;
	}
	for (int i = 1; i <= KEYGEN_ASKS; i++) {
		r = ask_twice(pass, len);
		if (r == -ENXIO || (r < 0 && r != -EILSEQ)) {
			fprintf(stderr, PROG ": %s\n", r == -ENXIO ?
				"no terminal to ask for a passphrase (use "
				"--passphrase-file or --no-passphrase)" :
				"cannot read the passphrase");
			return r;
		}
		why = r == -EILSEQ ? "the passphrases differ" :
		      pass_unfit(pass);
		if (!why)
			return 0;
		crypto_cleanse(pass, len);
		fprintf(stderr, PROG ": %s%s\n", why,
			i < KEYGEN_ASKS ? "; try again" : "");
	}
	return -EINVAL;
}

static int write_files(const struct keygen_opts *o, const char *keypath,
		       const char *pubpath, const char *pass, sm_key *k)
{
	int r;

	r = key_write_private(keypath, k, pass);
	if (r < 0) {
		fprintf(stderr, PROG ": cannot write %s: %s\n", keypath,
			strerror(-r));
		return r;
	}
	r = key_write_public(pubpath, k);
	if (r < 0) {
		fprintf(stderr, PROG ": cannot write %s: %s\n", pubpath,
			strerror(-r));
		unlink(keypath);
		return r;
	}
	(void)o;
	return 0;
}

static void print_result(const struct keygen_opts *o, const char *keypath,
			 const char *pubpath, enum key_type t, sm_key *k)
{
	char hex[FPR_HEX_LEN + 1], grouped[FPR_TEXT_LEN + 1];

	key_fingerprint_hex(k, hex);
	fingerprint_group(hex, grouped);
	printf("Wrote %s (%s, %s)\n", keypath, key_type_name(t),
	       o->no_passphrase ? "NOT protected by a passphrase" :
				  "protected by your passphrase");
	printf("Wrote %s\n", pubpath);
	printf("Fingerprint: %s\n", grouped);
	printf("Hand %s to your administrator to enrol user %s; keep %s "
	       "to yourself.\n", pubpath, o->user, keypath);
}

static int key_paths(const struct keygen_opts *o, char *keypath,
		     char *pubpath, size_t len)
{
	if (snprintf(keypath, len, "%s/%s.key", o->keys_dir, o->user) >=
		    (int)len ||
	    snprintf(pubpath, len, "%s/%s.pub", o->keys_dir, o->user) >=
		    (int)len) {
		fprintf(stderr, PROG ": %s: path too long\n", o->keys_dir);
		return -ENAMETOOLONG;
	}
	if (access(keypath, F_OK) == 0 || access(pubpath, F_OK) == 0) {
		fprintf(stderr, PROG ": %s or %s exists already; move it "
			"away first\n", keypath, pubpath);
		return -EEXIST;
	}
	return 0;
}

int keygen_run(const struct keygen_opts *o)
{
	char keypath[4200], pubpath[4200], pass[PASS_MAX];
	enum key_type t;
	sm_key *k = NULL;
	int r;

	if (!name_valid_str(o->user)) {
		fprintf(stderr, PROG ": invalid user name '%s'\n", o->user);
		return 2;
	}
	if (keygen_parse_type(o->type, &t) < 0) {
		fprintf(stderr, PROG ": unknown key type '%s' (ed25519, "
			"ecdsa or rsa)\n", o->type);
		return 2;
	}
	if (key_paths(o, keypath, pubpath, sizeof(keypath)) < 0)
		return 1;
	r = keygen_make_dirs(o->keys_dir);
	if (r < 0) {
		fprintf(stderr, PROG ": cannot create %s: %s\n", o->keys_dir,
			strerror(-r));
		return 1;
	}
	if (new_passphrase(o, pass, sizeof(pass)) < 0) {
		crypto_cleanse(pass, sizeof(pass));
		return 2;
	}
	r = key_generate(t, &k);
	if (r == 0)
		r = write_files(o, keypath, pubpath, pass, k);
	else
		fprintf(stderr, PROG ": cannot generate the key: %s\n",
			strerror(-r));
	crypto_cleanse(pass, sizeof(pass));
	if (r == 0)
		print_result(o, keypath, pubpath, t, k);
	if (k)
		key_unref(k);
	return r == 0 ? 0 : 1;
}

static const char *load_error(int r)
{
	switch (r) {
	case -EACCES:
		return "wrong passphrase";
	case -ENOENT:
		return "no such file";
	case -EPERM:
		return "permission denied";
	case -EINVAL:
		return "key type or size not allowed (Ed25519, ECDSA P-256, "
		       "RSA 2048..8192)";
	default:
		return "not a usable key file";
	}
}

/* Ask for the passphrase up to three times (or read it from the file). */
static int load_encrypted(const char *path, const char *passfile,
			  sm_key **out, char *err, size_t errlen)
{
	char pass[PASS_MAX], prompt[4300];
	int r = -EACCES, tries;

	snprintf(prompt, sizeof(prompt), "Passphrase for %s: ", path);
	for (tries = 0; tries < (passfile ? 1 : 3) && r == -EACCES; tries++) {
		r = passfile ? pass_read_file(passfile, pass, sizeof(pass)) :
			       pass_prompt(prompt, pass, sizeof(pass));
		if (r < 0) {
			snprintf(err, errlen, "%s: %s", passfile ? passfile :
				 "cannot ask for the passphrase",
				 r == -ENXIO ? "no terminal (use "
				 "--passphrase-file)" : strerror(-r));
			crypto_cleanse(pass, sizeof(pass));
			return r;
		}
		r = key_load_private(path, pass, out);
		crypto_cleanse(pass, sizeof(pass));
		if (r == -EACCES && !passfile)
			fprintf(stderr, PROG ": wrong passphrase\n");
	}
	if (r < 0)
		snprintf(err, errlen, "%s: %s", path, load_error(r));
	return r;
}

int keygen_load_private(const char *path, const char *passphrase_file,
			sm_key **out, char *err, size_t errlen)
{
	struct stat st;
	int r;

	if (stat(path, &st) == 0 && (st.st_mode & 077))
		fprintf(stderr, PROG ": warning: %s can be read by other "
			"users; chmod 600 it\n", path);
	r = key_load_private(path, NULL, out);
	if (r == -EACCES)
		return load_encrypted(path, passphrase_file, out, err, errlen);
	if (r < 0)
		snprintf(err, errlen, "%s: %s%s", path, load_error(r),
			 r == -ENOENT ? " (make a key with --keygen USER)" :
					"");
	return r;
}

int keygen_fingerprint(const char *path, const char *passphrase_file)
{
	char hex[FPR_HEX_LEN + 1], grouped[FPR_TEXT_LEN + 1], err[4400];
	sm_key *k = NULL;
	int r;

	r = key_load_public(path, &k);
	if (r < 0 && r != -ENOENT && r != -EPERM)
		r = keygen_load_private(path, passphrase_file, &k, err,
					sizeof(err));
	else if (r < 0)
		snprintf(err, sizeof(err), "%s: %s", path, load_error(r));
	if (r < 0) {
		fprintf(stderr, PROG ": %s\n", err);
		return 1;
	}
	key_fingerprint_hex(k, hex);
	fingerprint_group(hex, grouped);
	printf("%s\n", grouped);
	key_unref(k);
	return 0;
}
