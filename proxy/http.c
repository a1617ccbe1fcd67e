/*
 * Operations HTTP server (see http.h). Ops layer. Owns the listener and
 * its client table. Requests are read into a fixed buffer under a 5 s
 * deadline and parsed by http_parse(); the answer is written whole, then
 * the connection closes (no keep-alive), so a client costs at most one slot
 * for at most the deadline.
 *
 * A connection that sends nothing does not even reach accept() for its
 * first H_DEFER_S seconds (TCP_DEFER_ACCEPT): the kernel holds it, so a
 * flood of idle connections cannot fill the table ahead of a probe, whose
 * request comes with its connection.
 *
 * A full table must not cost a health probe its answer. Before a newcomer
 * evicts anyone, every held client is read once more and a complete request
 * is answered on the spot (a probe's request is small and usually already
 * queued); then the oldest client still without a complete request is
 * dropped. A newcomer is read at once too, so a probe that sent its request
 * with the connect is answered in the same wake-up.
 */
#include "http.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "errors.h"
#include "log.h"
#include "loop.h"
#include "sock.h"

#define H_CLIENTS	16
#define H_DEFER_S	5	/* TCP_DEFER_ACCEPT: idle connects wait in the kernel */
#define H_DEADLINE_MS	5000
#define H_METRICS_CAP	(256 * 1024)
#define H_HEALTH_CAP	1024

struct h_client {
	struct http		*h;		/* borrowed: owner */
	int			 fd;		/* -1 when the slot is free */
	struct loop_io		 io;
	struct loop_timer	 deadline;
	uint64_t		 since_ms;
	uint64_t		 seq;		/* accept order, for eviction */
	char			 req[HTTP_REQ_MAX];
	size_t			 req_len;
	char			*out;		/* owned: the response */
	size_t			 out_len, out_off;
};

struct http {
	struct loop		*loop;		/* borrowed */
	http_render_fn		 render;
	void			*arg;		/* borrowed: render's */
	int			 fd;
	struct loop_io		 io;
	uint64_t		 seq;
	struct h_client		 clients[H_CLIENTS];
	struct http_stats	 stats;
};

unsigned
http_max_clients(void)
{
	return H_CLIENTS;
}

const struct http_stats *
http_stats(const struct http *h)
{
	return &h->stats;
}

static void
client_end(struct h_client *c)
{
	struct http *h = c->h;

	if (c->fd == -1)
		return;
	loop_io_stop(h->loop, &c->io);
	loop_timer_stop(h->loop, &c->deadline);
	close(c->fd);
	c->fd = -1;
	free(c->out);
	c->out = NULL;
	c->req_len = 0;
}

static void
client_on_deadline(struct loop_timer *t)
{
	struct h_client *c = t->arg;

	c->h->stats.dropped++;
	client_end(c);
}

/* Writes what it can; ends the client when all is out or on error. */
static void
client_write(struct h_client *c)
{
	ssize_t n;

	while (c->out_off < c->out_len) {
		n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
		    MSG_NOSIGNAL);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN) {
			if (loop_io_set(c->h->loop, &c->io, LOOP_WRITE) < 0)
				client_end(c);
			return;
		}
		if (n <= 0) {
			client_end(c);
			return;
		}
		c->out_off += (size_t)n;
	}
	client_end(c);
}

/* Sets the whole response going (status, type, body unless HEAD). */
static void
respond(struct h_client *c, int status, const char *ctype, const char *body,
    size_t len, bool head)
{
	const char *reason = status == 200 ? "OK" : status == 404 ?
	    "Not Found" : status == 405 ? "Method Not Allowed" :
	    status == 503 ? "Service Unavailable" : "Bad Request";
	size_t blen = head ? 0 : len;
	char hdr[256];
	int n;

	c->h->stats.requests++;
	if (status == 400)
		c->h->stats.bad++;
	n = snprintf(hdr, sizeof(hdr), "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
	    "Content-Length: %zu\r\nConnection: close\r\n\r\n", status, reason,
	    ctype, len);
	if (n < 0 || (size_t)n >= sizeof(hdr) ||
	    (c->out = malloc((size_t)n + blen + 1)) == NULL) {
		client_end(c);
		return;
	}
	memcpy(c->out, hdr, (size_t)n);
	if (blen > 0)
		memcpy(c->out + n, body, blen);
	c->out_len = (size_t)n + blen;
	c->out_off = 0;
	client_write(c);
}

static bool
path_is(const struct http_req *r, const char *p)
{
	size_t n = strlen(p);

	return r->path_len == n && memcmp(r->path, p, n) == 0;
}

static bool
verbose(const struct http_req *r)
{
	return r->query != NULL && memmem(r->query, r->query_len, "verbose", 7)
	    != NULL;
}

