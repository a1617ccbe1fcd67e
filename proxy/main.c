/*
 * dotproxy: plain DNS in over UDP and TCP, DNS-over-TLS out. Top layer:
 * parses the configuration, makes the workers (worker.h: one event loop
 * each, inline on the main loop when there is one), owns the signal fd,
 * the metrics endpoint and the handover socket (handover.h) on the main
 * loop, and shuts down in order (stop taking queries, finish what is in
 * flight within the timeout, close TLS with close_notify, free everything
 * so leak checkers see real leaks).
 */
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <sys/signalfd.h>

#include <errno.h>
#include <signal.h>
#include <time.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "dns.h"
#include "errors.h"
#include "fe_tcp.h"
#include "fe_udp.h"
#include "handover.h"
#include "http.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "query.h"
#include "resolv.h"
#include "sandbox.h"
#include "sock.h"
#include "tls.h"
#include "upstream.h"
#include "worker.h"

#ifndef DOTPROXY_VERSION
#define DOTPROXY_VERSION "0.0.0"
#endif
#ifndef DOTPROXY_REVISION
#define DOTPROXY_REVISION "unknown"
#endif

extern char **environ;

struct app {
	struct config		 cfg;
	struct resolv		 rc;
	struct loop		*loop;		/* owned */
	struct tls_ctx		*tls;		/* worker 0's until made */
	struct worker		**w;		/* owned: nw */
	unsigned		 nw;
	struct metrics_worker	*mw;		/* owned: nw */
	struct metrics		*metrics;	/* owned, NULL when off */
	struct metrics_sources	 msrc;
	struct handover_inv	*inv;		/* owned: sockets taken over */
	int			 hofd;		/* handover server, or -1 */
	struct loop_io		 hoio;
	bool			 handed_over;	/* a successor has our sockets */
	int			 metrics_fd;	/* metrics listener handed over
						 * to us, until adopted; -1 */
	int			 sigfd;
	struct loop_io		 sigio;
	struct loop_timer	 grace;		/* lameduck end */
	int			 argc;
	char			**argv;		/* borrowed: main's */
	uint64_t		 nofile;	/* descriptor limit */
	bool			 stop;
};

static void	reload(struct app *);
static void	log_config(const struct config *, const char *);

/*
 * Reads the --config file named in cfg (if any) and parses everything
 * again with it. Returns 0, or -E_USAGE with a line in err.
 */
static int
load_config(struct config *cfg, int argc, char **argv, char *err, size_t errlen)
{
	static char text[65536];
	char path[CFG_PATH_MAX];
	size_t n;
	FILE *f;
	int r;

	if ((r = config_parse(cfg, argc, argv, environ, err, errlen)) < 0)
		return r;
	if (cfg->action != CFG_RUN || cfg->config_file[0] == '\0')
		return 0;
	if ((f = fopen(cfg->config_file, "re")) == NULL) {
		(void)snprintf(err, errlen, "--config: cannot read %.200s: %s",
		    cfg->config_file, strerror(errno));
		return -E_USAGE;
	}
	n = fread(text, 1, sizeof(text), f);
	if (!feof(f)) {
		fclose(f);
		(void)snprintf(err, errlen, "--config: %.200s is larger than %zu bytes",
		    cfg->config_file, sizeof(text) - 1);
		return -E_USAGE;
	}
	fclose(f);
	/* cfg is cleared by the parse: keep the name apart. */
	memcpy(path, cfg->config_file, sizeof(path));
	return config_parse_file(cfg, argc, argv, environ, text, n, path, err,
	    errlen);
}

static void
on_grace_end(struct loop_timer *t)
{
	struct app *a = t->arg;

	a->stop = true;
}

static void
on_signal(struct loop_io *io, uint32_t ev)
{
	struct app *a = io->arg;
	struct signalfd_siginfo si;

	(void)ev;
	while (read(a->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			reload(a);
			continue;
		}
		if (a->msrc.lameduck || a->handed_over) {
			/* A second signal: no more grace. After a handover
			 * there is none to give: the successor reads the
			 * same sockets, so stop reading them at once. */
			if (a->handed_over && !a->msrc.lameduck)
				log_info("stopping: the sockets were handed over",
				    "signal=%s", si.ssi_signo == SIGTERM ? "TERM" :
				    "INT");
			a->msrc.lameduck = true;
			a->stop = true;
			continue;
		}
		log_info("lameduck: still answering, not ready", "signal=%s "
		    "grace_ms=%u", si.ssi_signo == SIGTERM ? "TERM" : "INT",
		    a->cfg.shutdown_grace_ms);
		a->msrc.lameduck = true;
		loop_timer_set(a->loop, &a->grace,
		    loop_now(a->loop) + a->cfg.shutdown_grace_ms);
	}
}

