/* escape.c - \t, \n and \\ in batch text, both ways. */
#include "escape.h"

size_t text_escape(const char *text, size_t len, char *out)
{
	size_t i, o = 0;

	for (i = 0; i < len; i++) {
		switch (text[i]) {
		case '\t':
			out[o++] = '\\';
			out[o++] = 't';
			break;
		case '\n':
			out[o++] = '\\';
			out[o++] = 'n';
			break;
		case '\\':
			out[o++] = '\\';
			out[o++] = '\\';
			break;
		default:
			out[o++] = text[i];
			break;
		}
	}
	out[o] = '\0';
	return o;
}

size_t text_unescape(const char *in, size_t len, char *out)
{
	size_t i, o = 0;

	for (i = 0; i < len; i++) {
		if (in[i] == '\\' && i + 1 < len) {
			char next = in[i + 1];

			if (next == 't' || next == 'n' || next == '\\') {
				out[o++] = next == 't' ? '\t' :
					   next == 'n' ? '\n' : '\\';
				i++;
				continue;
			}
		}
		out[o++] = in[i];
	}
	out[o] = '\0';
	return o;
}
