/*
 * Operations endpoint (see metrics.h). Ops layer. Renders the Prometheus
 * text and the health pages; the HTTP server (http.c) serves them.
 */
#include "metrics.h"

#include <sys/resource.h>
#include <sys/time.h>

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache.h"
#include "config.h"
#include "ct.h"
#include "errors.h"
#include "fe_tcp.h"
#include "fe_udp.h"
#include "hist.h"
#include "http.h"
#include "log.h"
#include "nl.h"
#include "nl_diag.h"
#include "plain.h"
#include "query.h"
#include "upstream.h"

struct metrics {
	struct metrics_sources	*src;		/* borrowed */
	struct http		*http;		/* owned */
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

/*
 * The standard process_* families of the Prometheus client libraries, with
 * their names, types and units, so that dashboards and alerts written for
 * any exporter work here: CPU from getrusage (microseconds, not /proc's
 * clock ticks), the descriptor limit from getrlimit (the soft limit, the
 * one that refuses a socket), memory and descriptors from /proc/self.
 */
static void
process_figures(struct m_out *o, uint64_t start)
{
	char line[256];
	unsigned long long rss = 0;
	unsigned fds = 0;
	struct rusage ru;
	struct rlimit rl;
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

		/* Not counting the directory's own descriptor. */
		while ((e = readdir(d)) != NULL)
			if (e->d_name[0] != '.')
				fds++;
		if (fds > 0)
			fds--;
		closedir(d);
	}
	if (getrusage(RUSAGE_SELF, &ru) == 0) {
		help(o, "process_cpu_seconds_total", "counter",
		    "Total user and system CPU time spent in seconds.");
		out(o, "process_cpu_seconds_total %llu.%06llu\n",
		    (unsigned long long)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
		    (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000000),
		    (unsigned long long)((ru.ru_utime.tv_usec +
		    ru.ru_stime.tv_usec) % 1000000));
	}
	help(o, "process_open_fds", "gauge", "Number of open file descriptors.");
	out(o, "process_open_fds %u\n", fds);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		help(o, "process_max_fds", "gauge",
		    "Maximum number of open file descriptors.");
		if (rl.rlim_cur == RLIM_INFINITY)
			out(o, "process_max_fds +Inf\n");
		else
			out(o, "process_max_fds %llu\n",
			    (unsigned long long)rl.rlim_cur);
	}
	help(o, "process_resident_memory_bytes", "gauge",
	    "Resident memory size in bytes.");
	out(o, "process_resident_memory_bytes %llu\n", rss * 1024);
	help(o, "process_start_time_seconds", "gauge",
	    "Start time of the process since unix epoch in seconds.");
	out(o, "process_start_time_seconds %llu\n", (unsigned long long)start);
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
	  "1 while the upstream is reachable (not tried yet, or its last "
	  "connection attempt worked); 0 while it fails or backs off.", up_up },
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

/* The counters of a netlink lookup not in use: its series read 0. */
static const struct nl_stats nl_unused;

/*
 * The counters of every worker, summed: copied under each worker's lock
 * (its thread holds it whenever it is awake), so a scrape sees each
 * worker at one instant and never a pool a reload is swapping.
 */
struct m_snap {
	struct query_stats	 q;
	struct fe_udp_stats	 u;
	struct fe_tcp_stats	 t;
	struct plain_stats	 p;
	struct cache_stats	 c;
	bool			 has_cache, has_ct, has_diag;
	struct nl_stats		 ct, diag;
	size_t			 inflight;
	size_t			 nup;
	char			 upname[CFG_MAX_UPSTREAMS][320];
	struct up_stats		 up[CFG_MAX_UPSTREAMS];
	uint64_t		 wqueries[CFG_MAX_WORKERS];
	uint64_t		 winflight[CFG_MAX_WORKERS];
	size_t			 nw;
};

/* Adds the fields a counter table describes (the only ones rendered). */
static void
sum_table(const struct stat_table *t, void *acc, const void *src)
{
	size_t i;

	if (src == NULL)
		return;
	for (i = 0; i < t->n; i++) {
		unsigned char *p = (unsigned char *)acc + t->rows[i].off;

		if (t->rows[i].width == STAT_UINT)
			*(unsigned *)(void *)p += (unsigned)stat_value(&t->rows[i],
			    src);
		else
			*(uint64_t *)(void *)p += stat_value(&t->rows[i], src);
	}
}

static void
sum_hist(struct hist *acc, const struct hist *h)
{
	unsigned i;

	for (i = 0; i < HIST_NBUCKETS + 1; i++)
		acc->counts[i] += h->counts[i];
	acc->count += h->count;
	acc->sum_us += h->sum_us;
}

/* struct query_stats is all uint64_t counters (the histogram too). */
_Static_assert(sizeof(struct query_stats) % sizeof(uint64_t) == 0,
    "query_stats: uint64_t fields only");

