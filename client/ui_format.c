/* ui_format.c - events as text for a person, made safe for a terminal. */
#include "ui.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto.h"
#include "e2e.h"
#include "keygen.h"
#include "keys.h"
#include "msg.h"

/* ---- making untrusted text safe for a terminal ---- */

/* Length of a well-formed UTF-8 sequence of 2..4 bytes at s, else 0. */
static size_t utf8_seq(const unsigned char *s, size_t left, uint32_t *cp)
{
	size_t n, i;
	uint32_t v;

	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2;
		v = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3;
		v = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		v = s[0] & 0x07;
	} else {
		return 0;
	}
	if (left < n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		v = v << 6 | (s[i] & 0x3f);
	}
	if ((n == 3 && v < 0x800) || (n == 4 && v < 0x10000) ||
	    v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return 0;
	*cp = v;
	return n;
}

/* Code points that move text around or act as controls on a terminal. */
static bool cp_unsafe(uint32_t v)
{
	return (v >= 0x80 && v <= 0x9f) || v == 0x061c || v == 0x200e ||
	       v == 0x200f || (v >= 0x2028 && v <= 0x202e) ||
	       (v >= 0x2066 && v <= 0x2069);
}

size_t ui_sanitize(const char *in, size_t len, char *out, int keep_newlines)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t i = 0, o = 0, n;
	uint32_t cp;

	while (i < len) {
		unsigned char ch = s[i];

		if ((ch >= 0x20 && ch < 0x7f) ||
		    (keep_newlines && (ch == '\n' || ch == '\t'))) {
			out[o++] = (char)ch;
			i++;
		} else if (ch < 0x20 || ch == 0x7f) {
			out[o++] = '^';
			out[o++] = ch == 0x7f ? '?' : (char)(ch + 0x40);
			i++;
		} else if ((n = utf8_seq(s + i, len - i, &cp)) == 0) {
			o += (size_t)sprintf(out + o, "\\x%02x", ch);
			i++;
		} else if (cp_unsafe(cp)) {
			o += (size_t)sprintf(out + o, "U+%04X", (unsigned)cp);
			i += n;
		} else {
			memcpy(out + o, s + i, n);
			o += n;
			i += n;
		}
	}
	out[o] = '\0';
	return o;
}

/* ---- formatting events for a person ---- */

struct sbuf {
	char *p;
	size_t len, cap;
};