/* A socket of type bound to sa for a worker: one the predecessor handed
 * over, else a new one in the address's SO_REUSEPORT group. */
static int
listen_fd(struct app *a, const struct sockaddr *sa, socklen_t len, int type)
{
	int fd;

	if (a->inv != NULL && (fd = handover_take(a->inv, type, sa, len)) >= 0)
		return fd;
	return sock_listen(sa, len, type);
}

/* Binds UDP and TCP on one address for every worker. */
static int
bind_one(struct app *a, const struct sockaddr *sa, socklen_t len)
{
	unsigned i, k;
	int fd, r;

	for (i = 0; i < a->nw; i++) {
		if ((fd = listen_fd(a, sa, len, SOCK_DGRAM)) < 0)
			return fd;
		if ((r = worker_adopt_udp(a->w[i], fd, sa, len)) < 0) {
			close(fd);
			return r;
		}
		if ((fd = listen_fd(a, sa, len, SOCK_STREAM)) < 0)
			return fd;
		if ((r = worker_adopt_tcp(a->w[i], fd)) < 0) {
			close(fd);
			return r;
		}
	}
	/* The predecessor ran more workers: their sockets' queues are ours
	 * to read too, spread over the workers. */
	for (i = 0, k = 0; a->inv != NULL && i < a->inv->n; i++) {
		struct handover_sock *h = &a->inv->s[i];
		struct worker *w = a->w[k++ % a->nw];

		if (h->fd < 0 || h->len != len || memcmp(&h->addr, sa, len) != 0)
			continue;
		r = h->type == SOCK_DGRAM ? worker_adopt_udp(w, h->fd, sa, len) :
		    worker_adopt_tcp(w, h->fd);
		/* No room (far fewer workers than before): the rest are
		 * closed, with a warning, after the listeners are bound. */
		if (r < 0)
			break;
		h->fd = -1;
	}
	return 0;
}

/* Binds UDP and TCP on every --listen address. IPv6 addresses the
 * namespace cannot have are skipped with a warning. Returns how many
 * addresses were bound, or -1 after logging a fatal error. */
static int
bind_listeners(struct app *a)
{
	char text[80];
	size_t i;
	int n = 0, r;

	for (i = 0; i < a->cfg.nlisten; i++) {
		const struct cfg_addr *l = &a->cfg.listen[i];
		const struct sockaddr *sa = (const struct sockaddr *)&l->ss;

		config_addr_text(l, text, sizeof(text));
		r = bind_one(a, sa, l->len);
		if (r < 0 && sa->sa_family == AF_INET6 &&
		    (r == -EADDRNOTAVAIL || r == -EAFNOSUPPORT)) {
			log_warn("IPv6 listener skipped", "listen=%s error=\"%s\"",
			    text, proxy_strerror(r));
			continue;
		}
		if (r < 0) {
			log_error("cannot listen", "listen=%s error=\"%s\"", text,
			    proxy_strerror(r));
			return -1;
		}
		log_info("listening", "listen=%s proto=udp,tcp workers=%u", text,
		    a->nw);
		n++;
	}
	/* The predecessor's metrics listener too: the new process answers
	 * the probes from here on, with no moment where none listens. */
	if (a->inv != NULL && a->cfg.has_metrics)
		a->metrics_fd = handover_take(a->inv, SOCK_STREAM,
		    (const struct sockaddr *)&a->cfg.metrics.ss,
		    a->cfg.metrics.len);
	if (a->inv != NULL && (r = (int)handover_close_rest(a->inv)) > 0)
		log_warn("handed-over sockets not listened on any more closed",
		    "sockets=%d", r);
	return n;
}

static int
setup_signals(struct app *a)
{
	sigset_t set;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &set, NULL) == -1)
		return -errno;
	if ((a->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC)) == -1)
		return -errno;
	a->sigio.cb = on_signal;
	a->sigio.arg = a;
	return loop_io_start(a->loop, &a->sigio, a->sigfd, LOOP_READ);
}

