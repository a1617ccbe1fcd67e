/*
 * Operations endpoint (see metrics.h). Ops layer. Owns the HTTP listener,
 * its client table and the render buffer. Requests are read into a fixed
 * 4 KiB buffer under a 5 s deadline; the answer is written whole, then the
 * connection closes (no keep-alive), so a client costs at most one slot
 * for at most the deadline, and a full table evicts the oldest slot.
 */
#include "metrics.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "errors.h"
#include "fe_tcp.h"
#include "fe_udp.h"
#include "hist.h"
#include "log.h"
#include "loop.h"
#include "plain.h"
#include "query.h"
#include "sock.h"
#include "upstream.h"

#define M_CLIENTS	16
#define M_REQ_CAP	4096
#define M_DEADLINE_MS	5000
#define M_OUT_CAP	(256 * 1024)

struct m_client {
	struct metrics		*m;		/* borrowed: owner */
	int			 fd;		/* -1 when the slot is free */
	struct loop_io		 io;
	struct loop_timer	 deadline;
	uint64_t		 since_ms;
	char			 req[M_REQ_CAP];
	size_t			 req_len;
	char			*out;		/* owned: the response */
	size_t			 out_len, out_off;
};

struct metrics {
	struct loop		*loop;		/* borrowed */
	struct metrics_sources	*src;		/* borrowed */
	int			 fd;
	struct loop_io		 io;
	struct m_client		 clients[M_CLIENTS];
	struct metrics_stats	 stats;
};

/* Appends to a fixed buffer; a sticky overflow flag makes the result 0. */
struct m_out {
	char	*p;
	size_t	 cap, len;
	bool	 full;
};

__attribute__((format(printf, 2, 3))) static void
out(struct m_out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->full)
		return;
	va_start(ap, fmt);
	n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= o->cap - o->len) {
		o->full = true;
		return;
	}
	o->len += (size_t)n;
}

/* A label value with \, " and newline escaped (format 0.0.4). */
static const char *
esc(const char *s, char *buf, size_t cap)
{
	size_t n = 0;

	for (; *s != '\0' && n + 3 < cap; s++) {
		if (*s == '\\' || *s == '"') {
			buf[n++] = '\\';
			buf[n++] = *s;
		} else if (*s == '\n') {
			buf[n++] = '\\';
			buf[n++] = 'n';
		} else
			buf[n++] = *s;
	}
	buf[n] = '\0';
	return buf;
}

static void
help(struct m_out *o, const char *name, const char *type, const char *text)
{
	out(o, "# HELP %s %s\n# TYPE %s %s\n", name, text, name, type);
}

static void
hist_out(struct m_out *o, const char *name, const char *labels,
    const struct hist *h)
{
	uint64_t cum = 0;
	unsigned i;

	for (i = 0; i < HIST_NBUCKETS; i++) {
		cum += h->counts[i];
		out(o, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels,
		    labels[0] ? "," : "", (double)hist_bounds_us[i] / 1e6,
		    (unsigned long long)cum);
	}
	out(o, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels,
	    labels[0] ? "," : "", (unsigned long long)h->count);
	out(o, "%s_sum%s%s%s %.6f\n", name, labels[0] ? "{" : "", labels,
	    labels[0] ? "}" : "", (double)h->sum_us / 1e6);
	out(o, "%s_count%s%s%s %llu\n", name, labels[0] ? "{" : "", labels,
	    labels[0] ? "}" : "", (unsigned long long)h->count);
}

static const char *const rcode_names[17] = {
	"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED",
	"YXDOMAIN", "YXRRSET", "NXRRSET", "NOTAUTH", "NOTZONE", "RCODE11",
	"RCODE12", "RCODE13", "RCODE14", "RCODE15", "EXTENDED",
};