static void sb_put(struct sbuf *b, const char *s, size_t n)
{
	if (n > b->cap - 1 - b->len)
		n = b->cap - 1 - b->len;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void sb_printf(struct sbuf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	size_t room = b->cap - b->len;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(b->p + b->len, room, fmt, ap);
	va_end(ap);
	if (n > 0)
		b->len += (size_t)n < room ? (size_t)n : room - 1;
}

/* Untrusted text, each new line indented so it cannot pass for an event. */
static void sb_untrusted(struct sbuf *b, const char *t, size_t n,
			 const char *indent)
{
	char *tmp = malloc(6 * n + 1);
	size_t len, i, start = 0;

	if (!tmp)
		return;
	len = ui_sanitize(t, n, tmp, 1);
	for (i = 0; i < len; i++) {
		if (tmp[i] != '\n')
			continue;
		sb_put(b, tmp + start, i + 1 - start);
		sb_put(b, indent, strlen(indent));
		start = i + 1;
	}
	sb_put(b, tmp + start, len - start);
	crypto_cleanse(tmp, 6 * n + 1);
	free(tmp);
}

static void sb_users(struct sbuf *b, const char *users)
{
	const char *p;

	if (!users || !*users) {
		sb_printf(b, "Nobody else is online.\n");
		return;
	}
	sb_printf(b, "Online: ");
	for (p = users; *p; p++) {
		if (*p == ',')
			sb_put(b, ", ", 2);
		else
			sb_put(b, p, 1);
	}
	sb_put(b, "\n", 1);
}

static void fmt_refused(struct sbuf *b, unsigned reason, const char *p)
{
	switch (reason) {
	case REFUSE_DECLINED:
		sb_printf(b, "%s declined your request.\n", p);
		break;
	case REFUSE_OFFLINE:
		sb_printf(b, "%s is not online (or unknown).\n", p);
		break;
	case REFUSE_BUSY:
		sb_printf(b, "%s is busy (too many chats or requests).\n", p);
		break;
	case REFUSE_SELF:
		sb_printf(b, "%s: you cannot talk to yourself.\n", p);
		break;
	case REFUSE_EXISTS:
		sb_printf(b, "A chat or request with %s exists already.\n", p);
		break;
	case REFUSE_EXPIRED:
		sb_printf(b, "Your request to %s expired.\n", p);
		break;
	default:
		sb_printf(b, "Your request to %s was refused (%u).\n", p,
			  reason);
		break;
	}
}

static void fmt_ended_v2(struct sbuf *b, unsigned reason, const char *p);

static void fmt_ended(struct sbuf *b, unsigned reason, const char *p)
{
	switch (reason) {
	case CEV_END_FAILED:
		sb_printf(b, "The chat with %s failed and was ended.\n", p);
		break;
	case END_LEFT:
		sb_printf(b, "%s left the chat.\n", p);
		break;
	case END_DISCONNECTED:
		sb_printf(b, "%s disconnected; the chat is over.\n", p);
		break;
	case END_KICKED:
		sb_printf(b, "%s was disconnected by an administrator.\n", p);
		break;
	case END_WITHDRAWN:
		sb_printf(b, "The request with %s was withdrawn or expired.\n",
			  p);
		break;
	default:
		fmt_ended_v2(b, reason, p);
		break;
	}
}

static void fmt_ended_v2(struct sbuf *b, unsigned reason, const char *p)
{
	switch (reason) {
	case END_KEY_CHANGED:
		sb_printf(b, "The server ended your conversation with %s: a "
			  "key changed or an account was removed.\n", p);
		break;
	case CEV_END_SERVER:
		sb_printf(b, "The server says %s ended your conversation for "
			  "good (%s's client did not confirm it).\n", p, p);
		break;
	case CEV_END_FORGOTTEN:
		sb_printf(b, "The server no longer knows your conversation "
			  "with %s: it is forgotten.\n", p);
		break;
	case CEV_END_LOST:
		sb_printf(b, "The server held a conversation with %s that "
			  "this client had no state for: it was ended.\n", p);
		break;
	case CEV_END_OURS:
		sb_printf(b, "The chat with %s ended with the connection.\n",
			  p);
		break;
	default:
		sb_printf(b, "The chat with %s ended (%u).\n", p, reason);
		break;
	}
}

static const char *bye_text(unsigned reason)
{
	switch (reason) {
	case BYE_KICKED:
		return "you were disconnected by an administrator";
	case BYE_ELSEWHERE:
		return "you logged in elsewhere";
	case BYE_SHUTDOWN:
		return "the server is shutting down";
	case BYE_IDLE:
		return "idle for too long";
	case BYE_OVERFLOW:
		return "this client read too slowly";
	case BYE_VIOLATION:
		return "protocol violation";
	case BYE_REMOVED:
		return "your account was removed or its key changed";
	default:
		return "no reason given";
	}
}

static void fmt_chat(struct sbuf *b, const struct cev *ev)
{
	char g[FPR_TEXT_LEN + 1];

	fingerprint_group(ev->s1, g);
	sb_printf(b, "Chat with %s established.\n  %s's key: %s\n", ev->peer,
		  ev->peer, g);
	if (ev->flag)
		sb_printf(b, "  First contact: the key was recorded. Compare "
			  "this fingerprint with %s in person or by phone.\n",
			  ev->peer);
}

static void fmt_keychange(struct sbuf *b, const struct cev *ev)
{
	char g1[FPR_TEXT_LEN + 1], g2[FPR_TEXT_LEN + 1];

	fingerprint_group(ev->s1, g1);
	fingerprint_group(ev->s2, g2);
	sb_printf(b, "WARNING: %s's key has CHANGED.\n  recorded: %s\n  "
		  "now:      %s\nThe chat attempt was stopped and nothing was "
		  "sent. Someone may be impersonating %s. Check the new "
		  "fingerprint with %s out of band, then /trust %s.\n",
		  ev->peer, g1, g2, ev->peer, ev->peer, ev->peer);
}

/* END 6: the peer's client stopped because it does not know our key (s1:
 * our name, s2: our fingerprint). */
static void fmt_key_unknown(struct sbuf *b, const struct cev *ev)
{
	char g[FPR_TEXT_LEN + 1];

	fingerprint_group(ev->s2, g);
	sb_printf(b, "%s's client stopped the chat: it does not know your "
		  "new key yet.\n  Your key: %s\n  %s must compare it with "
		  "you (in person or by phone), then /trust %s.\n  Tell %s "
		  "by another channel.\n",
		  ev->peer, g, ev->peer, ev->s1, ev->peer);
}

/* "2026-12-01 14:03", local time. */
static void sb_date(struct sbuf *b, uint64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;
	char d[32];

	if (!localtime_r(&tt, &tm) ||
	    strftime(d, sizeof(d), "%Y-%m-%d %H:%M", &tm) == 0)
		snprintf(d, sizeof(d), "%llu", (unsigned long long)t);
	sb_printf(b, "%s", d);
}

/* A request; one the server kept while we were away says when. */
static void fmt_request(struct sbuf *b, const struct cev *ev)
{
	if (ev->when) {
		sb_printf(b, "%s asked to talk on ", ev->peer);
		sb_date(b, ev->when);
		sb_printf(b, " while you were away");
	} else {
		sb_printf(b, "%s asks to talk", ev->peer);
	}
	sb_printf(b, ": /accept %s or /refuse %s\n", ev->peer, ev->peer);
}

static void fmt_v2(struct sbuf *b, const struct cev *ev)
{
	switch (ev->kind) {
	case CEV_WAITING:
		/* WAITING says no expiry: the server's limit is its own. */
		sb_printf(b, "%s is offline: your %s waits for %s's next "
			  "login (for a limited time).\n", ev->peer,
			  ev->reason == OP_ACCEPT ? "acceptance" : "request",
			  ev->peer);
		break;
	case CEV_CONV:
		sb_printf(b, "Conversation with %s (since ", ev->peer);
		sb_date(b, ev->when);
		sb_printf(b, "): %s is %s.\n", ev->peer,
			  ev->flag ? "online" : "offline");
		break;
	case CEV_PRESENCE:
		sb_printf(b, "%s is %s.\n", ev->peer,
			  ev->flag ? "online" : "offline");
		break;
	case CEV_NOTSENT:
		if (ev->code == ERR_OFFLINE)
			sb_printf(b, "%s is offline: your message #%u was not "
				  "sent.\n", ev->peer, ev->id);
		else if (ev->code >= ERR_QUOTA && ev->code <= ERR_STORE_FAILED)
			sb_printf(b, "Your message #%u to %s was not stored: "
				  "%s.\n", ev->id, ev->peer,
				  ev->code == ERR_QUOTA ? "their queue is full" :
				  ev->code == ERR_STORE_FULL ?
				  "the server's store is full" :
				  "the server could not store it");
		else
			sb_printf(b, "The server refused your message #%u to "
				  "%s (error %u).\n", ev->id, ev->peer,
				  ev->code);
		break;
	case CEV_EXPIRED:
		if (ev->id)
			sb_printf(b, "Your message #%u to %s", ev->id,
				  ev->peer);
		else
			sb_printf(b, "A message you sent to %s", ev->peer);
		sb_put(b, " (stored ", 9);
		sb_date(b, ev->when);
		sb_printf(b, ") was not delivered: %s did not log in before "
			  "the server's time limit, and it was deleted "
			  "unread.\n", ev->peer);
		break;
	case CEV_DROPPED:
		sb_printf(b, "A message from %s was dropped: %s.\n", ev->peer,
			  e2e_result_str((enum e2e_result)ev->reason));
		break;
	case CEV_RECONNECTING:
		sb_printf(b, "-- Connection lost; reconnecting in %llu s.\n",
			  (unsigned long long)(ev->when + 999) / 1000);
		break;
	default:
		break;
	}
}

/* The server's BYE text when it only repeats the reason, which is said
 * already ("(you logged in elsewhere): logged in elsewhere"). */
static bool bye_repeats(const struct cev *ev)
{
	char t[128];

	if (ev->kind != CEV_BYE || !ev->text_len || ev->text_len >= sizeof(t) ||
	    memchr(ev->text, '\0', ev->text_len))
		return false;
	memcpy(t, ev->text, ev->text_len);
	t[ev->text_len] = '\0';
	return strcasestr(bye_text(ev->reason), t) != NULL;
}

static void fmt_text_event(struct sbuf *b, const struct cev *ev)
{
	if (bye_repeats(ev)) {
		sb_printf(b, "The server ended the session (%s).\n",
			  bye_text(ev->reason));
		return;
	}
	if (ev->kind == CEV_ERROR && ev->code == 0)
		sb_printf(b, "error: ");
	else if (ev->kind == CEV_ERROR && ev->cmd && ev->cmd[0])
		sb_printf(b, "%s: server error %u: ", ev->cmd, ev->code);
	else if (ev->kind == CEV_ERROR)
		sb_printf(b, "server error %u: ", ev->code);
	else if (ev->kind == CEV_BYE)
		sb_printf(b, "The server ended the session (%s)%s",
			  bye_text(ev->reason), ev->text_len ? ": " : "");
	else if (ev->kind == CEV_NOTICE)
		sb_printf(b, "-- ");
	sb_untrusted(b, ev->text, ev->text_len, "   ");
	sb_put(b, ev->kind == CEV_BYE && !ev->text_len ? ".\n" : "\n", 
	       ev->kind == CEV_BYE && !ev->text_len ? 2 : 1);
}

/* Our message: "[#3 to bob] text"; typed while there is no connection,
 * "[#3 to bob, typed] text", then "[#3 sent to bob]" when it goes. */
static void fmt_sent(struct sbuf *b, const struct cev *ev)
{
	if (ev->kind == CEV_SENT && ev->flag) {
		sb_printf(b, "[#%u sent to %s]\n", ev->id, ev->peer);
		return;
	}
	sb_printf(b, "[#%u to %s%s] ", ev->id, ev->peer,
		  ev->kind == CEV_TYPED ? ", typed" : "");
	sb_untrusted(b, ev->text, ev->text_len, "    ");
	sb_put(b, "\n", 1);
}

static void fill(struct sbuf *b, const struct cev *ev)
{
	switch (ev->kind) {
	case CEV_READY:
		sb_printf(b, "Logged in as %s. ", ev->peer);
		sb_users(b, ev->s1);
		sb_printf(b, "Type /help for the commands.\n");
		break;
	case CEV_USERS:
		sb_users(b, ev->s1);
		break;
	case CEV_REQUEST:
		fmt_request(b, ev);
		break;
	case CEV_CHAT:
		fmt_chat(b, ev);
		break;
	case CEV_REFUSED:
		fmt_refused(b, ev->reason, ev->peer);
		break;
	case CEV_MSG:
		sb_printf(b, "<%s> ", ev->peer);
		sb_untrusted(b, ev->text, ev->text_len, "    ");
		sb_put(b, "\n", 1);
		break;
	case CEV_SENT:
	case CEV_TYPED:
		fmt_sent(b, ev);
		break;
	case CEV_DELIVERED:
		sb_printf(b, "[#%u delivered to %s]\n", ev->id, ev->peer);
		break;
	case CEV_STORED:
		sb_printf(b, "[#%u stored for %s]\n", ev->id, ev->peer);
		break;
	case CEV_ENDED:
		if (ev->reason == END_KEY_UNKNOWN && ev->s1 && ev->s2)
			fmt_key_unknown(b, ev);
		else
			fmt_ended(b, ev->reason, ev->peer);
		break;
	case CEV_KEYCHANGE:
		fmt_keychange(b, ev);
		break;
	case CEV_INFO:
		sb_put(b, ev->text, ev->text_len);
		sb_put(b, "\n", 1);
		break;
	case CEV_CONV:
	case CEV_PRESENCE:
	case CEV_WAITING:
	case CEV_NOTSENT:
	case CEV_EXPIRED:
	case CEV_DROPPED:
	case CEV_RECONNECTING:
		fmt_v2(b, ev);
		break;
	default:
		fmt_text_event(b, ev);
		break;
	}
}

size_t ui_format(const struct cev *ev, char **text)
{
	struct sbuf b;

	*text = NULL;
	if (ev->kind >= CEV_KIND_COUNT || ev->kind == CEV_GONE)
		return 0;
	b.cap = 2048 + 12 * ev->text_len + (ev->s1 ? 2 * strlen(ev->s1) : 0);
	b.p = malloc(b.cap);
	if (!b.p)
		return 0;
	b.len = 0;
	b.p[0] = '\0';
	fill(&b, ev);
	*text = b.p;
	return b.len;
}
