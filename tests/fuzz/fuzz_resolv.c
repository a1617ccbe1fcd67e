/*
 * libFuzzer target: resolv.conf text through resolv_parse, which never
 * fails. Whatever it keeps must be usable: at most RESOLV_MAX_NS
 * nameservers, each an IPv4 or IPv6 address on port 53; at most
 * RESOLV_MAX_SEARCH search names, each a valid wire name other than the
 * root that prints as text; ndots at most 15. The same text with a
 * trailing newline, and parsed from an exact-size copy, must give the same
 * result (no read past len, no dependence on a terminator).
 */
#include <sys/socket.h>

#include <netinet/in.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/dns.h"
#include "proxy/resolv.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define CHECK(cond) do { if (!(cond)) abort(); } while (0)

static void
check_resolv(const struct resolv *r)
{
	char text[4 * DNS_NAME_MAX + 2];
	size_t i;

	CHECK(r->nns <= RESOLV_MAX_NS);
	for (i = 0; i < r->nns; i++) {
		const struct sockaddr_storage *ss = &r->ns[i];

		if (ss->ss_family == AF_INET) {
			const struct sockaddr_in *sin =
			    (const struct sockaddr_in *)ss;

			CHECK(r->ns_len[i] == sizeof(*sin));
			CHECK(ntohs(sin->sin_port) == 53);
		} else {
			const struct sockaddr_in6 *sin6 =
			    (const struct sockaddr_in6 *)ss;

			CHECK(ss->ss_family == AF_INET6);
			CHECK(r->ns_len[i] == sizeof(*sin6));
			CHECK(ntohs(sin6->sin6_port) == 53);
		}
	}
	CHECK(r->nsearch <= RESOLV_MAX_SEARCH);
	for (i = 0; i < r->nsearch; i++) {
		size_t len = r->search_len[i];

		CHECK(len > 1 && len <= DNS_NAME_MAX);
		CHECK(r->search[i][len - 1] == 0);
		CHECK(dns_name_labels(r->search[i], len) >= 1);
		CHECK(dns_name_to_text(r->search[i], len, text,
		    sizeof(text)) == 0);
	}
	CHECK(r->ndots <= 15);
}

static bool
same(const struct resolv *a, const struct resolv *b)
{
	size_t i;

	if (a->nns != b->nns || a->nsearch != b->nsearch ||
	    a->ndots != b->ndots)
		return false;
	for (i = 0; i < a->nns; i++)
		if (a->ns_len[i] != b->ns_len[i] ||
		    memcmp(&a->ns[i], &b->ns[i], a->ns_len[i]) != 0)
			return false;
	for (i = 0; i < a->nsearch; i++)
		if (a->search_len[i] != b->search_len[i] ||
		    memcmp(a->search[i], b->search[i], a->search_len[i]) != 0)
			return false;
	return true;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct resolv r1, r2;
	char *nl;

	if (size > 65536)
		return 0;
	resolv_parse((const char *)data, size, &r1);
	check_resolv(&r1);
	if ((nl = malloc(size + 1)) == NULL)
		return 0;
	if (size > 0)
		memcpy(nl, data, size);
	nl[size] = '\n';
	resolv_parse(nl, size + 1, &r2);
	check_resolv(&r2);
	CHECK(same(&r1, &r2));
	free(nl);
	return 0;
}