static void
process_figures(struct m_out *o, uint64_t start)
{
	char line[256];
	unsigned long long rss = 0;
	unsigned fds = 0;
	FILE *f;
	DIR *d;

	if ((f = fopen("/proc/self/status", "re")) != NULL) {
		while (fgets(line, sizeof(line), f) != NULL)
			if (sscanf(line, "VmRSS: %llu kB", &rss) == 1)
				break;
		fclose(f);
	}
	if ((d = opendir("/proc/self/fd")) != NULL) {
		struct dirent *e;

		while ((e = readdir(d)) != NULL)
			if (e->d_name[0] != '.')
				fds++;
		closedir(d);
	}
	help(o, "dotproxy_process_resident_memory_bytes", "gauge",
	    "Resident set size.");
	out(o, "dotproxy_process_resident_memory_bytes %llu\n", rss * 1024);
	help(o, "dotproxy_process_open_fds", "gauge", "Open file descriptors.");
	out(o, "dotproxy_process_open_fds %u\n", fds);
	help(o, "dotproxy_process_start_time_seconds", "gauge",
	    "Start time of the process, Unix seconds.");
	out(o, "dotproxy_process_start_time_seconds %llu\n",
	    (unsigned long long)start);
}

/* A module's counter table and the stats it describes (NULL: absent). */
struct m_table {
	const struct stat_table	*t;
	const void		*stats;
};

#define M_ROWS_MAX	128

/*
 * Renders the rows of every table, grouped by series name (the text
 * format wants a family's samples together, and several modules add rows
 * to one family), in the order their families first appear.
 */
static void
tables_out(struct m_out *o, const struct m_table *t, size_t nt)
{
	const struct stat_desc *row[M_ROWS_MAX];
	const void *base[M_ROWS_MAX];
	bool done[M_ROWS_MAX];
	size_t n = 0, i, j, k;

	for (i = 0; i < nt; i++)
		for (j = 0; t[i].stats != NULL && j < t[i].t->n &&
		    n < M_ROWS_MAX; j++) {
			row[n] = &t[i].t->rows[j];
			base[n++] = t[i].stats;
		}
	memset(done, 0, sizeof(done));
	for (i = 0; i < n; i++) {
		const char *h = NULL;

		if (done[i])
			continue;
		for (k = i; k < n && h == NULL; k++)
			if (strcmp(row[k]->name, row[i]->name) == 0)
				h = row[k]->help;
		help(o, row[i]->name, row[i]->type == STAT_GAUGE ? "gauge" :
		    "counter", h != NULL ? h : "");
		for (k = i; k < n; k++) {
			if (done[k] || strcmp(row[k]->name, row[i]->name) != 0)
				continue;
			done[k] = true;
			if (row[k]->labels != NULL)
				out(o, "%s{%s} %llu\n", row[k]->name,
				    row[k]->labels, (unsigned long long)
				    stat_value(row[k], base[k]));
			else
				out(o, "%s %llu\n", row[k]->name,
				    (unsigned long long)stat_value(row[k],
				    base[k]));
		}
	}
}

static uint64_t up_queries(const struct up_stats *s) { return s->queries; }
static uint64_t up_answers(const struct up_stats *s) { return s->answers; }
static uint64_t up_errors(const struct up_stats *s) { return s->errors; }
static uint64_t up_up(const struct up_stats *s) { return s->up ? 1 : 0; }
static uint64_t up_conns(const struct up_stats *s) { return s->conns_open; }
static uint64_t up_handshakes(const struct up_stats *s) { return s->handshakes; }
static uint64_t up_resumed(const struct up_stats *s) { return s->resumed; }
static uint64_t up_reused(const struct up_stats *s) { return s->reused; }
static uint64_t up_late(const struct up_stats *s) { return s->late; }
static uint64_t up_unanswered(const struct up_stats *s) { return s->unanswered; }
static uint64_t up_mismatched(const struct up_stats *s) { return s->mismatched; }
static uint64_t up_opened(const struct up_stats *s) { return s->conns_opened; }

