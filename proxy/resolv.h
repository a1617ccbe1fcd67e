/*
 * /etc/resolv.conf, the parts the proxy needs: the nameservers (where
 * local-zone queries go when the original destination is unknown) and the
 * search domains (which are local zones in transparent use). Pure: parses
 * text the caller read.
 */
#ifndef PROXY_RESOLV_H
#define PROXY_RESOLV_H

#include <sys/socket.h>

#include <stddef.h>
#include <stdint.h>

#include "dns.h"

#define RESOLV_MAX_NS		3
#define RESOLV_MAX_SEARCH	8

struct resolv {
	struct sockaddr_storage	ns[RESOLV_MAX_NS];	/* port 53 */
	socklen_t		ns_len[RESOLV_MAX_NS];
	size_t			nns;
	uint8_t			search[RESOLV_MAX_SEARCH][DNS_NAME_MAX];
	size_t			search_len[RESOLV_MAX_SEARCH];
	size_t			nsearch;
	unsigned		ndots;
};

/* Parses text (need not be NUL-terminated). Unknown lines, bad addresses
 * and bad names are skipped, as the C library does. Never fails. */
void	resolv_parse(const char *text, size_t len, struct resolv *out);

#endif
