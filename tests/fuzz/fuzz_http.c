/*
 * libFuzzer target: an HTTP request head through http_parse (the
 * operations endpoint's parser). The verdict is one of the three the header
 * names; a complete head's path starts with '/', holds no space, and path
 * and query lie inside the input, the query just after the '?'. The parser
 * sees a head grow byte by byte as a client sends it: once a prefix gets a
 * verdict other than -EAGAIN, every longer input gets the same verdict and
 * the same fields; a whole input still waiting means every prefix was.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/errors.h"
#include "proxy/http.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define CHECK(cond) do { if (!(cond)) abort(); } while (0)
#define PREFIXES_MAX	600	/* prefix lengths tried, from the start */

static void
check_req(const char *buf, size_t len, const struct http_req *r)
{
	CHECK(r->method == HTTP_M_OTHER || r->method == HTTP_M_GET ||
	    r->method == HTTP_M_HEAD);
	CHECK(r->path != NULL && r->path >= buf && r->path_len >= 1 &&
	    r->path + r->path_len <= buf + len);
	CHECK(r->path[0] == '/');
	CHECK(memchr(r->path, ' ', r->path_len) == NULL);
	CHECK(memchr(r->path, '?', r->path_len) == NULL);
	if (r->query != NULL) {
		CHECK(r->query == r->path + r->path_len + 1);
		CHECK(r->query[-1] == '?');
		CHECK(r->query + r->query_len <= buf + len);
		CHECK(memchr(r->query, ' ', r->query_len) == NULL);
	} else
		CHECK(r->query_len == 0);
	if (r->method == HTTP_M_GET)
		CHECK(memcmp(buf, "GET ", 4) == 0);
	if (r->method == HTTP_M_HEAD)
		CHECK(memcmp(buf, "HEAD ", 5) == 0);
}

static bool
same_req(const struct http_req *a, const struct http_req *b)
{
	return a->method == b->method && a->path == b->path &&
	    a->path_len == b->path_len && a->query == b->query &&
	    a->query_len == b->query_len;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_req whole, part;
	const char *buf;
	char *copy;
	size_t n;
	int rc, prc;

	if (size > 2 * HTTP_REQ_MAX)
		return 0;
	/* An exact-size copy: ASan sees any read past len. */
	if ((copy = malloc(size > 0 ? size : 1)) == NULL)
		return 0;
	if (size > 0)
		memcpy(copy, data, size);
	buf = copy;
	rc = http_parse(buf, size, &whole);
	CHECK(rc == 0 || rc == -EAGAIN || rc == -E_MALFORMED);
	if (rc == 0)
		check_req(buf, size, &whole);
	for (n = 0; n <= size && n < PREFIXES_MAX; n++) {
		prc = http_parse(buf, n, &part);
		CHECK(prc == 0 || prc == -EAGAIN || prc == -E_MALFORMED);
		if (rc == -EAGAIN)
			CHECK(prc == -EAGAIN);
		if (prc == -EAGAIN)
			continue;
		CHECK(prc == rc);
		if (prc == 0) {
			check_req(buf, n, &part);
			CHECK(same_req(&part, &whole));
		}
	}
	free(copy);
	return 0;
}