/* The per-upstream series with one value each. */
static const struct up_series {
	const char	*name, *type, *help;
	uint64_t	(*get)(const struct up_stats *);
} up_series[] = {
	{ "dotproxy_upstream_queries_total", "counter",
	  "Queries sent to a DoT upstream.", up_queries },
	{ "dotproxy_upstream_answers_total", "counter",
	  "Answers accepted from a DoT upstream.", up_answers },
	{ "dotproxy_upstream_errors_total", "counter",
	  "Connections to a DoT upstream that failed or were lost.", up_errors },
	{ "dotproxy_upstream_up", "gauge",
	  "1 if the last connection attempt to the upstream worked.", up_up },
	{ "dotproxy_upstream_connections", "gauge",
	  "TLS connections open to the upstream.", up_conns },
	{ "dotproxy_upstream_tls_handshakes_total", "counter",
	  "TLS handshakes completed with the upstream.", up_handshakes },
	{ "dotproxy_upstream_tls_resumptions_total", "counter",
	  "Of those handshakes, the ones that resumed a session.", up_resumed },
	{ "dotproxy_upstream_connection_reuse_total", "counter",
	  "Queries sent on a TLS connection that had carried one before.",
	  up_reused },
	{ "dotproxy_upstream_late_answers_total", "counter",
	  "Answers that came after their query had timed out.", up_late },
	{ "dotproxy_upstream_unanswered_total", "counter",
	  "Queries the upstream never answered within the timeout.",
	  up_unanswered },
	{ "dotproxy_upstream_mismatched_total", "counter",
	  "Answers rejected: their question was not the one asked.",
	  up_mismatched },
	{ "dotproxy_upstream_connections_opened_total", "counter",
	  "TLS connections opened to the upstream.", up_opened },
};

size_t
metrics_render(struct metrics *m, char *buf, size_t cap)
{
	const struct metrics_sources *s = m->src;
	const struct query_stats *qs = query_stats(s->qt);
	const struct fe_udp_stats *us = fe_udp_stats(s->udp);
	const struct fe_tcp_stats *ts = fe_tcp_stats(s->tcp);
	struct up_pool *pool = query_pool(s->qt);
	struct m_out o = { buf, cap, 0, false };
	char e[400], lab[480];
	unsigned t, f, q, i;

	help(&o, "dotproxy_build_info", "gauge", "Version of the running proxy.");
	out(&o, "dotproxy_build_info{version=\"%s\",revision=\"%s\"} 1\n",
	    esc(s->version, e, sizeof(e)), s->revision);

	help(&o, "dotproxy_queries_total", "counter",
	    "Queries received, by transport, address family and type.");
	for (t = 0; t < 2; t++)
		for (f = 0; f < 2; f++)
			for (q = 0; q < QQ_N; q++)
				out(&o, "dotproxy_queries_total{transport=\"%s\","
				    "family=\"%s\",qtype=\"%s\"} %llu\n",
				    t ? "tcp" : "udp", f ? "ipv6" : "ipv4",
				    query_qtype_names[q], (unsigned long long)
				    qs->by_type[t][f][q]);

	help(&o, "dotproxy_responses_total", "counter",
	    "Answers sent, by RCODE and by where they came from.");
	for (t = 0; t < QS_N; t++)
		for (i = 0; i < 17; i++)
			if (qs->responses[t][i] > 0 || i == 0 || i == 2)
				out(&o, "dotproxy_responses_total{rcode=\"%s\","
				    "source=\"%s\"} %llu\n", rcode_names[i],
				    query_source_names[t], (unsigned long long)
				    qs->responses[t][i]);

	help(&o, "dotproxy_query_duration_seconds", "histogram",
	    "From a query's arrival to its answer.");
	hist_out(&o, "dotproxy_query_duration_seconds", "", &qs->duration);

	help(&o, "dotproxy_inflight_queries", "gauge", "Queries waiting for an answer.");
	out(&o, "dotproxy_inflight_queries %zu\n", query_inflight(s->qt));
	{
		struct m_table tab[] = {
			{ &query_stat_table, qs },
			{ &fe_udp_stat_table, us },
			{ &fe_tcp_stat_table, ts },
			{ &plain_stat_table, query_plain_stats(s->qt) },
			{ &cache_stat_table, query_cache_stats(s->qt) },
		};

		tables_out(&o, tab, sizeof(tab) / sizeof(tab[0]));
	}

	help(&o, "dotproxy_captured_queries_total", "counter",
	    "Queries by where the client originally sent them.");
	for (i = 0; i < QC_N; i++)
		out(&o, "dotproxy_captured_queries_total{destination=\"%s\"} %llu\n",
		    route_capture_names[i], (unsigned long long)qs->captured[i]);
	for (f = 0; f < sizeof(up_series) / sizeof(up_series[0]); f++) {
		const struct up_series *u = &up_series[f];

		help(&o, u->name, u->type, u->help);
		for (i = 0; i < up_pool_count(pool); i++)
			out(&o, "%s{upstream=\"%s\"} %llu\n", u->name,
			    esc(up_pool_name(pool, i), e, sizeof(e)),
			    (unsigned long long)u->get(up_pool_stats(pool, i)));
	}
	help(&o, "dotproxy_upstream_latency_seconds", "histogram",
	    "From a query written to the upstream to its answer.");
	for (i = 0; i < up_pool_count(pool); i++) {
		(void)snprintf(lab, sizeof(lab), "upstream=\"%s\"",
		    esc(up_pool_name(pool, i), e, sizeof(e)));
		hist_out(&o, "dotproxy_upstream_latency_seconds", lab,
		    &up_pool_stats(pool, i)->latency);
	}
	help(&o, "dotproxy_config_reloads_total", "counter",
	    "SIGHUP reloads, by result.");
	out(&o, "dotproxy_config_reloads_total{result=\"success\"} %llu\n",
	    (unsigned long long)s->reloads);
	out(&o, "dotproxy_config_reloads_total{result=\"failure\"} %llu\n",
	    (unsigned long long)s->reload_failures);
	help(&o, "dotproxy_metrics_requests_total", "counter",
	    "HTTP requests served by this endpoint.");
	out(&o, "dotproxy_metrics_requests_total %llu\n",
	    (unsigned long long)m->stats.requests);
	process_figures(&o, s->start_wall_s);
	return o.full ? 0 : o.len;
}

