/*
 * Configuration: one table of options (flag, DOTPROXY_* twin, default,
 * range, help text), a small long-option scanner, and the validators for
 * addresses, upstream specs and SPKI pins. Pure layer: no sockets, no
 * files read, no globals, no logging; getopt is not used because it keeps
 * global state. Every failure comes back as -E_USAGE with one line in the
 * caller's buffer naming the option the way the user gave it.
 */
#include "config.h"

#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dns.h"
#include "errors.h"
#include "log.h"

#define CFG_DEFAULT_PORT	853
#define CFG_HOSTNAME_MAX	253	/* text form, no trailing dot */
#define CFG_PIN_LEN		32	/* SHA-256 */
#define CFG_MSG_MAX		512	/* one error line before the prefix */
#define CFG_SHOW_MAX		64	/* user text quoted in an error line */
#define CFG_ITEM_MAX		512	/* one list item */

enum opt_id {
	OPT_LISTEN = 0,
	OPT_METRICS,
	OPT_UPSTREAM,
	OPT_CA_FILE,
	OPT_TIMEOUT,
	OPT_IDLE_TIMEOUT,
	OPT_CLIENT_IDLE,
	OPT_CONNECTIONS,
	OPT_MAX_INFLIGHT,
	OPT_MAX_CLIENTS,
	OPT_MAX_PIPELINE,
	OPT_SHUTDOWN_GRACE,
	OPT_CACHE_SIZE,
	OPT_CACHE_BYTES,
	OPT_CACHE_MIN_TTL,
	OPT_CACHE_MAX_TTL,
	OPT_LOCAL_CACHE_MAX_TTL,
	OPT_CACHE_SERVFAIL_TTL,
	OPT_CACHE_STALE_MAX,
	OPT_CACHE_CLIENT_TIMEOUT,
	OPT_LOG_LEVEL,
	OPT_LOG_FORMAT,
	OPT_LOG_QUERIES,
	OPT_LOCAL_ZONE,
	OPT_ALLOW_ROOT,
	OPT_TRANSPARENT,
	OPT_RESOLV_CONF,
	OPT_CONFIG,
	OPT_MAX_PLAIN,
	OPT_SECCOMP,
	OPT_WORKERS,
	OPT_HANDOVER_SOCKET,
	OPT_HELP,
	OPT_VERSION,
	OPT_COUNT
};

enum opt_kind {
	OK_VALUE = 0,	/* one value; a later one replaces it */
	OK_LIST,	/* repeatable; items may also be comma-separated */
	OK_NUM,		/* unsigned decimal in [min, max] */
	OK_BOOL,	/* no value on the command line; a boolean in env */
	OK_ACTION	/* --help, --version: no value, no env twin */
};

enum opt_group {
	G_LISTEN = 0,
	G_UPSTREAM,
	G_LIMITS,
	G_CACHE,
	G_LOGGING,
	G_TRANSPARENT,
	G_OTHER,
	G_COUNT
};

struct opt {
	const char	*name;		/* flag without the leading "--" */
	const char	*env;		/* environment twin, NULL for none */
	enum opt_id	 id;
	enum opt_kind	 kind;
	enum opt_group	 group;
	const char	*metavar;	/* value syntax for --help, or NULL */
	const char	*def;		/* default as a value, or NULL */
	const char	*defshow;	/* default in --help, or NULL */
	unsigned	 min, max;	/* OK_NUM: inclusive range */
	const char	*unit;		/* OK_NUM: " ms" or "" */
	const char	*help;		/* lines separated by '\n' */
};

/*
 * The single source of truth for names, defaults, ranges and --help.
 * Defaults are plain value strings applied through the same code as the
 * environment and the flags, so a default can never bypass validation.
 */