static void
snap_add(struct m_snap *m, struct query_table *qt, struct fe_udp *udp,
    struct fe_tcp *tcp)
{
	const struct query_stats *qs = query_stats(qt);
	const uint64_t *src = (const uint64_t *)(const void *)qs;
	uint64_t *dst = (uint64_t *)(void *)&m->q;
	struct up_pool *pool = query_pool(qt);
	size_t i, n = up_pool_count(pool);

	for (i = 0; i < sizeof(*qs) / sizeof(uint64_t); i++)
		dst[i] += src[i];
	sum_table(&fe_udp_stat_table, &m->u, fe_udp_stats(udp));
	sum_table(&fe_tcp_stat_table, &m->t, fe_tcp_stats(tcp));
	sum_table(&plain_stat_table, &m->p, query_plain_stats(qt));
	if (query_cache_stats(qt) != NULL)
		m->has_cache = true;
	sum_table(&cache_stat_table, &m->c, query_cache_stats(qt));
	if (query_ct_stats(qt) != NULL)
		m->has_ct = true;
	sum_table(&ct_stat_table, &m->ct, query_ct_stats(qt));
	if (fe_tcp_diag_stats(tcp) != NULL)
		m->has_diag = true;
	sum_table(&diag_stat_table, &m->diag, fe_tcp_diag_stats(tcp));
	m->inflight += query_inflight(qt);
	if (m->nw < CFG_MAX_WORKERS) {
		m->wqueries[m->nw] = qs->queries_udp + qs->queries_tcp;
		m->winflight[m->nw] = query_inflight(qt);
	}
	m->nw++;
	/* Matched by name: during a reload one worker may already have the
	 * new upstreams while another still has the old ones. */
	for (i = 0; i < n; i++) {
		const char *name = up_pool_name(pool, (unsigned)i);
		const struct up_stats *u = up_pool_stats(pool, (unsigned)i);
		struct up_stats *a;
		size_t j;

		for (j = 0; j < m->nup && strcmp(m->upname[j], name) != 0; j++)
			;
		if (j == m->nup) {
			if (m->nup == CFG_MAX_UPSTREAMS)
				continue;
			(void)snprintf(m->upname[j], sizeof(m->upname[j]), "%s",
			    name);
			m->nup++;
			m->up[j].up = true;
		}
		a = &m->up[j];
		a->queries += u->queries;
		a->answers += u->answers;
		a->errors += u->errors;
		a->handshakes += u->handshakes;
		a->resumed += u->resumed;
		a->reused += u->reused;
		a->late += u->late;
		a->unanswered += u->unanswered;
		a->mismatched += u->mismatched;
		a->conns_opened += u->conns_opened;
		a->conns_open += u->conns_open;
		/* Down as soon as one worker's last attempt failed (each
		 * backs off alone; one that never tried says up). */
		a->up = a->up && u->up;
		sum_hist(&a->latency, &u->latency);
	}
}

static void
snap_take(const struct metrics_sources *s, struct m_snap *m)
{
	size_t i;

	memset(m, 0, sizeof(*m));
	if (s->nworkers == 0) {
		snap_add(m, s->qt, s->udp, s->tcp);
		return;
	}
	for (i = 0; i < s->nworkers; i++) {
		const struct metrics_worker *w = &s->workers[i];

		if (w->lock != NULL)
			w->lock(w->lock_arg, true);
		snap_add(m, w->qt, w->udp, w->tcp);
		if (w->lock != NULL)
			w->lock(w->lock_arg, false);
	}
}

