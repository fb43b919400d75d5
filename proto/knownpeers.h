/* knownpeers.h - the known-peers store of PROTOCOL.md §8.
 *
 * A file of lines "name fingerprint" (64 hex digits), one per peer. The
 * parser treats the file as hostile: bad lines are counted and skipped,
 * never trusted.
 */
#ifndef SECMSG_KNOWNPEERS_H
#define SECMSG_KNOWNPEERS_H

#include <stddef.h>

#include "buf.h"
#include "keys.h"

#define KP_MAX_PEERS 100000
#define KP_MAX_FILE (8 * 1024 * 1024)

struct kp_entry {
	char name[NAME_MAX_LEN + 1];
	char fpr[FPR_HEX_LEN + 1];
};

struct known_peers {
	struct kp_entry *v;
	size_t n, cap;
	size_t bad_lines;	/* lines skipped when parsed */
};

enum kp_status {
	KP_NEW = 0,		/* never seen: record it */
	KP_MATCH = 1,		/* the recorded key */
	KP_CHANGED = 2,		/* a different key than the recorded one */
};

void kp_init(struct known_peers *kp);
void kp_free(struct known_peers *kp);
/* Parse file text (len bytes, need not be NUL-terminated); 0 or -ENOMEM/-EFBIG. */
int kp_parse(struct known_peers *kp, const char *text, size_t len);
/* Load from a file (a missing file is an empty store). */
int kp_load(struct known_peers *kp, const char *path);
/* Write atomically (temp file + rename), mode 0600. */
int kp_save(const struct known_peers *kp, const char *path);
/* Look name up against fpr (hex). On KP_CHANGED, *old points at the recorded one. */
enum kp_status kp_check(const struct known_peers *kp, const char *name,
			const char *fpr, const char **old);
/* Record or replace name's fingerprint. */
int kp_set(struct known_peers *kp, const char *name, const char *fpr);
/* The recorded fingerprint of name, or NULL. */
const char *kp_get(const struct known_peers *kp, const char *name);

#endif