static const struct opt opts[] = {
	{ .name = "listen", .env = "DOTPROXY_LISTEN", .id = OPT_LISTEN,
	  .kind = OK_LIST, .group = G_LISTEN, .metavar = "ADDR:PORT",
	  .def = "127.0.0.1:15353,[::1]:15353",
	  .help = "Accept plain DNS here, UDP and TCP. Repeatable; IPv6 as\n"
	  "[ADDR]:PORT. Keep to loopback for transparent use: answers\n"
	  "must leave from the address the application sent to." },
	{ .name = "metrics", .env = "DOTPROXY_METRICS", .id = OPT_METRICS,
	  .kind = OK_VALUE, .group = G_LISTEN, .metavar = "ADDR:PORT",
	  .defshow = "off",
	  .help = "HTTP listener for /metrics (Prometheus text), /livez and\n"
	  "/readyz. \"off\" turns it off again." },
	{ .name = "upstream", .env = "DOTPROXY_UPSTREAM", .id = OPT_UPSTREAM,
	  .kind = OK_LIST, .group = G_UPSTREAM,
	  .metavar = "IP[@PORT][#AUTH-NAME][^PIN]...",
	  .def = "1.1.1.1@853#cloudflare-dns.com,"
	  "1.0.0.1@853#cloudflare-dns.com",
	  .help = "DNS-over-TLS server. Repeatable. PORT defaults to 853.\n"
	  "AUTH-NAME is sent as SNI and must match the certificate. PIN\n"
	  "is the base64 SHA-256 of the server's SubjectPublicKeyInfo\n"
	  "(up to 4). At least a name or a pin is required: never\n"
	  "unauthenticated TLS (RFC 8310 strict profile). IPv6 goes\n"
	  "without brackets: 2001:db8::1@853#dot.example" },
	{ .name = "ca-file", .env = "DOTPROXY_CA_FILE", .id = OPT_CA_FILE,
	  .kind = OK_VALUE, .group = G_UPSTREAM, .metavar = "PATH",
	  .defshow = "the system store",
	  .help = "PEM bundle of CAs trusted for upstream certificates." },
	{ .name = "timeout", .env = "DOTPROXY_TIMEOUT", .id = OPT_TIMEOUT,
	  .kind = OK_NUM, .group = G_LIMITS, .metavar = "MS", .def = "3000",
	  .min = 100, .max = 60000, .unit = " ms",
	  .help = "Deadline for one query; SERVFAIL when it passes." },
	{ .name = "idle-timeout", .env = "DOTPROXY_IDLE_TIMEOUT",
	  .id = OPT_IDLE_TIMEOUT, .kind = OK_NUM, .group = G_LIMITS,
	  .metavar = "MS", .def = "8000", .min = 100, .max = 600000,
	  .unit = " ms",
	  .help = "Close an idle upstream TLS connection after this long;\n"
	  "keep it below the server's own (Cloudflare: about 10 s)." },
	{ .name = "client-idle-timeout", .env = "DOTPROXY_CLIENT_IDLE_TIMEOUT",
	  .id = OPT_CLIENT_IDLE, .kind = OK_NUM, .group = G_LIMITS,
	  .metavar = "MS", .def = "10000", .min = 100, .max = 600000,
	  .unit = " ms",
	  .help = "Close an idle TCP client connection after this long." },
	{ .name = "connections", .env = "DOTPROXY_CONNECTIONS",
	  .id = OPT_CONNECTIONS, .kind = OK_NUM, .group = G_LIMITS,
	  .metavar = "N", .def = "2", .min = 1, .max = 16, .unit = "",
	  .help = "TLS connections kept open per upstream." },
	{ .name = "max-inflight", .env = "DOTPROXY_MAX_INFLIGHT",
	  .id = OPT_MAX_INFLIGHT, .kind = OK_NUM, .group = G_LIMITS,
	  .metavar = "N", .def = "1024", .min = 1, .max = 4096, .unit = "",
	  .help = "Queries in flight on one TLS connection." },
	{ .name = "max-clients", .env = "DOTPROXY_MAX_CLIENTS",
	  .id = OPT_MAX_CLIENTS, .kind = OK_NUM, .group = G_LIMITS,
	  .metavar = "N", .def = "1024", .min = 1, .max = 65536, .unit = "",
	  .help = "TCP client connections open at once." },
	{ .name = "max-pipeline", .env = "DOTPROXY_MAX_PIPELINE",
	  .id = OPT_MAX_PIPELINE, .kind = OK_NUM, .group = G_LIMITS,
	  .metavar = "N", .def = "128", .min = 1, .max = 4096, .unit = "",
	  .help = "Queries pending on one TCP client connection." },
	{ .name = "max-plain", .env = "DOTPROXY_MAX_PLAIN",
	  .id = OPT_MAX_PLAIN, .kind = OK_NUM, .group = G_LIMITS,
	  .metavar = "N", .def = "256", .min = 1, .max = 16384, .unit = "",
	  .help = "Local-zone queries in flight in plain DNS (one socket\n"
	  "each); above it they are answered SERVFAIL at once." },
	{ .name = "shutdown-grace", .env = "DOTPROXY_SHUTDOWN_GRACE",
	  .id = OPT_SHUTDOWN_GRACE, .kind = OK_NUM, .group = G_LIMITS,
	  .metavar = "MS", .def = "3000", .min = 0, .max = 120000,
	  .unit = " ms",
	  .help = "After SIGTERM, keep answering this long with /readyz at\n"
	  "503 (lameduck), then finish what is in flight and exit." },
	{ .name = "cache-size", .env = "DOTPROXY_CACHE_SIZE",
	  .id = OPT_CACHE_SIZE, .kind = OK_NUM, .group = G_CACHE,
	  .metavar = "N", .def = "10000", .min = 0, .max = 1000000, .unit = "",
	  .help = "Answers kept in memory, in entries; 0 turns the cache (and\n"
	  "serve-stale and prefetch) off. Identical questions in flight\n"
	  "are shared either way." },
	{ .name = "cache-bytes", .env = "DOTPROXY_CACHE_BYTES",
	  .id = OPT_CACHE_BYTES, .kind = OK_NUM, .group = G_CACHE,
	  .metavar = "BYTES", .def = "16777216", .min = 65536,
	  .max = 1073741824, .unit = " bytes",
	  .help = "Most bytes the cached answers and their bookkeeping hold." },
	{ .name = "cache-min-ttl", .env = "DOTPROXY_CACHE_MIN_TTL",
	  .id = OPT_CACHE_MIN_TTL, .kind = OK_NUM, .group = G_CACHE,
	  .metavar = "S", .def = "0", .min = 0, .max = 3600, .unit = " s",
	  .help = "Keep answers at least this long (unbound's default, 0:\n"
	  "never stretch what the authority said; TTL 0 is not cached)." },
	{ .name = "cache-max-ttl", .env = "DOTPROXY_CACHE_MAX_TTL",
	  .id = OPT_CACHE_MAX_TTL, .kind = OK_NUM, .group = G_CACHE,
	  .metavar = "S", .def = "86400", .min = 1, .max = 604800,
	  .unit = " s",
	  .help = "Keep answers at most this long (unbound's and dnsdist's\n"
	  "default). Negative answers: at most 3600 s." },
	{ .name = "local-cache-max-ttl", .env = "DOTPROXY_LOCAL_CACHE_MAX_TTL",
	  .id = OPT_LOCAL_CACHE_MAX_TTL, .kind = OK_NUM, .group = G_CACHE,
	  .metavar = "S", .def = "5", .min = 0, .max = 86400, .unit = " s",
	  .help = "Keep local-zone answers at most this long (cluster records\n"
	  "change; CoreDNS's kubernetes plugin answers with TTL 5).\n"
	  "0: local-zone answers are not cached." },
	{ .name = "cache-servfail-ttl", .env = "DOTPROXY_CACHE_SERVFAIL_TTL",
	  .id = OPT_CACHE_SERVFAIL_TTL, .kind = OK_NUM, .group = G_CACHE,
	  .metavar = "S", .def = "5", .min = 1, .max = 300, .unit = " s",
	  .help = "Remember a failed resolution (upstream SERVFAIL, timeout)\n"
	  "this long, so a dead name cannot become a query storm; each\n"
	  "failure again right after doubles it, up to 300 s (RFC 9520:\n"
	  "at least 1 s, at most 5 minutes)." },
	{ .name = "cache-stale-max", .env = "DOTPROXY_CACHE_STALE_MAX",
	  .id = OPT_CACHE_STALE_MAX, .kind = OK_NUM, .group = G_CACHE,
	  .metavar = "S", .def = "86400", .min = 0, .max = 604800,
	  .unit = " s",
	  .help = "Serve an expired answer (TTL 30, RFC 8767) up to this long\n"
	  "past its expiry when the upstreams fail or are slow; 0: never." },
	{ .name = "cache-client-timeout", .env = "DOTPROXY_CACHE_CLIENT_TIMEOUT",
	  .id = OPT_CACHE_CLIENT_TIMEOUT, .kind = OK_NUM, .group = G_CACHE,
	  .metavar = "MS", .def = "1800", .min = 1, .max = 60000,
	  .unit = " ms",
	  .help = "With an expired answer at hand, wait this long for a fresh\n"
	  "one before serving the stale one (RFC 8767's 1.8 s)." },
	{ .name = "log-level", .env = "DOTPROXY_LOG_LEVEL", .id = OPT_LOG_LEVEL,
	  .kind = OK_VALUE, .group = G_LOGGING,
	  .metavar = "debug|info|warn|error", .def = "info",
	  .help = "Least severe level written to stderr." },
	{ .name = "log-format", .env = "DOTPROXY_LOG_FORMAT",
	  .id = OPT_LOG_FORMAT, .kind = OK_VALUE, .group = G_LOGGING,
	  .metavar = "text|json", .def = "text",
	  .help = "text is logfmt; json is one object per line." },
	{ .name = "log-queries", .env = "DOTPROXY_LOG_QUERIES",
	  .id = OPT_LOG_QUERIES, .kind = OK_BOOL, .group = G_LOGGING,
	  .defshow = "off",
	  .help = "Log the name of every query (names are private data)." },
	{ .name = "local-zone", .env = "DOTPROXY_LOCAL_ZONE",
	  .id = OPT_LOCAL_ZONE, .kind = OK_LIST, .group = G_TRANSPARENT,
	  .metavar = "ZONE", .defshow = "none",
	  .help = "Names at or under ZONE go in plain DNS to the resolver the\n"
	  "application addressed, not over TLS: the cluster domain,\n"
	  "search suffixes, reverse zones. Repeatable." },
	{ .name = "allow-root", .env = "DOTPROXY_ALLOW_ROOT",
	  .id = OPT_ALLOW_ROOT, .kind = OK_BOOL, .group = G_TRANSPARENT,
	  .defshow = "off",
	  .help = "Run even as UID 0. The redirect rules exclude the proxy's\n"
	  "own UID; as root it would usually loop, so it is refused." },
	{ .name = "transparent", .env = "DOTPROXY_TRANSPARENT",
	  .id = OPT_TRANSPARENT, .kind = OK_BOOL, .group = G_TRANSPARENT,
	  .defshow = "off",
	  .help = "Running behind dotproxy-init's redirect: the search domains\n"
	  "of --resolv-conf, single-label names and private reverse\n"
	  "zones become local zones too, and UID 0 is refused." },
	{ .name = "resolv-conf", .env = "DOTPROXY_RESOLV_CONF",
	  .id = OPT_RESOLV_CONF, .kind = OK_VALUE, .group = G_TRANSPARENT,
	  .metavar = "PATH", .def = "/etc/resolv.conf",
	  .help = "Where the namespace's resolver and search list are read:\n"
	  "local-zone queries whose original destination is unknown go\n"
	  "to its first nameserver." },
	{ .name = "seccomp", .env = "DOTPROXY_SECCOMP", .id = OPT_SECCOMP,
	  .kind = OK_VALUE, .group = G_OTHER, .metavar = "on|off",
	  .def = "on",
	  .help = "After start-up, refuse every system call the proxy does\n"
	  "not need (EPERM, logged by the kernel). off is for debugging." },
	{ .name = "workers", .env = "DOTPROXY_WORKERS", .id = OPT_WORKERS,
	  .kind = OK_VALUE, .group = G_OTHER, .metavar = "N|auto",
	  .def = "auto",
	  .help = "Event loops, one thread each, sharing nothing: each has its\n"
	  "own listening sockets (SO_REUSEPORT), upstream connections\n"
	  "and cache. auto: the CPUs the process may run on, but 1 with\n"
	  "--transparent (a sidecar serves one pod). 1 to 256." },
	{ .name = "handover-socket", .env = "DOTPROXY_HANDOVER_SOCKET",
	  .id = OPT_HANDOVER_SOCKET, .kind = OK_VALUE, .group = G_OTHER,
	  .metavar = "PATH", .defshow = "none",
	  .help = "Unix socket for upgrades without a lost query: at start,\n"
	  "take the listening sockets of the process serving there; then\n"
	  "serve them to the next one. After a handover, SIGTERM stops\n"
	  "at once (no lameduck): the successor reads the same sockets." },
	{ .name = "config", .env = "DOTPROXY_CONFIG", .id = OPT_CONFIG,
	  .kind = OK_VALUE, .group = G_OTHER, .metavar = "FILE",
	  .defshow = "none",
	  .help = "Read settings from a file of \"key value\" lines." },
	{ .name = "help", .id = OPT_HELP, .kind = OK_ACTION, .group = G_OTHER,
	  .help = "Print this help and exit." },
	{ .name = "version", .id = OPT_VERSION, .kind = OK_ACTION,
	  .group = G_OTHER, .help = "Print the version and exit." },
};

