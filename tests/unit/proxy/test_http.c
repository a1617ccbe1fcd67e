/*
 * Unit tests for http_parse(): complete and incomplete heads, the method,
 * path and query split, and the bytes that make a request bad at once
 * (a NUL before the blank line must not wait for more input).
 */
#include "proxy/http.h"

#include <errno.h>
#include <string.h>

#include "proxy/errors.h"
#include "tests/unit/tap.h"

static int
parse(const char *s, struct http_req *r)
{
	return http_parse(s, strlen(s), r);
}

int
main(void)
{
	struct http_req r;
	static const char nul[] = "GET /metrics HTTP/1.1\r\nX: a\0b\r\n";
	static const char nul2[] = "GET /live\0z HTTP/1.1\r\n\r\n";
	size_t i, n;
	const char *full = "GET /readyz?verbose HTTP/1.1\r\nHost: x\r\n\r\n";

	is(parse("GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n", &r), 0, "complete CRLF head");
	is(r.method, HTTP_M_GET, "GET");
	ok(r.path_len == 8 && memcmp(r.path, "/metrics", 8) == 0, "path /metrics");
	ok(r.query == NULL, "no query");
	is(parse("HEAD /livez HTTP/1.0\n\n", &r), 0, "complete LF head");
	is(r.method, HTTP_M_HEAD, "HEAD");
	is(parse(full, &r), 0, "head with a query");
	ok(r.path_len == 7 && memcmp(r.path, "/readyz", 7) == 0, "path before ?");
	ok(r.query_len == 7 && memcmp(r.query, "verbose", 7) == 0, "query after ?");
	is(parse("POST /metrics HTTP/1.1\r\n\r\n", &r), 0, "POST parses");
	is(r.method, HTTP_M_OTHER, "POST is another method (405)");

	n = strlen(full);
	for (i = 0; i < n; i++)
		if (http_parse(full, i, &r) != -EAGAIN)
			break;
	is(i, n, "every strict prefix of a head wants more bytes");

	is(http_parse(nul, sizeof(nul) - 1, &r), -E_MALFORMED,
	    "NUL in a header before the blank line: bad at once");
	is(http_parse(nul2, sizeof(nul2) - 1, &r), -E_MALFORMED,
	    "NUL in the target: bad");
	is(http_parse("GET /\0", 6, &r), -E_MALFORMED,
	    "NUL in an incomplete head: bad, not more bytes");
	is(parse("GET /x HTTP/1.1\r\nA:\x01\r\n\r\n", &r), -E_MALFORMED,
	    "control character: bad");
	is(parse("GET /metrics\r\n\r\n", &r), -E_MALFORMED, "no version: bad");
	is(parse("GET metrics HTTP/1.1\r\n\r\n", &r), -E_MALFORMED,
	    "target without /: bad");
	is(parse("GET  HTTP/1.1\r\n\r\n", &r), -E_MALFORMED, "empty target: bad");
	is(parse("GET\r\n\r\n", &r), -E_MALFORMED, "request line without spaces: bad");
	is(parse("GET / FTP/1.1\r\n\r\n", &r), -E_MALFORMED, "not HTTP: bad");
	is(parse("\r\n\r\n", &r), -E_MALFORMED, "blank request line: bad");
	is(http_parse("", 0, &r), -EAGAIN, "nothing yet: more bytes");
	return tap_done();
}
