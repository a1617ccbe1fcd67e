/*
 * resolv.conf parsing (see resolv.h). Pure layer: the caller reads the
 * file; this only looks at its bytes. Later "search" or "domain" lines
 * replace earlier ones, as in glibc.
 */
#include "resolv.h"

#include <netinet/in.h>
#include <arpa/inet.h>

#include <string.h>

/* Copies the next blank-separated word of [p, end) to w (NUL-terminated,
 * truncated to cap - 1); returns the position after it. */
static const char *
word(const char *p, const char *end, char *w, size_t cap)
{
	size_t n = 0;

	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	while (p < end && *p != ' ' && *p != '\t') {
		if (n + 1 < cap)
			w[n++] = *p;
		p++;
	}
	w[n] = '\0';
	return p;
}

static void
add_ns(struct resolv *r, const char *s)
{
	struct sockaddr_in *s4;
	struct sockaddr_in6 *s6;
	char host[64];
	char *pct;

	if (r->nns == RESOLV_MAX_NS)
		return;
	memset(&r->ns[r->nns], 0, sizeof(r->ns[r->nns]));
	s4 = (struct sockaddr_in *)&r->ns[r->nns];
	s6 = (struct sockaddr_in6 *)&r->ns[r->nns];
	if (inet_pton(AF_INET, s, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(53);
		r->ns_len[r->nns++] = sizeof(*s4);
		return;
	}
	if (strlen(s) >= sizeof(host))
		return;
	memcpy(host, s, strlen(s) + 1);
	if ((pct = strchr(host, '%')) != NULL)
		*pct = '\0';	/* scope ids are not supported: drop them */
	if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(53);
		r->ns_len[r->nns++] = sizeof(*s6);
	}
}

void
resolv_parse(const char *text, size_t len, struct resolv *r)
{
	const char *p = text, *end = text + len;
	char key[16], w[DNS_NAME_MAX + 2];

	memset(r, 0, sizeof(*r));
	r->ndots = 1;
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *q;

		if (eol == NULL)
			eol = end;
		q = word(p, eol, key, sizeof(key));
		if (strcmp(key, "nameserver") == 0) {
			(void)word(q, eol, w, sizeof(w));
			add_ns(r, w);
		} else if (strcmp(key, "search") == 0 || strcmp(key, "domain") == 0) {
			r->nsearch = 0;
			while (q < eol && r->nsearch < RESOLV_MAX_SEARCH) {
				q = word(q, eol, w, sizeof(w));
				if (w[0] == '\0' || w[0] == '#' || w[0] == ';')
					break;
				if (dns_name_from_text(w, r->search[r->nsearch],
				    &r->search_len[r->nsearch]) == 0 &&
				    r->search_len[r->nsearch] > 1)
					r->nsearch++;
			}
		} else if (strcmp(key, "options") == 0) {
			while (q < eol) {
				q = word(q, eol, w, sizeof(w));
				if (strncmp(w, "ndots:", 6) == 0) {
					unsigned v = 0;
					const char *d = w + 6;

					while (*d >= '0' && *d <= '9' && v < 100)
						v = v * 10 + (unsigned)(*d++ - '0');
					r->ndots = v > 15 ? 15 : v;
				}
			}
		}
		p = eol + 1;
	}
}