#define NOPTS	(sizeof(opts) / sizeof(opts[0]))

static const char *const group_titles[G_COUNT] = {
	[G_LISTEN] = "Listening",
	[G_UPSTREAM] = "Upstreams",
	[G_LIMITS] = "Limits",
	[G_CACHE] = "Cache",
	[G_LOGGING] = "Logging",
	[G_TRANSPARENT] = "Transparent mode",
	[G_OTHER] = "Other",
};

/* Walks argv one option at a time; see scan_next(). */
struct argscan {
	int		 argc;
	char *const	*argv;		/* borrowed: the caller's argv */
	int		 i;		/* next index to read */
};

__attribute__((format(printf, 3, 4))) static void
errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	n = vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	if (n < 0)
		err[0] = '\0';
	/* A longer line is cut by vsnprintf, still terminated: fine. */
}

/*
 * Copies user text s[0..n) into out (cap bytes) for an error line:
 * printable ASCII kept, any other byte shown as '?', at most CFG_SHOW_MAX
 * characters and then "...". Returns out.
 */
static const char *
show(char *out, size_t cap, const char *s, size_t n)
{
	size_t i, o = 0;

	for (i = 0; i < n && o + 4 < cap; i++) {
		unsigned char c = (unsigned char)s[i];

		if (i == CFG_SHOW_MAX) {
			memcpy(out + o, "...", 3);
			o += 3;
			break;
		}
		out[o++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	out[o] = '\0';
	return out;
}

/* Copies s into out (cap > 3), ending in "..." if it had to be cut. */
static void
copy_cut(char *out, size_t cap, const char *s)
{
	size_t n = strlen(s);

	if (n < cap) {
		memcpy(out, s, n + 1);
		return;
	}
	memcpy(out, s, cap - 4);
	memcpy(out + cap - 4, "...", 4);
}

/*
 * Parses s[0..n) as an unsigned decimal: digits only, no sign, no
 * spaces. Returns 0, -1 if it is not a number, -2 if it is outside
 * [min, max] (a huge number is out of range, not "not a number").
 */
static int
parse_uint(const char *s, size_t n, unsigned min, unsigned max,
    unsigned *out)
{
	unsigned long long v = 0;
	size_t i;

	if (n == 0)
		return -1;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		if (v <= 0xffffffffULL)
			v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v < min || v > max)
		return -2;
	*out = (unsigned)v;
	return 0;
}

static int
parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "1", "true", "yes", "on" };
	static const char *const no[] = { "0", "false", "no", "off" };
	size_t i;

	for (i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -1;
}

/* Writes a port number error for p[0..n) into msg. */
static void
port_error(const char *item, const char *p, size_t n, int r, char *msg,
    size_t cap)
{
	char a[CFG_SHOW_MAX + 8], b[CFG_SHOW_MAX + 8];

	errf(msg, cap, "%s: port '%s' is %s (1..65535)",
	    show(a, sizeof(a), item, strlen(item)), show(b, sizeof(b), p, n),
	    r == -1 ? "not a number" : "out of range");
}

static void
set_sockaddr(struct cfg_addr *a, int family, const void *ip, unsigned port)
{
	memset(a, 0, sizeof(*a));
	if (family == AF_INET) {
		struct sockaddr_in sin;

		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_port = htons((uint16_t)port);
		memcpy(&sin.sin_addr, ip, sizeof(sin.sin_addr));
		memcpy(&a->ss, &sin, sizeof(sin));
		a->len = sizeof(sin);
	} else {
		struct sockaddr_in6 sin6;

		memset(&sin6, 0, sizeof(sin6));
		sin6.sin6_family = AF_INET6;
		sin6.sin6_port = htons((uint16_t)port);
		memcpy(&sin6.sin6_addr, ip, sizeof(sin6.sin6_addr));
		memcpy(&a->ss, &sin6, sizeof(sin6));
		a->len = sizeof(sin6);
	}
}

/*
 * Parses the IP text s[0..n) as IPv4, or as IPv6 if v6ok. Returns the
 * family, or 0 if it is neither. ip needs 16 bytes.
 */
static int
parse_ip(const char *s, size_t n, bool v6ok, uint8_t *ip)
{
	char tmp[INET6_ADDRSTRLEN + 1];

	if (n == 0 || n >= sizeof(tmp))
		return 0;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	if (inet_pton(AF_INET, tmp, ip) == 1)
		return AF_INET;
	if (v6ok && inet_pton(AF_INET6, tmp, ip) == 1)
		return AF_INET6;
	return 0;
}

int
config_parse_addr(const char *s, struct cfg_addr *a, char *err,
    size_t errlen)
{
	char a1[CFG_SHOW_MAX + 8], a2[CFG_SHOW_MAX + 8];
	const char *host, *port, *close, *colon;
	size_t hlen;
	unsigned pnum;
	uint8_t ip[16];
	int family, r;

	memset(a, 0, sizeof(*a));
	show(a1, sizeof(a1), s, strlen(s));
	if (s[0] == '[') {
		if ((close = strchr(s, ']')) == NULL) {
			errf(err, errlen, "%s: missing ']' (expected "
			    "[IPV6]:PORT)", a1);
			return -E_USAGE;
		}
		host = s + 1;
		hlen = (size_t)(close - host);
		if (close[1] != ':') {
			errf(err, errlen, "%s: no port (expected [IPV6]:PORT)",
			    a1);
			return -E_USAGE;
		}
		port = close + 2;
		family = parse_ip(host, hlen, true, ip);
		if (family != AF_INET6) {
			errf(err, errlen, "%s: '%s' is not an IPv6 address", a1,
			    show(a2, sizeof(a2), host, hlen));
			return -E_USAGE;
		}
	} else {
		if ((colon = strrchr(s, ':')) == NULL) {
			errf(err, errlen, "%s: no port (expected ADDR:PORT or "
			    "[IPV6]:PORT)", a1);
			return -E_USAGE;
		}
		host = s;
		hlen = (size_t)(colon - s);
		port = colon + 1;
		if (memchr(host, ':', hlen) != NULL) {
			errf(err, errlen, "%s: an IPv6 address needs brackets "
			    "([IPV6]:PORT)", a1);
			return -E_USAGE;
		}
		family = parse_ip(host, hlen, false, ip);
		if (family != AF_INET) {
			errf(err, errlen, "%s: '%s' is not an IP address", a1,
			    show(a2, sizeof(a2), host, hlen));
			return -E_USAGE;
		}
	}
	if ((r = parse_uint(port, strlen(port), 1, 65535, &pnum)) != 0) {
		port_error(s, port, strlen(port), r, err, errlen);
		return -E_USAGE;
	}
	set_sockaddr(a, family, ip, pnum);
	return 0;
}

