/*
 * Routing (see route.h). Pure: reads the configuration and resolv.conf it
 * was given, writes nothing but its own zone list.
 */
#include "route.h"

#include <netinet/in.h>

#include <stdio.h>
#include <string.h>

const char *const route_capture_names[QC_N] = {
	"direct", "resolv_conf", "loopback", "private", "other", "unknown",
};

/*
 * Reverse zones of address ranges that never leave a cluster or a host:
 * RFC 1918, loopback, link-local, ULA and IPv6 link-local (and, added in a
 * loop, the shared 100.64/10). Queries for them must not reach a public
 * resolver.
 */
static const char *const private_reverse[] = {
	"10.in-addr.arpa", "168.192.in-addr.arpa", "127.in-addr.arpa",
	"254.169.in-addr.arpa", "16.172.in-addr.arpa", "17.172.in-addr.arpa",
	"18.172.in-addr.arpa", "19.172.in-addr.arpa", "20.172.in-addr.arpa",
	"21.172.in-addr.arpa", "22.172.in-addr.arpa", "23.172.in-addr.arpa",
	"24.172.in-addr.arpa", "25.172.in-addr.arpa", "26.172.in-addr.arpa",
	"27.172.in-addr.arpa", "28.172.in-addr.arpa", "29.172.in-addr.arpa",
	"30.172.in-addr.arpa", "31.172.in-addr.arpa", "c.f.ip6.arpa",
	"d.f.ip6.arpa", "8.e.f.ip6.arpa", "9.e.f.ip6.arpa", "a.e.f.ip6.arpa",
	"b.e.f.ip6.arpa",
};

static uint8_t
fold(uint8_t ch)
{
	return ch >= 'A' && ch <= 'Z' ? (uint8_t)(ch + ('a' - 'A')) : ch;
}

/* FNV-1a of a wire name folded to lower case. */
static uint32_t
name_hash(const uint8_t *p, size_t n)
{
	uint32_t h = 2166136261u;
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= fold(p[i]);
		h *= 16777619u;
	}
	return h;
}

static bool
name_equal(const uint8_t *a, const uint8_t *b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (fold(a[i]) != fold(b[i]))
			return false;
	return true;
}

/* The zone equal to name (wire, len bytes), or NULL. */
static const struct cfg_zone *
zone_find(const struct route *r, const uint8_t *name, size_t len)
{
	uint32_t i = name_hash(name, len) & (ROUTE_ZT - 1);

	for (; r->zt[i] != 0; i = (i + 1) & (ROUTE_ZT - 1)) {
		const struct cfg_zone *z = &r->zones[r->zt[i] - 1];

		if (z->len == len && name_equal(z->name, name, len))
			return z;
	}
	return NULL;
}

static void
add_zone(struct route *r, const uint8_t *name, size_t len)
{
	uint32_t i;

	if (r->nzones == ROUTE_MAX_ZONES || len == 0 || len > DNS_NAME_MAX ||
	    (dns_name_labels(name, len) == 0 && len != 1) ||
	    zone_find(r, name, len) != NULL)
		return;
	memcpy(r->zones[r->nzones].name, name, len);
	r->zones[r->nzones++].len = len;
	i = name_hash(name, len) & (ROUTE_ZT - 1);
	while (r->zt[i] != 0)
		i = (i + 1) & (ROUTE_ZT - 1);
	r->zt[i] = (uint16_t)r->nzones;
}

void
route_init(struct route *r, const struct config *cfg, const struct resolv *rc)
{
	uint8_t wire[DNS_NAME_MAX];
	size_t i, wl;

	memset(r, 0, sizeof(*r));
	r->cfg = cfg;
	r->rc = rc;
	for (i = 0; i < cfg->nzones; i++)
		add_zone(r, cfg->zones[i].name, cfg->zones[i].len);
	if (!cfg->transparent)
		return;
	for (i = 0; i < rc->nsearch; i++)
		add_zone(r, rc->search[i], rc->search_len[i]);
	for (i = 0; i < sizeof(private_reverse) / sizeof(private_reverse[0]); i++)
		if (dns_name_from_text(private_reverse[i], wire, &wl) == 0)
			add_zone(r, wire, wl);
	/* 100.64.0.0/10, shared address space (RFC 6598). */
	for (i = 64; i < 128; i++) {
		char z[32];

		if (snprintf(z, sizeof(z), "%zu.100.in-addr.arpa", i) > 0 &&
		    dns_name_from_text(z, wire, &wl) == 0)
			add_zone(r, wire, wl);
	}
}