size_t
metrics_render(struct metrics *m, char *buf, size_t cap)
{
	const struct metrics_sources *s = m->src;
	struct m_snap *sn;
	const struct query_stats *qs;
	struct m_out o = { buf, cap, 0, false };
	char e[400], lab[480];
	unsigned t, f, q, i;

	if ((sn = malloc(sizeof(*sn))) == NULL)
		return 0;
	snap_take(s, sn);
	qs = &sn->q;
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
	out(&o, "dotproxy_inflight_queries %zu\n", sn->inflight);
	if (s->nworkers > 0) {
		help(&o, "dotproxy_workers", "gauge",
		    "Event loops (--workers), each with its own sockets, "
		    "upstream connections and cache.");
		out(&o, "dotproxy_workers %zu\n", s->nworkers);
		help(&o, "dotproxy_worker_queries_total", "counter",
		    "Queries received, by worker.");
		for (i = 0; i < sn->nw && i < CFG_MAX_WORKERS; i++)
			out(&o, "dotproxy_worker_queries_total{worker=\"%u\"} "
			    "%llu\n", i, (unsigned long long)sn->wqueries[i]);
		help(&o, "dotproxy_worker_inflight_queries", "gauge",
		    "Queries waiting for an answer, by worker.");
		for (i = 0; i < sn->nw && i < CFG_MAX_WORKERS; i++)
			out(&o, "dotproxy_worker_inflight_queries{worker=\"%u\"} "
			    "%llu\n", i, (unsigned long long)sn->winflight[i]);
	}
	{
		struct m_table tab[] = {
			{ &query_stat_table, qs },
			{ &fe_udp_stat_table, &sn->u },
			{ &fe_tcp_stat_table, &sn->t },
			{ &plain_stat_table, &sn->p },
			{ &cache_stat_table, sn->has_cache ? &sn->c : NULL },
			{ &ct_stat_table, sn->has_ct ? &sn->ct : &nl_unused },
			{ &diag_stat_table, sn->has_diag ? &sn->diag : &nl_unused },
		};

		tables_out(&o, tab, sizeof(tab) / sizeof(tab[0]));
	}

	/* Only a redirect captures: without --transparent every query was
	 * sent to the proxy on purpose, and a family of zeros and "unknown"s
	 * would say otherwise. */
	if (s->transparent) {
		help(&o, "dotproxy_captured_queries_total", "counter",
		    "Queries by where the client originally sent them.");
		for (i = 0; i < QC_N; i++)
			out(&o, "dotproxy_captured_queries_total{destination=\"%s\"} %llu\n",
			    route_capture_names[i],
			    (unsigned long long)qs->captured[i]);
	}
	for (f = 0; f < sizeof(up_series) / sizeof(up_series[0]); f++) {
		const struct up_series *u = &up_series[f];

		help(&o, u->name, u->type, u->help);
		for (i = 0; i < sn->nup; i++)
			out(&o, "%s{upstream=\"%s\"} %llu\n", u->name,
			    esc(sn->upname[i], e, sizeof(e)),
			    (unsigned long long)u->get(&sn->up[i]));
	}
	help(&o, "dotproxy_upstream_latency_seconds", "histogram",
	    "From a query written to the upstream to its answer.");
	for (i = 0; i < sn->nup; i++) {
		(void)snprintf(lab, sizeof(lab), "upstream=\"%s\"",
		    esc(sn->upname[i], e, sizeof(e)));
		hist_out(&o, "dotproxy_upstream_latency_seconds", lab,
		    &sn->up[i].latency);
	}
	help(&o, "dotproxy_config_reloads_total", "counter",
	    "SIGHUP reloads, by result.");
	out(&o, "dotproxy_config_reloads_total{result=\"success\"} %llu\n",
	    (unsigned long long)s->reloads);
	out(&o, "dotproxy_config_reloads_total{result=\"failure\"} %llu\n",
	    (unsigned long long)s->reload_failures);
	{
		struct m_table tab[] = {
			{ &http_stat_table, http_stats(m->http) },
		};

		tables_out(&o, tab, 1);
	}
	process_figures(&o, s->start_wall_s);
	free(sn);
	return o.full ? 0 : o.len;
}

/* The /livez and /readyz bodies; the status to answer with. */
static int
health(const struct metrics_sources *s, bool ready_check, bool verbose,
    char *body, size_t cap, size_t *len)
{
	struct m_out o = { body, cap, 0, false };
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
	if (o.full)
		return -E_TOOBIG;
	*len = o.len;
	return ok ? 200 : 503;
}

/* The HTTP server's render callback. */
static int
render_page(void *arg, enum http_page page, bool verbose, char *buf,
    size_t cap, size_t *len)
{
	struct metrics *m = arg;

	switch (page) {
	case HTTP_PAGE_METRICS:
		if ((*len = metrics_render(m, buf, cap)) == 0)
			return -E_TOOBIG;
		return 200;
	case HTTP_PAGE_LIVEZ:
		return health(m->src, false, verbose, buf, cap, len);
	case HTTP_PAGE_READYZ:
		return health(m->src, true, verbose, buf, cap, len);
	}
	return -E_MALFORMED;
}

struct metrics *
metrics_new(struct loop *loop, const struct sockaddr *sa, socklen_t len,
    int fd, struct metrics_sources *src, int *err)
{
	struct metrics *m;

	if ((m = calloc(1, sizeof(*m))) == NULL) {
		if (fd >= 0)
			close(fd);
		*err = -ENOMEM;
		return NULL;
	}
	m->src = src;
	if ((m->http = http_new(loop, sa, len, fd, render_page, m, err)) ==
	    NULL) {
		free(m);
		return NULL;
	}
	return m;
}

int
metrics_listen_fd(const struct metrics *m)
{
	return http_listen_fd(m->http);
}

void
metrics_stop_listening(struct metrics *m)
{
	http_stop_listening(m->http);
}

void
metrics_free(struct metrics *m)
{
	if (m == NULL)
		return;
	http_free(m->http);
	free(m);
}