/*
 * Checks s[0..n) as a DNS host name: letters, digits and '-', labels of
 * 1..63 not starting or ending with '-', at most 253 characters once one
 * trailing dot is stripped. Writes it, without the dot, to out
 * (DNS_NAME_MAX + 1 bytes). Returns 0 or -1 with why set.
 */
static int
check_hostname(const char *s, size_t n, char *out, const char **why)
{
	size_t i, label = 0;

	if (n > 0 && s[n - 1] == '.')
		n--;
	if (n == 0) {
		*why = "is empty";
		return -1;
	}
	if (n > CFG_HOSTNAME_MAX) {
		*why = "is longer than 253 characters";
		return -1;
	}
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (c == '.') {
			if (label == 0) {
				*why = "has an empty label";
				return -1;
			}
			if (s[i - 1] == '-') {
				*why = "has a label ending in '-'";
				return -1;
			}
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-')) {
			*why = "may hold only letters, digits, '-' and '.'";
			return -1;
		}
		if (c == '-' && label == 0) {
			*why = "has a label starting with '-'";
			return -1;
		}
		if (++label > DNS_LABEL_MAX) {
			*why = "has a label longer than 63 characters";
			return -1;
		}
	}
	if (s[n - 1] == '-') {
		*why = "has a label ending in '-'";
		return -1;
	}
	memcpy(out, s, n);
	out[n] = '\0';
	return 0;
}

/* Value of one standard base64 character, or -1. */
static int
b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/*
 * Strict standard base64 (RFC 4648 section 4): length a multiple of 4,
 * '=' only as padding at the very end, unused bits zero. Writes at most
 * cap bytes to out but counts them all, so *outlen is the true decoded
 * length even when it exceeds cap. Returns 0 or -1 if s is not base64.
 */
static int
b64_decode(const char *s, size_t n, uint8_t *out, size_t cap,
    size_t *outlen)
{
	size_t i, o = 0;
	uint8_t b[3];
	int v[4], k, nb;

	if (n == 0 || n % 4 != 0)
		return -1;
	for (i = 0; i < n; i += 4) {
		bool last = i + 4 == n;

		for (k = 0; k < 4; k++)
			v[k] = b64_value((unsigned char)s[i + k]);
		if (v[0] < 0 || v[1] < 0)
			return -1;
		nb = 3;
		if (last && s[i + 2] == '=' && s[i + 3] == '=') {
			if ((v[1] & 0x0f) != 0)
				return -1;
			v[2] = v[3] = 0;
			nb = 1;
		} else if (last && s[i + 3] == '=') {
			if (v[2] < 0 || (v[2] & 0x03) != 0)
				return -1;
			v[3] = 0;
			nb = 2;
		} else if (v[2] < 0 || v[3] < 0)
			return -1;
		b[0] = (uint8_t)((v[0] << 2) | (v[1] >> 4));
		b[1] = (uint8_t)(((v[1] & 0x0f) << 4) | (v[2] >> 2));
		b[2] = (uint8_t)(((v[2] & 0x03) << 6) | v[3]);
		for (k = 0; k < nb; k++, o++)
			if (o < cap)
				out[o] = b[k];
	}
	*outlen = o;
	return 0;
}

int
config_parse_upstream(const char *s, struct cfg_upstream *up, char *err,
    size_t errlen)
{
	static const char delims[] = "@#^";
	char item[CFG_SHOW_MAX + 8], a2[CFG_SHOW_MAX + 8];
	const char *p, *ip_s, *why;
	size_t n, ip_n, pinlen;
	unsigned port = CFG_DEFAULT_PORT;
	uint8_t ip[16];
	int family, r;

	memset(up, 0, sizeof(*up));
	copy_cut(up->text, sizeof(up->text), s);
	show(item, sizeof(item), s, strlen(s));

	/* IP, optionally in brackets, up to the first delimiter. */
	ip_s = s;
	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (close == NULL) {
			errf(err, errlen, "%s: missing ']'", item);
			return -E_USAGE;
		}
		ip_s = s + 1;
		ip_n = (size_t)(close - ip_s);
		p = close + 1;
		if (*p != '\0' && strchr(delims, *p) == NULL) {
			errf(err, errlen, "%s: unexpected text after ']' "
			    "(expected IP[@PORT][#AUTH-NAME][^PIN]...)", item);
			return -E_USAGE;
		}
	} else {
		ip_n = strcspn(s, delims);
		p = s + ip_n;
	}
	if ((family = parse_ip(ip_s, ip_n, true, ip)) == 0) {
		errf(err, errlen, "%s: '%s' is not an IP address", item,
		    show(a2, sizeof(a2), ip_s, ip_n));
		return -E_USAGE;
	}

	if (*p == '@') {
		p++;
		n = strcspn(p, delims);
		if ((r = parse_uint(p, n, 1, 65535, &port)) != 0) {
			port_error(s, p, n, r, err, errlen);
			return -E_USAGE;
		}
		p += n;
	}
	if (*p == '#') {
		p++;
		n = strcspn(p, delims);
		if (check_hostname(p, n, up->auth_name, &why) != 0) {
			errf(err, errlen, "%s: auth name '%s' %s", item,
			    show(a2, sizeof(a2), p, n), why);
			return -E_USAGE;
		}
		p += n;
	}
	while (*p == '^') {
		p++;
		n = strcspn(p, delims);
		show(a2, sizeof(a2), p, n);
		if (up->npins == CFG_MAX_PINS) {
			errf(err, errlen, "%s: more than %d pins", item,
			    CFG_MAX_PINS);
			return -E_USAGE;
		}
		if (b64_decode(p, n, up->pins[up->npins], CFG_PIN_LEN,
		    &pinlen) != 0) {
			errf(err, errlen, "%s: pin '%s' is not base64 "
			    "(standard alphabet, padded with '=')", item, a2);
			return -E_USAGE;
		}
		if (pinlen != CFG_PIN_LEN) {
			memset(up->pins[up->npins], 0, CFG_PIN_LEN);
			errf(err, errlen, "%s: pin '%s' decodes to %zu bytes, "
			    "not the 32 of a SHA-256", item, a2, pinlen);
			return -E_USAGE;
		}
		up->npins++;
		p += n;
	}
	if (*p != '\0') {
		errf(err, errlen, "%s: '%c' out of order (expected "
		    "IP[@PORT][#AUTH-NAME][^PIN]...)", item, *p);
		return -E_USAGE;
	}
	if (up->auth_name[0] == '\0' && up->npins == 0) {
		errf(err, errlen, "%s: no auth name (#NAME) and no pin (^PIN): "
		    "refusing unauthenticated TLS (RFC 8310 strict profile)",
		    item);
		return -E_USAGE;
	}
	set_sockaddr(&up->addr, family, ip, port);
	return 0;
}