static void
client_end(struct m_client *c)
{
	struct metrics *m = c->m;

	if (c->fd == -1)
		return;
	loop_io_stop(m->loop, &c->io);
	loop_timer_stop(m->loop, &c->deadline);
	close(c->fd);
	c->fd = -1;
	free(c->out);
	c->out = NULL;
}

static void
client_on_deadline(struct loop_timer *t)
{
	struct m_client *c = t->arg;

	c->m->stats.dropped++;
	client_end(c);
}

/* Sets the whole response (status, type, body) to go out. */
static void
respond(struct m_client *c, int status, const char *ctype, const char *body,
    size_t len)
{
	const char *reason = status == 200 ? "OK" : status == 404 ?
	    "Not Found" : status == 405 ? "Method Not Allowed" :
	    status == 503 ? "Service Unavailable" : "Bad Request";
	char hdr[256];
	int n;

	n = snprintf(hdr, sizeof(hdr), "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
	    "Content-Length: %zu\r\nConnection: close\r\n\r\n", status, reason,
	    ctype, len);
	if (n < 0 || (c->out = malloc((size_t)n + len)) == NULL) {
		client_end(c);
		return;
	}
	memcpy(c->out, hdr, (size_t)n);
	memcpy(c->out + n, body, len);
	c->out_len = (size_t)n + len;
	c->out_off = 0;
	if (loop_io_set(c->m->loop, &c->io, LOOP_WRITE) < 0)
		client_end(c);
}

