/*
 * The operations HTTP server: a small HTTP/1.1 server on the proxy's own
 * event loop serving /metrics, /livez and /readyz (with ?verbose). What a
 * page says is the caller's business (a render callback); this module owns
 * the listener, a bounded client table with deadlines, request parsing and
 * the answer. One request per connection (no keep-alive), so a slow or
 * hostile HTTP client can never stall DNS. Ops layer; http_parse() is pure.
 */
#ifndef PROXY_HTTP_H
#define PROXY_HTTP_H

#include <sys/socket.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stat.h"

struct http;
struct loop;

#define HTTP_REQ_MAX	4096	/* request head, bytes */

enum http_method {
	HTTP_M_OTHER = 0,	/* anything else: 405 */
	HTTP_M_GET,
	HTTP_M_HEAD,
};

/* A parsed request head; path and query borrow from the parsed bytes. */
struct http_req {
	enum http_method method;
	const char	*path;		/* borrowed: the input, not terminated */
	size_t		 path_len;
	const char	*query;		/* borrowed: after '?', NULL if none */
	size_t		 query_len;
};

/*
 * Parses a request head from buf (len bytes, need not be terminated).
 * Returns 0 when the head is complete (a blank line ends it) and well
 * formed, -EAGAIN when more bytes are needed, -E_MALFORMED when it can
 * never become a valid request (a NUL byte or a control character before
 * the blank line, no target, a target not starting with '/', no HTTP
 * version). Pure: no allocation, no I/O.
 */
int	http_parse(const char *buf, size_t len, struct http_req *out);

enum http_page {
	HTTP_PAGE_METRICS = 0,
	HTTP_PAGE_LIVEZ,	/* also /healthz */
	HTTP_PAGE_READYZ,
};

/*
 * Renders page into out (cap bytes), setting *len. Returns the HTTP status
 * to answer with (200, 503), or a negative value if the page could not be
 * rendered (answered 503 "render failed").
 */
typedef int	(*http_render_fn)(void *arg, enum http_page page, bool verbose,
		    char *out, size_t cap, size_t *len);

struct http_stats {
	uint64_t	requests;	/* requests answered (any status) */
	uint64_t	dropped;	/* too slow, too big, evicted or refused */
	uint64_t	bad;		/* answered 400 */
};

/* Listens on addr, or on fd when it is >= 0 (a listening socket bound
 * there, taken over from a predecessor: owned from here on). NULL, with
 * *err set to -errno, on failure (fd closed). */
struct http	*http_new(struct loop *, const struct sockaddr *, socklen_t,
		    int fd, http_render_fn render, void *arg, int *err);
void		 http_free(struct http *);
/* The listening socket (to hand over), or -1 once stopped. */
int		 http_listen_fd(const struct http *);
/* Stops accepting and closes the listening socket; requests being
 * answered are finished. A successor took the socket over. */
void		 http_stop_listening(struct http *);
const struct http_stats *http_stats(const struct http *);
/* Describes struct http_stats for metrics. */
extern const struct stat_table http_stat_table;
/* The most clients held at once (for the descriptor budget). */
unsigned	 http_max_clients(void);

/*
 * The healthcheck client: GET url (http://HOST:PORT/PATH, HOST an IP
 * address), waiting at most timeout_ms. Returns the HTTP status, or
 * -errno (-ECONNREFUSED when nothing listens, -ETIMEDOUT when nothing
 * answered in time) or -E_MALFORMED.
 */
int		 http_get(const char *url, unsigned timeout_ms);

#endif