void
config_addr_text(const struct cfg_addr *a, char *out, size_t cap)
{
	char host[INET6_ADDRSTRLEN];
	int n = -1;

	if (out == NULL || cap == 0)
		return;
	if (a->ss.ss_family == AF_INET) {
		struct sockaddr_in sin;

		memcpy(&sin, &a->ss, sizeof(sin));
		if (inet_ntop(AF_INET, &sin.sin_addr, host, sizeof(host)) !=
		    NULL)
			n = snprintf(out, cap, "%s:%u", host,
			    (unsigned)ntohs(sin.sin_port));
	} else if (a->ss.ss_family == AF_INET6) {
		struct sockaddr_in6 sin6;

		memcpy(&sin6, &a->ss, sizeof(sin6));
		if (inet_ntop(AF_INET6, &sin6.sin6_addr, host, sizeof(host)) !=
		    NULL)
			n = snprintf(out, cap, "[%s]:%u", host,
			    (unsigned)ntohs(sin6.sin6_port));
	}
	if (n < 0)
		snprintf(out, cap, "?");
}

static bool
addr_equal(const struct cfg_addr *a, const struct cfg_addr *b)
{
	return a->len == b->len && memcmp(&a->ss, &b->ss, a->len) == 0;
}

static unsigned *
num_field(struct config *cfg, enum opt_id id)
{
	switch (id) {
	case OPT_TIMEOUT:
		return &cfg->timeout_ms;
	case OPT_IDLE_TIMEOUT:
		return &cfg->idle_timeout_ms;
	case OPT_CLIENT_IDLE:
		return &cfg->client_idle_ms;
	case OPT_CONNECTIONS:
		return &cfg->connections;
	case OPT_MAX_INFLIGHT:
		return &cfg->max_inflight;
	case OPT_MAX_CLIENTS:
		return &cfg->max_clients;
	case OPT_MAX_PIPELINE:
		return &cfg->max_pipeline;
	case OPT_MAX_PLAIN:
		return &cfg->max_plain;
	case OPT_SHUTDOWN_GRACE:
		return &cfg->shutdown_grace_ms;
	case OPT_CACHE_SIZE:
		return &cfg->cache_size;
	case OPT_CACHE_BYTES:
		return &cfg->cache_bytes;
	case OPT_CACHE_MIN_TTL:
		return &cfg->cache_min_ttl;
	case OPT_CACHE_MAX_TTL:
		return &cfg->cache_max_ttl;
	case OPT_LOCAL_CACHE_MAX_TTL:
		return &cfg->local_cache_max_ttl;
	case OPT_CACHE_SERVFAIL_TTL:
		return &cfg->cache_servfail_ttl;
	case OPT_CACHE_STALE_MAX:
		return &cfg->cache_stale_max;
	case OPT_CACHE_CLIENT_TIMEOUT:
		return &cfg->cache_client_timeout_ms;
	default:
		return NULL;
	}
}

static int
set_path(char *dst, const char *val, char *msg, size_t cap)
{
	size_t n = strlen(val);

	if (n == 0) {
		errf(msg, cap, "empty path");
		return -E_USAGE;
	}
	if (n >= CFG_PATH_MAX) {
		errf(msg, cap, "path is longer than %d bytes",
		    CFG_PATH_MAX - 1);
		return -E_USAGE;
	}
	memcpy(dst, val, n + 1);
	return 0;
}

/* Adds one item (NUL-terminated, trimmed) to the list of option o. */
static int
list_add(struct config *cfg, const struct opt *o, const char *item,
    char *msg, size_t cap)
{
	char a[CFG_SHOW_MAX + 8];
	struct cfg_zone *z;

	switch (o->id) {
	case OPT_LISTEN:
		if (cfg->nlisten == CFG_MAX_LISTEN) {
			errf(msg, cap, "more than %d listen addresses",
			    CFG_MAX_LISTEN);
			return -E_USAGE;
		}
		if (config_parse_addr(item, &cfg->listen[cfg->nlisten], msg,
		    cap) != 0)
			return -E_USAGE;
		cfg->nlisten++;
		return 0;
	case OPT_UPSTREAM:
		if (cfg->nupstream == CFG_MAX_UPSTREAMS) {
			errf(msg, cap, "more than %d upstreams",
			    CFG_MAX_UPSTREAMS);
			return -E_USAGE;
		}
		if (config_parse_upstream(item,
		    &cfg->upstream[cfg->nupstream], msg, cap) != 0)
			return -E_USAGE;
		cfg->nupstream++;
		return 0;
	case OPT_LOCAL_ZONE:
		if (cfg->nzones == CFG_MAX_ZONES) {
			errf(msg, cap, "more than %d local zones",
			    CFG_MAX_ZONES);
			return -E_USAGE;
		}
		z = &cfg->zones[cfg->nzones];
		if (dns_name_from_text(item, z->name, &z->len) != 0) {
			memset(z, 0, sizeof(*z));
			errf(msg, cap, "'%s' is not a valid zone name",
			    show(a, sizeof(a), item, strlen(item)));
			return -E_USAGE;
		}
		cfg->nzones++;
		return 0;
	default:
		errf(msg, cap, "not a list");
		return -E_USAGE;
	}
}

/*
 * Adds the comma-separated items of val to the list of option o, after
 * emptying the list unless append. Blanks around items are ignored; an
 * empty item is an error.
 */
static int
list_apply(struct config *cfg, const struct opt *o, const char *val,
    bool append, char *msg, size_t cap)
{
	char item[CFG_ITEM_MAX], a[CFG_SHOW_MAX + 8];
	const char *p = val, *end;
	size_t n;

	if (!append) {
		if (o->id == OPT_LISTEN)
			cfg->nlisten = 0;
		else if (o->id == OPT_UPSTREAM)
			cfg->nupstream = 0;
		else if (o->id == OPT_LOCAL_ZONE)
			cfg->nzones = 0;
	}
	for (;;) {
		end = p + strcspn(p, ",");
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		n = (size_t)(end - p);
		while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		if (n == 0) {
			errf(msg, cap, "empty item in '%s'",
			    show(a, sizeof(a), val, strlen(val)));
			return -E_USAGE;
		}
		if (n >= sizeof(item)) {
			errf(msg, cap, "'%s' is too long",
			    show(a, sizeof(a), p, n));
			return -E_USAGE;
		}
		memcpy(item, p, n);
		item[n] = '\0';
		if (list_add(cfg, o, item, msg, cap) != 0)
			return -E_USAGE;
		if (*end == '\0')
			return 0;
		p = end + 1;
	}
}

/*
 * Applies one value of option o to cfg. val is NULL only for an OK_BOOL
 * flag given without "=VALUE". For lists, append says whether to add to
 * the current list (a repeated flag) or replace it. Returns 0 or -E_USAGE
 * with the reason in msg, without the option name.
 */