static void
handle(struct h_client *c, const struct http_req *r)
{
	struct http *h = c->h;
	bool head = r->method == HTTP_M_HEAD;
	enum http_page page;
	const char *ctype;
	size_t cap, len = 0;
	char *buf;
	int status;

	if (r->method == HTTP_M_OTHER) {
		respond(c, 405, "text/plain", "method not allowed\n", 19, false);
		return;
	}
	if (path_is(r, "/metrics")) {
		page = HTTP_PAGE_METRICS;
		cap = H_METRICS_CAP;
		ctype = "text/plain; version=0.0.4; charset=utf-8";
	} else if (path_is(r, "/livez") || path_is(r, "/healthz")) {
		page = HTTP_PAGE_LIVEZ;
		cap = H_HEALTH_CAP;
		ctype = "text/plain; charset=utf-8";
	} else if (path_is(r, "/readyz")) {
		page = HTTP_PAGE_READYZ;
		cap = H_HEALTH_CAP;
		ctype = "text/plain; charset=utf-8";
	} else {
		respond(c, 404, "text/plain", "not found\n", 10, head);
		return;
	}
	if ((buf = malloc(cap)) == NULL ||
	    (status = h->render(h->arg, page, verbose(r), buf, cap, &len)) < 0) {
		free(buf);
		respond(c, 503, "text/plain", "render failed\n", 14, head);
		return;
	}
	respond(c, status, ctype, buf, len, head);
	free(buf);
}

/*
 * Reads what the client sent and answers once the head is complete or
 * bad. May end the client.
 */
static void
client_read(struct h_client *c)
{
	struct http_req r;
	ssize_t n;
	int e;

	if (c->fd == -1 || c->out != NULL)
		return;
	n = recv(c->fd, c->req + c->req_len, sizeof(c->req) - c->req_len, 0);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		client_end(c);
		return;
	}
	c->req_len += (size_t)n;
	e = http_parse(c->req, c->req_len, &r);
	if (e == 0) {
		handle(c, &r);
		return;
	}
	if (e != -EAGAIN) {
		respond(c, 400, "text/plain", "bad request\n", 12, false);
		return;
	}
	if (c->req_len == sizeof(c->req)) {
		c->h->stats.dropped++;
		respond(c, 400, "text/plain", "request too large\n", 18, false);
	}
}

static void
client_on_io(struct loop_io *io, uint32_t ev)
{
	struct h_client *c = io->arg;

	if (c->out != NULL) {
		if (ev & LOOP_WRITE)
			client_write(c);
		return;
	}
	client_read(c);
}

/*
 * A free slot for a newcomer. When the table is full, answers whatever
 * complete requests the held clients have queued first, then evicts the
 * oldest client still waiting for its request.
 */
static struct h_client *
free_slot(struct http *h)
{
	struct h_client *c, *victim = NULL;
	unsigned i;

	for (i = 0; i < H_CLIENTS; i++)
		if (h->clients[i].fd == -1)
			return &h->clients[i];
	for (i = 0; i < H_CLIENTS; i++)
		client_read(&h->clients[i]);
	for (i = 0; i < H_CLIENTS; i++) {
		c = &h->clients[i];
		if (c->fd == -1)
			return c;
		if (c->out != NULL)
			continue;
		if (victim == NULL || c->seq < victim->seq)
			victim = c;
	}
	if (victim == NULL)
		return NULL;
	h->stats.dropped++;
	client_end(victim);
	return victim;
}

static void
on_accept(struct loop_io *io, uint32_t ev)
{
	struct http *h = io->arg;
	struct h_client *c;
	unsigned k;
	int fd;

	(void)ev;
	for (k = 0; k < 16; k++) {
		fd = accept4(h->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1)
			return;
		if ((c = free_slot(h)) == NULL) {
			/* Every slot is writing an answer: this one waits. */
			h->stats.dropped++;
			close(fd);
			continue;
		}
		c->req_len = 0;
		c->fd = fd;
		c->seq = ++h->seq;
		c->since_ms = loop_now(h->loop);
		if (loop_io_start(h->loop, &c->io, fd, LOOP_READ) < 0) {
			close(fd);
			c->fd = -1;
			continue;
		}
		loop_timer_set(h->loop, &c->deadline, c->since_ms + H_DEADLINE_MS);
		client_read(c);
	}
}

struct http *
http_new(struct loop *loop, const struct sockaddr *sa, socklen_t len,
    int fd, http_render_fn render, void *arg, int *err)
{
	struct http *h;
	unsigned i;

	if ((h = calloc(1, sizeof(*h))) == NULL) {
		if (fd >= 0)
			close(fd);
		*err = -ENOMEM;
		return NULL;
	}
	h->loop = loop;
	h->render = render;
	h->arg = arg;
	for (i = 0; i < H_CLIENTS; i++) {
		struct h_client *c = &h->clients[i];

		c->h = h;
		c->fd = -1;
		c->io.cb = client_on_io;
		c->io.arg = c;
		c->deadline.cb = client_on_deadline;
		c->deadline.arg = c;
	}
	if (fd >= 0)
		h->fd = fd;
	else if ((h->fd = sock_listen(sa, len, SOCK_STREAM)) < 0) {
		*err = h->fd;
		free(h);
		return NULL;
	}
	{
		int defer = H_DEFER_S;

		/* Best effort: without it the eviction below still holds. */
		(void)setsockopt(h->fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer,
		    sizeof(defer));
	}
	h->io.cb = on_accept;
	h->io.arg = h;
	if ((*err = loop_io_start(loop, &h->io, h->fd, LOOP_READ)) < 0) {
		close(h->fd);
		free(h);
		return NULL;
	}
	return h;
}