static void
health(struct m_client *c, bool ready_check, bool verbose)
{
	const struct metrics_sources *s = c->m->src;
	char body[512];
	struct m_out o = { body, sizeof(body), 0, false };
	bool ok = true;

	if (ready_check) {
		ok = s->listening && s->config_ok && !s->lameduck;
		if (verbose) {
			out(&o, "[%s]listeners\n", s->listening ? "+" : "-");
			out(&o, "[%s]config\n", s->config_ok ? "+" : "-");
			out(&o, "[%s]lameduck%s\n", s->lameduck ? "-" : "+",
			    s->lameduck ? ": shutting down" : "");
		}
		out(&o, "readyz check %s\n", ok ? "passed" : "failed");
	} else {
		if (verbose)
			out(&o, "[+]loop\n");
		out(&o, "livez check passed\n");
	}
	respond(c, ok ? 200 : 503, "text/plain; charset=utf-8", body, o.len);
}

static void
handle(struct m_client *c)
{
	char *sp, *path, *query;
	size_t n;

	c->m->stats.requests++;
	c->req[c->req_len] = '\0';
	if (strncmp(c->req, "GET ", 4) != 0 && strncmp(c->req, "HEAD ", 5) != 0) {
		respond(c, 405, "text/plain", "method not allowed\n", 19);
		return;
	}
	path = strchr(c->req, ' ') + 1;
	if ((sp = strchr(path, ' ')) == NULL) {
		respond(c, 400, "text/plain", "bad request\n", 12);
		return;
	}
	*sp = '\0';
	if ((query = strchr(path, '?')) != NULL)
		*query++ = '\0';
	if (strcmp(path, "/metrics") == 0) {
		char *buf = malloc(M_OUT_CAP);

		if (buf == NULL || (n = metrics_render(c->m, buf, M_OUT_CAP)) == 0) {
			free(buf);
			respond(c, 503, "text/plain", "render failed\n", 14);
			return;
		}
		respond(c, 200, "text/plain; version=0.0.4; charset=utf-8", buf, n);
		free(buf);
	} else if (strcmp(path, "/livez") == 0 || strcmp(path, "/healthz") == 0)
		health(c, false, query != NULL && strstr(query, "verbose") != NULL);
	else if (strcmp(path, "/readyz") == 0)
		health(c, true, query != NULL && strstr(query, "verbose") != NULL);
	else
		respond(c, 404, "text/plain", "not found\n", 10);
}

static void
client_on_io(struct loop_io *io, uint32_t ev)
{
	struct m_client *c = io->arg;
	ssize_t n;

	if (c->out != NULL) {
		if (!(ev & LOOP_WRITE))
			return;
		n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
		    MSG_NOSIGNAL);
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n > 0)
			c->out_off += (size_t)n;
		if (n <= 0 || c->out_off == c->out_len)
			client_end(c);
		return;
	}
	n = recv(c->fd, c->req + c->req_len, sizeof(c->req) - 1 - c->req_len, 0);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		client_end(c);
		return;
	}
	c->req_len += (size_t)n;
	c->req[c->req_len] = '\0';	/* never read a previous request's bytes */
	if (strstr(c->req, "\r\n\r\n") != NULL || strstr(c->req, "\n\n") != NULL) {
		handle(c);
		return;
	}
	if (c->req_len == sizeof(c->req) - 1) {
		c->m->stats.dropped++;
		respond(c, 400, "text/plain", "request too large\n", 18);
	}
}

static void
on_accept(struct loop_io *io, uint32_t ev)
{
	struct metrics *m = io->arg;
	struct m_client *c, *oldest;
	unsigned i, k;
	int fd;

	(void)ev;
	for (k = 0; k < 16; k++) {
		fd = accept4(m->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1)
			return;
		c = oldest = NULL;
		for (i = 0; i < M_CLIENTS; i++) {
			if (m->clients[i].fd == -1) {
				c = &m->clients[i];
				break;
			}
			if (oldest == NULL || m->clients[i].since_ms < oldest->since_ms)
				oldest = &m->clients[i];
		}
		if (c == NULL) {
			/* Full: the oldest client has had its chance. */
			m->stats.dropped++;
			client_end(oldest);
			c = oldest;
		}
		memset(c->req, 0, 4);
		c->req_len = 0;
		c->fd = fd;
		c->since_ms = loop_now(m->loop);
		if (loop_io_start(m->loop, &c->io, fd, LOOP_READ) < 0) {
			close(fd);
			c->fd = -1;
			continue;
		}
		loop_timer_set(m->loop, &c->deadline, c->since_ms + M_DEADLINE_MS);
	}
}