static int
apply(struct config *cfg, const struct opt *o, const char *val,
    bool append, char *msg, size_t cap)
{
	char a[CFG_SHOW_MAX + 8];
	bool b;
	int r;

	switch (o->kind) {
	case OK_LIST:
		return list_apply(cfg, o, val, append, msg, cap);
	case OK_NUM:
		r = parse_uint(val, strlen(val), o->min, o->max,
		    num_field(cfg, o->id));
		if (r != 0) {
			errf(msg, cap, "'%s' is %s (%u..%u%s)",
			    show(a, sizeof(a), val, strlen(val)),
			    r == -1 ? "not a number" : "out of range",
			    o->min, o->max, o->unit);
			return -E_USAGE;
		}
		return 0;
	case OK_BOOL:
		b = true;
		if (val != NULL && parse_bool(val, &b) != 0) {
			errf(msg, cap, "'%s' is not a boolean (1/true/yes/on "
			    "or 0/false/no/off)", show(a, sizeof(a), val,
			    strlen(val)));
			return -E_USAGE;
		}
		if (o->id == OPT_LOG_QUERIES)
			cfg->log_queries = b;
		else if (o->id == OPT_TRANSPARENT)
			cfg->transparent = b;
		else
			cfg->allow_root = b;
		return 0;
	case OK_VALUE:
		break;
	case OK_ACTION:
		cfg->action = o->id == OPT_HELP ? CFG_HELP : CFG_VERSION;
		return 0;
	}

	switch (o->id) {
	case OPT_METRICS:
		if (strcmp(val, "off") == 0) {
			cfg->has_metrics = false;
			memset(&cfg->metrics, 0, sizeof(cfg->metrics));
			return 0;
		}
		if (config_parse_addr(val, &cfg->metrics, msg, cap) != 0)
			return -E_USAGE;
		cfg->has_metrics = true;
		return 0;
	case OPT_CA_FILE:
		return set_path(cfg->ca_file, val, msg, cap);
	case OPT_CONFIG:
		return set_path(cfg->config_file, val, msg, cap);
	case OPT_RESOLV_CONF:
		return set_path(cfg->resolv_conf, val, msg, cap);
	case OPT_LOG_LEVEL:
		if (log_level_parse(val, &cfg->log_level) != 0) {
			errf(msg, cap, "'%s' is not one of debug, info, warn, "
			    "error", show(a, sizeof(a), val, strlen(val)));
			return -E_USAGE;
		}
		return 0;
	case OPT_WORKERS: {
		char *end;
		unsigned long n;

		if (strcmp(val, "auto") == 0) {
			cfg->workers = 0;
			return 0;
		}
		errno = 0;
		n = strtoul(val, &end, 10);
		if (val[0] < '0' || val[0] > '9' || *end != '\0' || errno != 0 ||
		    n < 1 || n > CFG_MAX_WORKERS) {
			errf(msg, cap, "'%s' is not auto or a number from 1 to %d",
			    show(a, sizeof(a), val, strlen(val)),
			    CFG_MAX_WORKERS);
			return -E_USAGE;
		}
		cfg->workers = (unsigned)n;
		return 0;
	}
	case OPT_HANDOVER_SOCKET:
		if (strlen(val) >= CFG_SOCKPATH_MAX) {
			errf(msg, cap, "path is longer than %d bytes",
			    CFG_SOCKPATH_MAX - 1);
			return -E_USAGE;
		}
		return set_path(cfg->handover_socket, val, msg, cap);
	case OPT_SECCOMP:
		if (strcmp(val, "on") != 0 && strcmp(val, "off") != 0) {
			errf(msg, cap, "'%s' is not one of on, off",
			    show(a, sizeof(a), val, strlen(val)));
			return -E_USAGE;
		}
		cfg->seccomp = strcmp(val, "on") == 0;
		return 0;
	case OPT_LOG_FORMAT:
		if (log_format_parse(val, &cfg->log_format) != 0) {
			errf(msg, cap, "'%s' is not one of text, json",
			    show(a, sizeof(a), val, strlen(val)));
			return -E_USAGE;
		}
		return 0;
	default:
		errf(msg, cap, "no handler");
		return -E_USAGE;
	}
}

static const struct opt *
opt_find(const char *name, size_t n)
{
	size_t i;

	for (i = 0; i < NOPTS; i++)
		if (strlen(opts[i].name) == n &&
		    memcmp(opts[i].name, name, n) == 0)
			return &opts[i];
	return NULL;
}

static const struct opt *
opt_by_id(enum opt_id id)
{
	size_t i;

	for (i = 0; i < NOPTS; i++)
		if (opts[i].id == id)
			return &opts[i];
	return NULL;
}

/* The value of NAME in envp ("NAME=value" strings), the first one wins. */
static const char *
env_get(char *const envp[], const char *name)
{
	size_t i, n = strlen(name);

	if (envp == NULL)
		return NULL;
	for (i = 0; envp[i] != NULL; i++)
		if (strncmp(envp[i], name, n) == 0 && envp[i][n] == '=')
			return envp[i] + n + 1;
	return NULL;
}

/*
 * DOTPROXY_* names that are no option of this program yet belong to the
 * project, so that they never stop it: the other programs' twins (one
 * env file or ConfigMap may feed every container of a pod) and the
 * variables of the build, test and compose scripts, which a proxy started
 * from them inherits.
 */
static const char *const env_foreign_prefix[] = {
	"DOTPROXY_INIT_", "DOTPROXY_CNI_",
};
static const char *const env_foreign[] = {
	"DOTPROXY_BIN", "DOTPROXY_DOCKER_TESTS", "DOTPROXY_IMAGE",
	"DOTPROXY_RELEASE", "DOTPROXY_UPSTREAM_IMAGE", "DOTPROXY_VERSION",
};

#define ENV_NAME_MAX	64	/* longer names are not ours */

/* Edit distance of a and b, or 3 for anything above 2 (typos only). */
static unsigned
near3(const char *a, size_t na, const char *b)
{
	unsigned d[ENV_NAME_MAX + 1], prev, t, best;
	size_t nb = strlen(b), i, j;

	if (na > ENV_NAME_MAX || nb > ENV_NAME_MAX ||
	    (na > nb ? na - nb : nb - na) > 2)
		return 3;
	for (j = 0; j <= nb; j++)
		d[j] = (unsigned)j;
	for (i = 1; i <= na; i++) {
		prev = d[0];
		d[0] = (unsigned)i;
		best = d[0];
		for (j = 1; j <= nb; j++) {
			t = d[j];
			d[j] = prev + (a[i - 1] != b[j - 1]);
			if (d[j - 1] + 1 < d[j])
				d[j] = d[j - 1] + 1;
			if (t + 1 < d[j])
				d[j] = t + 1;
			prev = t;
			if (d[j] < best)
				best = d[j];
		}
		if (best > 2)
			return 3;
	}
	return d[nb] > 2 ? 3 : d[nb];
}

/*
 * A misspelled twin would otherwise be ignored in silence, and the option
 * keep its default: every DOTPROXY_* name must be an option's twin or one
 * of the project's names above. Returns 0, or -E_USAGE naming it (with the
 * nearest twin when one is a typo away).
 */
static int
env_check(char *const envp[], char *err, size_t errlen)
{
	const char *e, *eq, *hint;
	char name[ENV_NAME_MAX + 1];
	size_t i, j, n, m;
	unsigned d, bestd;
	bool known;

	for (i = 0; envp != NULL && envp[i] != NULL; i++) {
		e = envp[i];
		if (strncmp(e, "DOTPROXY_", 9) != 0)
			continue;
		n = (eq = strchr(e, '=')) != NULL ? (size_t)(eq - e) : strlen(e);
		known = false;
		for (j = 0; j < NOPTS && !known; j++)
			known = opts[j].env != NULL &&
			    strlen(opts[j].env) == n &&
			    strncmp(opts[j].env, e, n) == 0;
		for (j = 0; j < sizeof(env_foreign) / sizeof(env_foreign[0]) &&
		    !known; j++)
			known = strlen(env_foreign[j]) == n &&
			    strncmp(env_foreign[j], e, n) == 0;
		for (j = 0; j < sizeof(env_foreign_prefix) /
		    sizeof(env_foreign_prefix[0]) && !known; j++)
			known = strncmp(e, env_foreign_prefix[j],
			    strlen(env_foreign_prefix[j])) == 0;
		if (known)
			continue;
		hint = NULL;
		bestd = 3;
		for (j = 0; j < NOPTS; j++)
			if (opts[j].env != NULL &&
			    (d = near3(e, n, opts[j].env)) < bestd) {
				bestd = d;
				hint = opts[j].env;
			}
		/* The name as the environment has it, but on one line:
		 * any byte that is not printable ASCII shows as '?'. */
		m = n > ENV_NAME_MAX ? ENV_NAME_MAX : n;
		for (j = 0; j < m; j++)
			name[j] = e[j] >= 0x20 && e[j] < 0x7f ? e[j] : '?';
		name[m] = '\0';
		errf(err, errlen, "%s%s: unknown environment variable "
		    "(no option has this twin)%s%s%s", name,
		    n > ENV_NAME_MAX ? "..." : "",
		    hint != NULL ? "; did you mean " : "",
		    hint != NULL ? hint : "", hint != NULL ? "?" : "");
		return -E_USAGE;
	}
	return 0;
}