void
http_free(struct http *h)
{
	unsigned i;

	if (h == NULL)
		return;
	for (i = 0; i < H_CLIENTS; i++)
		client_end(&h->clients[i]);
	http_stop_listening(h);
	free(h);
}

int
http_listen_fd(const struct http *h)
{
	return h->fd;
}

void
http_stop_listening(struct http *h)
{
	if (h->fd < 0)
		return;
	loop_io_stop(h->loop, &h->io);
	close(h->fd);
	h->fd = -1;
}

/* Splits http://HOST:PORT/PATH into an address and a path. */
static int
parse_url(const char *url, struct sockaddr_storage *ss, char *host,
    size_t hostcap, const char **path)
{
	const char *p;
	unsigned port = 0;
	size_t hl;

	memset(ss, 0, sizeof(*ss));
	if (strncmp(url, "http://", 7) != 0)
		return -E_MALFORMED;
	p = url + 7;
	if (*p == '[') {
		const char *e = strchr(p, ']');

		if (e == NULL || (hl = (size_t)(e - p - 1)) >= hostcap)
			return -E_MALFORMED;
		memcpy(host, p + 1, hl);
		host[hl] = '\0';
		p = e + 1;
	} else {
		hl = strcspn(p, ":/");
		if (hl >= hostcap)
			return -E_MALFORMED;
		memcpy(host, p, hl);
		host[hl] = '\0';
		p += hl;
	}
	if (*p == ':')
		for (p++; *p >= '0' && *p <= '9' && port < 65536; p++)
			port = port * 10 + (unsigned)(*p - '0');
	if (port == 0 || port > 65535)
		return -E_MALFORMED;
	*path = *p == '/' ? p : "/readyz";
	if (inet_pton(AF_INET, host, &((struct sockaddr_in *)ss)->sin_addr) == 1) {
		ss->ss_family = AF_INET;
		((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
	} else if (inet_pton(AF_INET6, host,
	    &((struct sockaddr_in6 *)ss)->sin6_addr) == 1) {
		ss->ss_family = AF_INET6;
		((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
	} else
		return -E_MALFORMED;
	return 0;
}

int
http_get(const char *url, unsigned timeout_ms)
{
	struct sockaddr_storage ss;
	char host[64], req[512], resp[64];
	const char *path;
	struct pollfd pfd;
	ssize_t n;
	int fd, status, r, len;

	if ((r = parse_url(url, &ss, host, sizeof(host), &path)) < 0)
		return r;
	if ((fd = sock_connect((struct sockaddr *)&ss, sizeof(ss))) < 0)
		return fd;
	pfd.fd = fd;
	pfd.events = POLLOUT;
	if ((r = poll(&pfd, 1, (int)timeout_ms)) != 1) {
		close(fd);
		return r == 0 ? -ETIMEDOUT : -errno;
	}
	/* A refused connect reports itself here, not as a timeout. */
	if ((r = sock_error(fd)) != 0) {
		close(fd);
		return r;
	}
	len = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %s\r\n"
	    "Connection: close\r\n\r\n", path, host);
	if (len < 0 || (size_t)len >= sizeof(req) ||
	    send(fd, req, (size_t)len, MSG_NOSIGNAL) != len) {
		close(fd);
		return -EIO;
	}
	pfd.events = POLLIN;
	if ((r = poll(&pfd, 1, (int)timeout_ms)) != 1) {
		close(fd);
		return r == 0 ? -ETIMEDOUT : -errno;
	}
	if ((n = recv(fd, resp, sizeof(resp) - 1, 0)) < 12) {
		/* Closed without an answer: say so, not "malformed". */
		r = n == -1 ? -errno : n == 0 ? -ECONNRESET : -E_MALFORMED;
		close(fd);
		return r;
	}
	close(fd);
	resp[n] = '\0';
	if (sscanf(resp, "HTTP/1.%*d %d", &status) != 1)
		return -E_MALFORMED;
	return status;
}

#define HROW(name, labels, field, help) \
	STAT_ROW(name, labels, STAT_COUNTER, struct http_stats, field, help)
static const struct stat_desc http_rows[] = {
	HROW("dotproxy_metrics_requests_total", NULL, requests,
	    "HTTP requests served by this endpoint."),
	HROW("dotproxy_metrics_rejected_total", "reason=\"bad_request\"", bad,
	    "HTTP clients answered 400 or dropped, by reason."),
	HROW("dotproxy_metrics_rejected_total", "reason=\"dropped\"", dropped,
	    NULL),
};
const struct stat_table http_stat_table = STAT_TABLE(http_rows);