static void
log_config(const struct config *cfg, const char *what)
{
	char listen[CFG_MAX_LISTEN * 64] = "", zones[512] = "", t[300];
	size_t i, n = 0, z = 0;
	int r;

	for (i = 0; i < cfg->nlisten; i++) {
		config_addr_text(&cfg->listen[i], t, sizeof(t));
		r = snprintf(listen + n, sizeof(listen) - n, "%s%s", i ? "," : "", t);
		if (r > 0 && (size_t)r < sizeof(listen) - n)
			n += (size_t)r;
	}
	for (i = 0; i < cfg->nzones; i++) {
		if (dns_name_to_text(cfg->zones[i].name, cfg->zones[i].len, t,
		    sizeof(t)) < 0)
			continue;
		r = snprintf(zones + z, sizeof(zones) - z, "%s%s", i ? "," : "", t);
		if (r > 0 && (size_t)r < sizeof(zones) - z)
			z += (size_t)r;
	}
	if (cfg->has_metrics)
		config_addr_text(&cfg->metrics, t, sizeof(t));
	log_info(what, "version=%s revision=%s listen=%s upstreams=%zu "
	    "ca_file=\"%s\" local_zones=\"%s\" transparent=%s resolv_conf=%s "
	    "timeout_ms=%u idle_timeout_ms=%u client_idle_timeout_ms=%u "
	    "connections=%u max_inflight=%u max_clients=%u max_pipeline=%u "
	    "shutdown_grace_ms=%u metrics=%s log_level=%s log_format=%s "
	    "log_queries=%s config=%s", DOTPROXY_VERSION, DOTPROXY_REVISION,
	    listen, cfg->nupstream,
	    cfg->ca_file[0] ? cfg->ca_file : "(system store)", zones,
	    cfg->transparent ? "yes" : "no", cfg->resolv_conf, cfg->timeout_ms,
	    cfg->idle_timeout_ms, cfg->client_idle_ms, cfg->connections,
	    cfg->max_inflight, cfg->max_clients, cfg->max_pipeline,
	    cfg->shutdown_grace_ms, cfg->has_metrics ? t : "off",
	    log_level_name(cfg->log_level),
	    cfg->log_format == LOG_FMT_JSON ? "json" : "text",
	    cfg->log_queries ? "yes" : "no",
	    cfg->config_file[0] ? cfg->config_file : "-");
	log_info("cache", "size=%u bytes=%u min_ttl=%u max_ttl=%u "
	    "local_max_ttl=%u servfail_ttl=%u stale_max=%u "
	    "client_timeout_ms=%u", cfg->cache_size, cfg->cache_bytes,
	    cfg->cache_min_ttl, cfg->cache_max_ttl, cfg->local_cache_max_ttl,
	    cfg->cache_servfail_ttl, cfg->cache_stale_max,
	    cfg->cache_client_timeout_ms);
	for (i = 0; i < cfg->nupstream; i++)
		log_info("upstream", "upstream=%s auth_name=%s pins=%zu",
		    cfg->upstream[i].text,
		    cfg->upstream[i].auth_name[0] ? cfg->upstream[i].auth_name : "-",
		    cfg->upstream[i].npins);
}

/* Applies the descriptor budget (config_fd_budget) to cfg and logs it.
 * Returns 0, or -EMFILE when the limit is too low to run. */
static int
apply_fd_budget(struct config *cfg, uint64_t limit, bool quiet)
{
	struct fd_budget b;

	if (config_fd_budget(cfg, limit, cfg->has_metrics ?
	    http_max_clients() : 0, &b) < 0)
		return -EMFILE;
	if (!quiet && (b.max_plain != cfg->max_plain ||
	    b.max_clients != cfg->max_clients))
		log_warn("descriptor budget: caps lowered", "nofile=%llu "
		    "reserved=%llu max_clients=%u (asked %u) max_plain=%u "
		    "(asked %u)", (unsigned long long)limit,
		    (unsigned long long)b.reserved, b.max_clients,
		    cfg->max_clients, b.max_plain, cfg->max_plain);
	else if (!quiet)
		log_info("descriptor budget", "nofile=%llu reserved=%llu "
		    "max_clients=%u max_plain=%u", (unsigned long long)limit,
		    (unsigned long long)b.reserved, b.max_clients, b.max_plain);
	cfg->max_plain = b.max_plain;
	cfg->max_clients = b.max_clients;
	return 0;
}