static void
scan_init(struct argscan *sc, int argc, char *const argv[])
{
	sc->argc = argv == NULL ? 0 : argc;
	sc->argv = argv;
	sc->i = 1;	/* argv[0] is the program name */
}

/*
 * Reads the next option from argv: "--name VALUE", "--name=VALUE",
 * "--flag", "-h", "-V". A following argument that starts with "--" is not
 * taken as a value (use "--name=VALUE" for that). "--" ends the options;
 * anything after it, like any argument not starting with '-', is a
 * positional argument and an error. Returns 1 with *op and *valp set
 * (*valp NULL for a flag without a value), 0 at the end, or -E_USAGE with
 * the whole error line in err.
 */
static int
scan_next(struct argscan *sc, const struct opt **op, const char **valp,
    char *err, size_t errlen)
{
	char a[CFG_SHOW_MAX + 8];
	const char *arg, *name, *eq, *next;
	const struct opt *o;
	size_t n;

	if (sc->i >= sc->argc || sc->argv[sc->i] == NULL)
		return 0;
	arg = sc->argv[sc->i++];
	if (strcmp(arg, "--") == 0) {
		if (sc->i >= sc->argc || sc->argv[sc->i] == NULL)
			return 0;
		arg = sc->argv[sc->i];
		goto positional;
	}
	if (strcmp(arg, "-h") == 0 || strcmp(arg, "-V") == 0) {
		*op = opt_by_id(arg[1] == 'h' ? OPT_HELP : OPT_VERSION);
		*valp = NULL;
		return 1;
	}
	if (arg[0] != '-' || arg[1] == '\0')
		goto positional;
	if (arg[1] != '-') {
		errf(err, errlen, "unknown option '%s' (see --help)",
		    show(a, sizeof(a), arg, strlen(arg)));
		return -E_USAGE;
	}
	name = arg + 2;
	eq = strchr(name, '=');
	n = eq != NULL ? (size_t)(eq - name) : strlen(name);
	if ((o = opt_find(name, n)) == NULL) {
		errf(err, errlen, "unknown option '%s' (see --help)",
		    show(a, sizeof(a), arg, n + 2));
		return -E_USAGE;
	}
	*op = o;
	*valp = NULL;
	if (o->kind == OK_ACTION) {
		if (eq != NULL) {
			errf(err, errlen, "--%s: takes no value", o->name);
			return -E_USAGE;
		}
		return 1;
	}
	if (eq != NULL) {
		*valp = eq + 1;
		return 1;
	}
	if (o->kind == OK_BOOL)
		return 1;
	next = sc->i < sc->argc ? sc->argv[sc->i] : NULL;
	if (next == NULL || (next[0] == '-' && next[1] == '-' &&
	    next[2] != '\0')) {
		errf(err, errlen, "--%s: needs a value", o->name);
		return -E_USAGE;
	}
	*valp = next;
	sc->i++;
	return 1;

positional:
	errf(err, errlen, "unexpected argument '%s': dotproxy takes options "
	    "only (see --help)", show(a, sizeof(a), arg, strlen(arg)));
	return -E_USAGE;
}

/* Cross-option checks once everything is applied. who names the source. */
static int
check_config(const struct config *cfg, const char *listen_who,
    const char *metrics_who, char *err, size_t errlen)
{
	char t[INET6_ADDRSTRLEN + 8];
	size_t i, j;

	for (i = 0; i < cfg->nlisten; i++)
		for (j = i + 1; j < cfg->nlisten; j++)
			if (addr_equal(&cfg->listen[i], &cfg->listen[j])) {
				config_addr_text(&cfg->listen[i], t, sizeof(t));
				errf(err, errlen, "%s: %s is given twice",
				    listen_who, t);
				return -E_USAGE;
			}
	if (!cfg->has_metrics)
		return 0;
	for (i = 0; i < cfg->nlisten; i++)
		if (addr_equal(&cfg->listen[i], &cfg->metrics)) {
			config_addr_text(&cfg->metrics, t, sizeof(t));
			errf(err, errlen, "%s: %s is also a DNS listen address",
			    metrics_who, t);
			return -E_USAGE;
		}
	return 0;
}

/*
 * Applies "key value" lines (key = a flag name without "--"; "key=value"
 * and a bare boolean key work too; '#' starts a comment). Repeatable keys
 * accumulate, and their first line replaces the default list.
 */
static int
apply_file(struct config *cfg, const char *text, size_t len, const char *path,
    char (*who)[40], char *err, size_t errlen)
{
	char msg[CFG_MSG_MAX], line[1024];
	bool seen[OPT_COUNT];
	const char *p = text, *end = text + len;
	unsigned lineno = 0;

	memset(seen, 0, sizeof(seen));
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const struct opt *o;
		size_t n, k;
		char *key, *val, *e;

		if (eol == NULL)
			eol = end;
		lineno++;
		n = (size_t)(eol - p);
		if (n >= sizeof(line)) {
			errf(err, errlen, "%s:%u: line too long", path, lineno);
			return -E_USAGE;
		}
		memcpy(line, p, n);
		line[n] = '\0';
		p = eol + 1;
		/* A comment starts with '#' at the start of the line or after
		 * a blank: upstream specs contain '#' themselves. */
		for (e = line; *e != '\0'; e++)
			if (*e == '#' && (e == line || e[-1] == ' ' || e[-1] == '\t')) {
				*e = '\0';
				break;
			}
		key = line;
		while (*key == ' ' || *key == '\t' || *key == '\r')
			key++;
		e = key + strlen(key);
		while (e > key && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
			*--e = '\0';
		if (*key == '\0')
			continue;
		k = strcspn(key, " \t=");
		val = key[k] != '\0' ? key + k + 1 : NULL;
		key[k] = '\0';
		while (val != NULL && (*val == ' ' || *val == '\t' || *val == '='))
			val++;
		if (val != NULL && *val == '\0')
			val = NULL;
		o = opt_find(key, strlen(key));
		if (o == NULL || o->kind == OK_ACTION || o->id == OPT_CONFIG) {
			errf(err, errlen, "%s:%u: unknown key '%s'", path, lineno,
			    show(msg, sizeof(msg), key, strlen(key)));
			return -E_USAGE;
		}
		if (val == NULL && o->kind != OK_BOOL) {
			errf(err, errlen, "%s:%u: %s: needs a value", path, lineno,
			    o->name);
			return -E_USAGE;
		}
		if (apply(cfg, o, val, seen[o->id], msg, sizeof(msg)) != 0) {
			errf(err, errlen, "%s:%u: %s: %s", path, lineno, o->name,
			    msg);
			return -E_USAGE;
		}
		seen[o->id] = true;
		errf(who[o->id], sizeof(who[0]), "%s:%u", path, lineno);
	}
	return 0;
}

int
config_parse(struct config *cfg, int argc, char *const argv[],
    char *const envp[], char *err, size_t errlen)
{
	return config_parse_file(cfg, argc, argv, envp, NULL, 0, NULL, err,
	    errlen);
}