struct metrics *
metrics_new(struct loop *loop, const struct sockaddr *sa, socklen_t len,
    struct metrics_sources *src, int *err)
{
	struct metrics *m;
	unsigned i;

	if ((m = calloc(1, sizeof(*m))) == NULL) {
		*err = -ENOMEM;
		return NULL;
	}
	m->loop = loop;
	m->src = src;
	for (i = 0; i < M_CLIENTS; i++) {
		struct m_client *c = &m->clients[i];

		c->m = m;
		c->fd = -1;
		c->io.cb = client_on_io;
		c->io.arg = c;
		c->deadline.cb = client_on_deadline;
		c->deadline.arg = c;
	}
	if ((m->fd = sock_listen(sa, len, SOCK_STREAM)) < 0) {
		*err = m->fd;
		free(m);
		return NULL;
	}
	m->io.cb = on_accept;
	m->io.arg = m;
	if ((*err = loop_io_start(loop, &m->io, m->fd, LOOP_READ)) < 0) {
		close(m->fd);
		free(m);
		return NULL;
	}
	return m;
}

void
metrics_free(struct metrics *m)
{
	unsigned i;

	if (m == NULL)
		return;
	for (i = 0; i < M_CLIENTS; i++)
		client_end(&m->clients[i]);
	loop_io_stop(m->loop, &m->io);
	close(m->fd);
	free(m);
}

int
metrics_http_get(const char *url, unsigned timeout_ms)
{
	struct sockaddr_storage ss;
	char host[64], req[512], resp[64];
	const char *p, *path;
	unsigned port = 0;
	struct pollfd pfd;
	size_t hl;
	ssize_t n;
	int fd, status, r, len;

	memset(&ss, 0, sizeof(ss));
	if (strncmp(url, "http://", 7) != 0)
		return -E_MALFORMED;
	p = url + 7;
	if (*p == '[') {
		const char *e = strchr(p, ']');

		if (e == NULL || (hl = (size_t)(e - p - 1)) >= sizeof(host))
			return -E_MALFORMED;
		memcpy(host, p + 1, hl);
		host[hl] = '\0';
		p = e + 1;
	} else {
		hl = strcspn(p, ":/");
		if (hl >= sizeof(host))
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
	path = *p == '/' ? p : "/readyz";
	if (inet_pton(AF_INET, host, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
		ss.ss_family = AF_INET;
		((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)port);
	} else if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
		ss.ss_family = AF_INET6;
		((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)port);
	} else
		return -E_MALFORMED;
	if ((fd = sock_connect((struct sockaddr *)&ss, sizeof(ss))) < 0)
		return fd;
	pfd.fd = fd;
	pfd.events = POLLOUT;
	if (poll(&pfd, 1, (int)timeout_ms) != 1 || (r = sock_error(fd)) != 0) {
		close(fd);
		return -ETIMEDOUT;
	}
	len = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %s\r\n"
	    "Connection: close\r\n\r\n", path, host);
	if (len < 0 || (size_t)len >= sizeof(req) ||
	    send(fd, req, (size_t)len, MSG_NOSIGNAL) != len) {
		close(fd);
		return -EIO;
	}
	pfd.events = POLLIN;
	if (poll(&pfd, 1, (int)timeout_ms) != 1 ||
	    (n = recv(fd, resp, sizeof(resp) - 1, 0)) < 12) {
		close(fd);
		return -ETIMEDOUT;
	}
	close(fd);
	resp[n] = '\0';
	if (sscanf(resp, "HTTP/1.%*d %d", &status) != 1)
		return -E_MALFORMED;
	return status;
}
