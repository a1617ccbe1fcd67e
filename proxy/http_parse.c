/*
 * The HTTP request-head parser (see http.h). Pure layer: it is fuzzed and
 * unit-tested on its own. Only what the operations endpoint needs: the
 * method, the target split into path and query, and where the head ends.
 * Bytes that no valid head contains (NUL, other control characters) make
 * the request bad at once, wherever they are, so a client cannot hide the
 * end of its request behind them.
 */
#include "http.h"

#include <errno.h>
#include <string.h>

#include "errors.h"

static bool
bad_byte(unsigned char c)
{
	return (c < 0x20 && c != '\r' && c != '\n' && c != '\t') || c == 0x7f;
}

int
http_parse(const char *buf, size_t len, struct http_req *out)
{
	const char *line, *sp1, *sp2, *q;
	size_t i, line_len;
	bool done = false;

	memset(out, 0, sizeof(*out));
	for (i = 0; i < len; i++) {
		if (bad_byte((unsigned char)buf[i]))
			return -E_MALFORMED;
		if (buf[i] != '\n')
			continue;
		/* A blank line: "\n\n" or "\n\r\n". */
		if (i >= 1 && buf[i - 1] == '\n') {
			done = true;
			break;
		}
		if (i >= 2 && buf[i - 1] == '\r' && buf[i - 2] == '\n') {
			done = true;
			break;
		}
	}
	if (!done)
		return -EAGAIN;
	/* The request line: METHOD SP TARGET SP VERSION. */
	line = buf;
	line_len = (size_t)((const char *)memchr(buf, '\n', len) - buf);
	if (line_len > 0 && line[line_len - 1] == '\r')
		line_len--;
	if ((sp1 = memchr(line, ' ', line_len)) == NULL)
		return -E_MALFORMED;
	if ((size_t)(sp1 - line) == 3 && memcmp(line, "GET", 3) == 0)
		out->method = HTTP_M_GET;
	else if ((size_t)(sp1 - line) == 4 && memcmp(line, "HEAD", 4) == 0)
		out->method = HTTP_M_HEAD;
	else
		out->method = HTTP_M_OTHER;
	sp1++;
	if ((sp2 = memchr(sp1, ' ', line_len - (size_t)(sp1 - line))) == NULL ||
	    sp2 == sp1 || *sp1 != '/')
		return -E_MALFORMED;
	if ((size_t)(line + line_len - (sp2 + 1)) < 5 ||
	    memcmp(sp2 + 1, "HTTP/", 5) != 0)
		return -E_MALFORMED;
	out->path = sp1;
	out->path_len = (size_t)(sp2 - sp1);
	if ((q = memchr(sp1, '?', out->path_len)) != NULL) {
		out->query = q + 1;
		out->query_len = (size_t)(sp2 - q - 1);
		out->path_len = (size_t)(q - sp1);
	}
	return 0;
}