int
config_parse_file(struct config *cfg, int argc, char *const argv[],
    char *const envp[], const char *text, size_t len, const char *path,
    char *err, size_t errlen)
{
	char msg[CFG_MSG_MAX], who[OPT_COUNT][40];
	bool seen[OPT_COUNT];
	struct argscan sc;
	const struct opt *o;
	const char *val;
	size_t i;
	int r;

	memset(cfg, 0, sizeof(*cfg));
	memset(seen, 0, sizeof(seen));
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	for (i = 0; i < NOPTS; i++)
		errf(who[opts[i].id], sizeof(who[0]), "--%s", opts[i].name);

	/* Defaults: the same path as any value, so they are validated. */
	for (i = 0; i < NOPTS; i++) {
		o = &opts[i];
		if (o->def == NULL)
			continue;
		if (apply(cfg, o, o->def, false, msg, sizeof(msg)) != 0) {
			errf(err, errlen, "default of --%s: %s", o->name, msg);
			return -E_USAGE;
		}
	}

	/*
	 * First pass over argv: syntax only, so that --help and --version
	 * answer even when the environment holds a bad value.
	 */
	scan_init(&sc, argc, argv);
	while ((r = scan_next(&sc, &o, &val, err, errlen)) > 0)
		if (o->kind == OK_ACTION)
			return apply(cfg, o, NULL, false, msg, sizeof(msg));
	if (r < 0)
		return r;

	/* The file sits between the defaults and the environment. */
	if (text != NULL &&
	    (r = apply_file(cfg, text, len, path, who, err, errlen)) != 0)
		return r;

	if ((r = env_check(envp, err, errlen)) != 0)
		return r;
	/* Environment twins; an empty variable counts as unset. */
	for (i = 0; i < NOPTS; i++) {
		o = &opts[i];
		if (o->env == NULL ||
		    (val = env_get(envp, o->env)) == NULL || *val == '\0')
			continue;
		if (apply(cfg, o, val, false, msg, sizeof(msg)) != 0) {
			errf(err, errlen, "%s: %s", o->env, msg);
			return -E_USAGE;
		}
		errf(who[o->id], sizeof(who[0]), "%s", o->env);
	}

	/* Flags, left to right; the first repeatable one empties the list. */
	scan_init(&sc, argc, argv);
	while ((r = scan_next(&sc, &o, &val, err, errlen)) > 0) {
		if (apply(cfg, o, val, seen[o->id], msg, sizeof(msg)) != 0) {
			errf(err, errlen, "--%s: %s", o->name, msg);
			return -E_USAGE;
		}
		seen[o->id] = true;
		errf(who[o->id], sizeof(who[0]), "--%s", o->name);
	}
	if (r < 0)
		return r;

	/* Contradictory clamps: a floor above the ceiling. */
	if (cfg->cache_min_ttl > cfg->cache_max_ttl) {
		errf(err, errlen, "--cache-min-ttl %u (%s) is above "
		    "--cache-max-ttl %u (%s)", cfg->cache_min_ttl,
		    who[OPT_CACHE_MIN_TTL], cfg->cache_max_ttl,
		    who[OPT_CACHE_MAX_TTL]);
		return -E_USAGE;
	}
	return check_config(cfg, who[OPT_LISTEN], who[OPT_METRICS], err,
	    errlen);
}

/*
 * Prints a list default "a,b" as "Default: a and b.", wrapped to 80
 * columns at the " and ".
 */
static void
usage_list_default(FILE *fp, const char *def)
{
	const char *p = def;
	size_t n, col;

	n = strcspn(p, ",");
	fprintf(fp, "        Default: %.*s", (int)n, p);
	col = 17 + n;
	for (p += n; *p == ','; p += n) {
		p++;
		n = strcspn(p, ",");
		if (col + 5 + n + 1 > 80) {
			fprintf(fp, " and\n        %.*s", (int)n, p);
			col = 8 + n;
		} else {
			fprintf(fp, " and %.*s", (int)n, p);
			col += 5 + n;
		}
	}
	fprintf(fp, ".\n");
}

/* Prints one option's entry: the flag line, help lines, default, env. */
static void
usage_opt(FILE *fp, const struct opt *o)
{
	const char *p, *nl;

	if (o->id == OPT_HELP)
		fprintf(fp, "  -h, --help\n");
	else if (o->id == OPT_VERSION)
		fprintf(fp, "  -V, --version\n");
	else if (o->metavar != NULL)
		fprintf(fp, "  --%s %s\n", o->name, o->metavar);
	else
		fprintf(fp, "  --%s\n", o->name);
	for (p = o->help; *p != '\0'; p = nl + 1) {
		if ((nl = strchr(p, '\n')) == NULL) {
			fprintf(fp, "        %s\n", p);
			break;
		}
		fprintf(fp, "        %.*s\n", (int)(nl - p), p);
	}
	if (o->kind == OK_NUM)
		fprintf(fp, "        Range %u..%u%s. Default: %s%s.\n", o->min,
		    o->max, o->unit, o->def, o->unit);
	else if (o->def != NULL && strchr(o->def, ',') != NULL)
		usage_list_default(fp, o->def);
	else if (o->defshow != NULL)
		fprintf(fp, "        Default: %s.\n", o->defshow);
	else if (o->def != NULL)
		fprintf(fp, "        Default: %s.\n", o->def);
	if (o->kind == OK_BOOL)
		fprintf(fp, "        Env %s=1|0 (also true/false, yes/no, "
		    "on/off).\n", o->env);
	else if (o->kind == OK_LIST)
		fprintf(fp, "        Env %s, comma-separated.\n", o->env);
	else if (o->env != NULL)
		fprintf(fp, "        Env %s.\n", o->env);
}

void
config_usage(FILE *fp)
{
	size_t i;
	int g;

	fprintf(fp,
	    "usage: dotproxy [--listen ADDR:PORT]... [--upstream SPEC]... "
	    "[OPTION]...\n"
	    "       dotproxy healthcheck [URL]\n"
	    "\n"
	    "Forwards plain DNS from local applications to DNS-over-TLS\n"
	    "upstreams (RFC 7858), authenticated by name or pin (RFC 8310).\n"
	    "\n"
	    "healthcheck GETs URL (default: /readyz on the DOTPROXY_METRICS\n"
	    "address) and exits 0 when it answers 200, 1 otherwise: a\n"
	    "container HEALTHCHECK for images without a shell or curl.\n"
	    "\n"
	    "Every option has an environment twin DOTPROXY_<NAME> (upper\n"
	    "case, '-' becomes '_'). Precedence, highest first: the flag,\n"
	    "its environment twin, the --config file (lines of \"name value\"),\n"
	    "the default; an empty variable counts as unset. Values go as\n"
	    "--name VALUE or --name=VALUE. Repeatable options also take\n"
	    "comma-separated lists, and a repeatable flag replaces the\n"
	    "environment's list instead of adding to it.\n");
	for (g = 0; g < G_COUNT; g++) {
		fprintf(fp, "\n%s:\n", group_titles[g]);
		for (i = 0; i < NOPTS; i++)
			if ((int)opts[i].group == g)
				usage_opt(fp, &opts[i]);
	}
	fprintf(fp,
	    "\n"
	    "A pin for --upstream, from the server's certificate:\n"
	    "  openssl x509 -in cert.pem -noout -pubkey |\n"
	    "    openssl pkey -pubin -outform der |\n"
	    "    openssl dgst -sha256 -binary | base64\n"
	    "\n"
	    "Exit status:\n"
	    "  0  clean shutdown (after SIGTERM)\n"
	    "  1  runtime failure\n"
	    "  2  bad usage or configuration (one line on stderr says what)\n");
}

int
config_fd_budget(const struct config *cfg, uint64_t limit,
    unsigned http_clients, struct fd_budget *b)
{
	uint64_t fixed, avail;
	unsigned plain = cfg->max_plain, clients = cfg->max_clients;

	fixed = 3 + 2 + 2 * (uint64_t)cfg->nlisten +
	    2 * (uint64_t)cfg->nupstream * cfg->connections + 2 +
	    CONFIG_FD_MARGIN + (cfg->has_metrics ? 1 + (uint64_t)http_clients :
	    0);
	if (limit < fixed + 1 + CONFIG_FD_MIN_CLIENTS)
		return -E_TOOBIG;
	avail = limit - fixed;
	if (plain + CONFIG_FD_MIN_CLIENTS > avail)
		plain = (unsigned)((avail - CONFIG_FD_MIN_CLIENTS) / 2 > 0 ?
		    (avail - CONFIG_FD_MIN_CLIENTS) / 2 : 1);
	avail -= plain;
	if (clients > avail)
		clients = (unsigned)avail;
	b->reserved = fixed;
	b->max_plain = plain;
	b->max_clients = clients;
	return 0;
}