/* Raises the soft descriptor limit to the hard one; returns the soft. */
static uint64_t
raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return 1024;
	if (rl.rlim_cur < rl.rlim_max) {
		rlim_t want = rl.rlim_max;

		/* An unlimited hard limit: a soft one select() never sees
		 * is still plenty. */
		if (want == RLIM_INFINITY)
			want = 1 << 20;
		rl.rlim_cur = want;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
			(void)getrlimit(RLIMIT_NOFILE, &rl);
	}
	return rl.rlim_cur == RLIM_INFINITY ? 1u << 20 : (uint64_t)rl.rlim_cur;
}

/* True if a setting a reload cannot change differs between a and b. */
static bool
needs_restart(const struct config *a, const struct config *b)
{
	return a->nlisten != b->nlisten ||
	    memcmp(a->listen, b->listen, sizeof(a->listen)) != 0 ||
	    a->nzones != b->nzones ||
	    memcmp(a->zones, b->zones, sizeof(a->zones)) != 0 ||
	    a->has_metrics != b->has_metrics || a->transparent != b->transparent ||
	    a->timeout_ms != b->timeout_ms || a->max_clients != b->max_clients ||
	    a->max_pipeline != b->max_pipeline ||
	    strcmp(a->resolv_conf, b->resolv_conf) != 0 ||
	    a->workers != b->workers ||
	    strcmp(a->handover_socket, b->handover_socket) != 0;
}

/*
 * SIGHUP: parse the flags, environment and --config file again, load the
 * CA file again, and swap in a new upstream pool. Queries in flight finish
 * on the old pool; listeners are untouched. A bad configuration is refused
 * with one log line and the running one stays.
 */
static void
reload(struct app *a)
{
	struct config *n, *c;
	struct tls_ctx *tls;
	char err[512];
	unsigned i;

	if ((n = calloc(1, sizeof(*n))) == NULL) {
		a->msrc.reload_failures++;
		return;
	}
	if (load_config(n, a->argc, a->argv, err, sizeof(err)) < 0) {
		log_warn("configuration reload refused", "error=\"%s\"", err);
		goto fail;
	}
	if (query_cache_check(n, err, sizeof(err)) < 0) {
		log_warn("configuration reload refused", "error=\"%s\"", err);
		goto fail;
	}
	if ((tls = tls_ctx_new(n->ca_file, err, sizeof(err))) == NULL) {
		log_warn("configuration reload refused", "error=\"--ca-file: %s\"",
		    err);
		goto fail;
	}
	(void)apply_fd_budget(n, a->nofile / a->nw, true);
	/* Every worker gets its own copy and its own TLS context, applied
	 * by its own thread: nothing is shared between them. */
	for (i = 0; i < a->nw; i++) {
		if (i > 0 && (tls = tls_ctx_new(n->ca_file, err,
		    sizeof(err))) == NULL) {
			log_warn("configuration reload not applied to a worker",
			    "worker=%u error=\"--ca-file: %s\"", i, err);
			continue;
		}
		if ((c = malloc(sizeof(*c))) == NULL) {
			tls_ctx_free(tls);
			log_warn("configuration reload not applied to a worker",
			    "worker=%u error=\"out of memory\"", i);
			continue;
		}
		memcpy(c, n, sizeof(*c));
		worker_reload(a->w[i], c, tls);
	}
	if (needs_restart(&a->cfg, n))
		log_warn("some changed settings need a restart", "%s",
		    "applied=\"upstreams, CA file, cache, log level and format\"");
	log_setup(n->log_level, n->log_format);
	a->msrc.reloads++;
	log_config(n, "configuration reloaded");
	free(n);
	return;
fail:
	a->msrc.reload_failures++;
	free(n);
}

/* Reads --resolv-conf; a missing file leaves no nameserver and no search
 * list, which only matters for local zones. */
static void
read_resolv(struct app *a)
{
	char text[8192];
	size_t n = 0;
	FILE *f;

	if ((f = fopen(a->cfg.resolv_conf, "re")) == NULL) {
		if (a->cfg.transparent || a->cfg.nzones > 0)
			log_warn("cannot read resolv.conf", "path=%s error=\"%s\"",
			    a->cfg.resolv_conf, strerror(errno));
		resolv_parse("", 0, &a->rc);
		return;
	}
	n = fread(text, 1, sizeof(text), f);
	fclose(f);
	resolv_parse(text, n, &a->rc);
}