bool
route_is_local(const struct route *r, const struct dns_info *q)
{
	const uint8_t *n = q->qname;
	size_t len = q->qname_len, pos = 0;
	unsigned labels = 0;

	if (len == 0 || len > DNS_NAME_MAX)
		return false;
	/* Each suffix that starts at a label, the root last. */
	for (;;) {
		if (r->nzones > 0 && zone_find(r, n + pos, len - pos) != NULL)
			return true;
		if (pos >= len || n[pos] == 0)
			break;
		labels++;
		pos += (size_t)n[pos] + 1;
	}
	return r->cfg->transparent && labels == 1;
}

enum route_kind
route_decide(const struct route *r, const struct dns_info *q, bool from_self)
{
	if (from_self)
		return ROUTE_LOOP;
	return route_is_local(r, q) ? ROUTE_LOCAL : ROUTE_DOT;
}

bool
route_addr_equal(const struct sockaddr *a, const struct sockaddr *b)
{
	if (a->sa_family != b->sa_family)
		return false;
	if (a->sa_family == AF_INET) {
		const struct sockaddr_in *x = (const struct sockaddr_in *)(const void *)a;
		const struct sockaddr_in *y = (const struct sockaddr_in *)(const void *)b;

		return x->sin_port == y->sin_port &&
		    x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (a->sa_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)(const void *)a;
		const struct sockaddr_in6 *y = (const struct sockaddr_in6 *)(const void *)b;

		return x->sin6_port == y->sin6_port &&
		    memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0;
	}
	return false;
}

bool
route_is_self(const struct route *r, const struct sockaddr *sa)
{
	size_t i;

	for (i = 0; i < r->cfg->nlisten; i++)
		if (route_addr_equal(sa, (const struct sockaddr *)
		    &r->cfg->listen[i].ss))
			return true;
	return false;
}

static bool
host_equal(const struct sockaddr *a, const struct sockaddr *b)
{
	if (a->sa_family != b->sa_family)
		return false;
	if (a->sa_family == AF_INET)
		return ((const struct sockaddr_in *)(const void *)a)->sin_addr.s_addr ==
		    ((const struct sockaddr_in *)(const void *)b)->sin_addr.s_addr;
	return a->sa_family == AF_INET6 &&
	    memcmp(&((const struct sockaddr_in6 *)(const void *)a)->sin6_addr,
	    &((const struct sockaddr_in6 *)(const void *)b)->sin6_addr, 16) == 0;
}

enum route_capture
route_classify(const struct route *r, const struct sockaddr *sa)
{
	size_t i;

	if (route_is_self(r, sa))
		return QC_DIRECT;
	for (i = 0; i < r->rc->nns; i++)
		if (host_equal(sa, (const struct sockaddr *)&r->rc->ns[i]))
			return QC_RESOLV;
	if (sa->sa_family == AF_INET) {
		uint32_t a = ntohl(((const struct sockaddr_in *)(const void *)sa)->sin_addr.s_addr);

		if ((a >> 24) == 127)
			return QC_LOOPBACK;
		if ((a >> 24) == 10 || (a >> 20) == 0xac1 || (a >> 16) == 0xc0a8 ||
		    (a >> 16) == 0xa9fe || (a >> 22) == (100u << 2 | 1))
			return QC_PRIVATE;
		return QC_OTHER;
	}
	if (sa->sa_family == AF_INET6) {
		const uint8_t *b = ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr;
		static const uint8_t lo[16] = { [15] = 1 };

		if (memcmp(b, lo, 16) == 0)
			return QC_LOOPBACK;
		if ((b[0] & 0xfe) == 0xfc || (b[0] == 0xfe && (b[1] & 0xc0) == 0x80))
			return QC_PRIVATE;
		return QC_OTHER;
	}
	return QC_UNKNOWN;
}