/* Stops taking queries, waits for those in flight (at most the query
 * timeout), then closes the upstream connections cleanly: every worker
 * at once. */
static void
drain(struct app *a)
{
	unsigned i;

	for (i = 0; i < a->nw; i++)
		worker_ask_stop(a->w[i]);
	for (i = 0; i < a->nw; i++)
		worker_drain(a->w[i]);
}

/*
 * The handover server (handover.h): a successor connected; give it every
 * worker's listening sockets. We keep reading them until SIGTERM, which
 * then stops us at once.
 */
static void
on_handover(struct loop_io *io, uint32_t ev)
{
	struct app *a = io->arg;
	int fds[HANDOVER_MAX_FDS];
	size_t n = 0;
	unsigned i;
	int c, r;

	(void)ev;
	while ((c = accept4(a->hofd, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
		if (a->stop) {
			close(c);
			continue;
		}
		for (i = 0, n = 0; i < a->nw; i++)
			n += worker_fds(a->w[i], fds + n, HANDOVER_MAX_FDS - n);
		/* The metrics listener goes too, and we stop accepting on
		 * it: probes and scrapes of that address are the
		 * successor's from now on (a DaemonSet's surge pod shares
		 * the node's address and port with us). */
		if (a->metrics != NULL && metrics_listen_fd(a->metrics) >= 0 &&
		    n < HANDOVER_MAX_FDS)
			fds[n++] = metrics_listen_fd(a->metrics);
		if ((r = handover_send(c, fds, n)) < 0)
			log_warn("handover failed", "error=\"%s\"",
			    proxy_strerror(r));
		else {
			log_info("listening sockets handed over", "sockets=%zu "
			    "next=\"SIGTERM stops at once\"", n);
			if (a->metrics != NULL)
				metrics_stop_listening(a->metrics);
			a->handed_over = true;
			/* In lameduck already: the successor serves now. */
			if (a->msrc.lameduck)
				a->stop = true;
		}
		close(c);
	}
}

/* Takes the predecessor's sockets, if one serves --handover-socket. */
static int
handover_start(struct app *a)
{
	int r;

	if (a->cfg.handover_socket[0] == '\0')
		return 0;
	if ((a->inv = calloc(1, sizeof(*a->inv))) == NULL)
		return -ENOMEM;
	r = handover_fetch(a->cfg.handover_socket, a->inv);
	if (r < 0)
		log_warn("no handover: binding afresh", "path=%s error=\"%s\"",
		    a->cfg.handover_socket, proxy_strerror(r));
	else if (r > 0)
		log_info("listening sockets taken over", "path=%s sockets=%d",
		    a->cfg.handover_socket, r);
	return 0;
}

/* Serves --handover-socket to the next process (after our listeners). */
static int
handover_serve(struct app *a)
{
	int r;

	if (a->cfg.handover_socket[0] == '\0')
		return 0;
	if ((a->hofd = handover_listen(a->cfg.handover_socket)) < 0)
		return a->hofd;
	a->hoio.cb = on_handover;
	a->hoio.arg = a;
	if ((r = loop_io_start(a->loop, &a->hoio, a->hofd, LOOP_READ)) < 0)
		return r;
	log_info("handover socket listening", "path=%s",
	    a->cfg.handover_socket);
	return 0;
}

/*
 * "dotproxy healthcheck [URL]" for images without curl: GET URL (default
 * /readyz on the --metrics address from DOTPROXY_METRICS) and exit 0 on
 * HTTP 200, 1 otherwise.
 */
static int
healthcheck(int argc, char *argv[])
{
	const char *env = getenv("DOTPROXY_METRICS");
	char url[300];
	int status;

	if (argc > 3 || (argc == 3 && strncmp(argv[2], "http://", 7) != 0)) {
		fprintf(stderr, "dotproxy: usage: dotproxy healthcheck "
		    "[http://HOST:PORT/PATH]\n");
		return 2;
	}
	if (argc == 3)
		(void)snprintf(url, sizeof(url), "%s", argv[2]);
	else if (env != NULL && env[0] != '\0') {
		const char *h = env;

		/* A wildcard listener is reached on loopback. */
		if (strncmp(env, "0.0.0.0:", 8) == 0)
			h = "127.0.0.1:", env += 8;
		else if (strncmp(env, "[::]:", 5) == 0)
			h = "[::1]:", env += 5;
		else
			h = "";
		(void)snprintf(url, sizeof(url), "http://%s%s/readyz", h, env);
	} else {
		fprintf(stderr, "dotproxy: healthcheck: no URL and no "
		    "DOTPROXY_METRICS to derive one from\n");
		return 2;
	}
	status = http_get(url, 2000);
	if (status == 200) {
		printf("healthy: %s answered 200\n", url);
		return 0;
	}
	if (status > 0)
		printf("unhealthy: %s answered %d\n", url, status);
	else
		printf("unhealthy: %s: %s\n", url, proxy_strerror(status));
	return 1;
}

/* --workers: auto is the CPUs we may run on, but one for a sidecar
 * (--transparent serves one pod: more loops would only split its cache). */
static unsigned
worker_count(const struct config *cfg)
{
	if (cfg->workers > 0)
		return cfg->workers;
	return cfg->transparent ? 1 : worker_cpus();
}

/* metrics.c reads a worker's counters under its lock. */
static void
metrics_lock(void *w, bool on)
{
	worker_lock(w, on);
}

/* Makes the workers: one runs inline on the main loop; more each get a
 * loop and, later, a thread. */
static int
make_workers(struct app *a)
{
	char err[512];
	unsigned i;

	if ((a->w = calloc(a->nw, sizeof(*a->w))) == NULL ||
	    (a->mw = calloc(a->nw, sizeof(*a->mw))) == NULL)
		return -ENOMEM;
	for (i = 0; i < a->nw; i++) {
		struct tls_ctx *tls = a->tls;

		a->tls = NULL;
		if (tls == NULL &&
		    (tls = tls_ctx_new(a->cfg.ca_file, err, sizeof(err))) == NULL) {
			log_error("cannot load the CA file", "error=\"%s\"", err);
			return -EINVAL;
		}
		if ((a->w[i] = worker_new(i, a->nw == 1 ? a->loop : NULL, tls,
		    &a->cfg, &a->rc)) == NULL)
			return -ENOMEM;
		a->mw[i].qt = worker_qt(a->w[i]);
		a->mw[i].udp = worker_udp(a->w[i]);
		a->mw[i].tcp = worker_tcp(a->w[i]);
		a->mw[i].lock = metrics_lock;
		a->mw[i].lock_arg = a->w[i];
	}
	return 0;
}

int
main(int argc, char *argv[])
{
	struct app *a;
	char err[512];
	int status = 1, r;
	unsigned i;

	if (argc >= 2 && strcmp(argv[1], "healthcheck") == 0)
		return healthcheck(argc, argv);
	if ((a = calloc(1, sizeof(*a))) == NULL)
		return 1;
	a->sigfd = -1;
	a->hofd = -1;
	a->metrics_fd = -1;
	a->argc = argc;
	a->argv = argv;
	a->grace.cb = on_grace_end;
	a->grace.arg = a;
	if (load_config(&a->cfg, argc, argv, err, sizeof(err)) < 0) {
		fprintf(stderr, "dotproxy: %s\n", err);
		free(a);
		return 2;
	}
	if (a->cfg.action == CFG_HELP) {
		config_usage(stdout);
		free(a);
		return 0;
	}
	if (a->cfg.action == CFG_VERSION) {
		printf("dotproxy %s (%s)\n", DOTPROXY_VERSION, DOTPROXY_REVISION);
		free(a);
		return 0;
	}
	log_setup(a->cfg.log_level, a->cfg.log_format);
	if (a->cfg.transparent && geteuid() == 0 && !a->cfg.allow_root) {
		fprintf(stderr, "dotproxy: --transparent: refusing to run as UID 0: "
		    "the redirect excludes the proxy's own UID, so as root its "
		    "queries would loop (run as the UID given to dotproxy-init "
		    "--proxy-uid, or pass --allow-root)\n");
		free(a);
		return 2;
	}
	a->nw = worker_count(&a->cfg);
	a->nofile = raise_nofile();
	/* Each worker has its own listeners, upstream connections and
	 * clients: each gets its share of the descriptors. */
	if (apply_fd_budget(&a->cfg, a->nofile / a->nw, false) < 0) {
		fprintf(stderr, "dotproxy: the descriptor limit (%llu) is too low "
		    "for the listeners and upstream connections configured%s\n",
		    (unsigned long long)a->nofile, a->nw > 1 ?
		    " (per worker: try fewer --workers)" : "");
		free(a);
		return 2;
	}
	read_resolv(a);
	if ((a->tls = tls_ctx_new(a->cfg.ca_file, err, sizeof(err))) == NULL) {
		fprintf(stderr, "dotproxy: --ca-file: %s\n", err);
		free(a);
		return 2;
	}
	/* Nothing here needs privileges it could gain by exec. */
	(void)prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	if (query_cache_check(&a->cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "dotproxy: %s\n", err);
		free(a);
		return 2;
	}
	log_config(&a->cfg, "dotproxy starting");
	if ((a->loop = loop_new(NULL, NULL)) == NULL ||
	    (r = make_workers(a)) < 0) {
		log_error("cannot set up the workers", "workers=%u", a->nw);
		goto out;
	}
	if ((r = setup_signals(a)) < 0) {
		log_error("cannot set up signals", "error=\"%s\"", proxy_strerror(r));
		goto out;
	}
	if ((r = handover_start(a)) < 0) {
		log_error("out of memory at start", "%s", "");
		goto out;
	}
	if ((r = bind_listeners(a)) <= 0) {
		if (r == 0)
			log_error("no listener could be bound", "%s", "");
		goto out;
	}
	if ((r = handover_serve(a)) < 0) {
		log_error("cannot serve the handover socket", "path=%s "
		    "error=\"%s\"", a->cfg.handover_socket, proxy_strerror(r));
		goto out;
	}
	a->msrc.qt = worker_qt(a->w[0]);
	a->msrc.udp = worker_udp(a->w[0]);
	a->msrc.tcp = worker_tcp(a->w[0]);
	a->msrc.workers = a->mw;
	a->msrc.nworkers = a->nw;
	a->msrc.version = DOTPROXY_VERSION;
	a->msrc.revision = DOTPROXY_REVISION;
	a->msrc.start_wall_s = (uint64_t)time(NULL);
	a->msrc.transparent = a->cfg.transparent;
	a->msrc.config_ok = true;
	a->msrc.listening = true;
	if (a->cfg.has_metrics) {
		char text[80];

		config_addr_text(&a->cfg.metrics, text, sizeof(text));
		a->metrics = metrics_new(a->loop, (const struct sockaddr *)
		    &a->cfg.metrics.ss, a->cfg.metrics.len, a->metrics_fd,
		    &a->msrc, &r);
		a->metrics_fd = -1;
		if (a->metrics == NULL) {
			log_error("cannot listen for metrics", "listen=%s error=\"%s\"",
			    text, proxy_strerror(r));
			goto out;
		}
		log_info("metrics listening", "listen=%s paths=/metrics,/livez,/readyz",
		    text);
	}
	/* Threads before the filter: creating one needs clone, which the
	 * filter refuses; the filter then covers them all (TSYNC). */
	for (i = 0; a->nw > 1 && i < a->nw; i++)
		if ((r = worker_start(a->w[i])) < 0) {
			log_error("cannot start a worker", "worker=%u error=\"%s\"",
			    i, proxy_strerror(r));
			goto out;
		}
	if (a->cfg.seccomp) {
		if ((r = sandbox_install()) < 0) {
			log_error("cannot install the seccomp filter", "error=\"%s\" "
			    "hint=\"--seccomp=off runs without it\"",
			    proxy_strerror(r));
			goto out;
		}
		log_info("seccomp filter installed", "%s", "refused=EPERM");
	}
	log_info("ready", "workers=%u", a->nw);
	while (!a->stop) {
		if ((r = loop_run_once(a->loop, -1)) < 0) {
			log_error("event loop failed", "error=\"%s\"",
			    proxy_strerror(r));
			goto out;
		}
	}
	drain(a);
	log_info("stopped", "%s", "");
	status = 0;
out:
	loop_timer_stop(a->loop, &a->grace);
	metrics_free(a->metrics);
	for (i = 0; a->w != NULL && i < a->nw; i++)
		worker_free(a->w[i]);
	free(a->w);
	free(a->mw);
	if (a->inv != NULL)
		(void)handover_close_rest(a->inv);
	free(a->inv);
	if (a->metrics_fd >= 0)
		close(a->metrics_fd);
	if (a->hofd >= 0) {
		loop_io_stop(a->loop, &a->hoio);
		close(a->hofd);
	}
	if (a->sigfd != -1) {
		loop_io_stop(a->loop, &a->sigio);
		close(a->sigfd);
	}
	loop_free(a->loop);
	tls_ctx_free(a->tls);
	free(a);
	return status;
}
