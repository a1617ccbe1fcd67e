/*
 * Configuration: flags, their DOTPROXY_* environment twins and defaults,
 * parsed and validated into a struct config that nothing changes
 * afterwards. Pure: no sockets, no files read (the CA file is only named
 * here), no globals.
 *
 * Precedence: a flag beats its environment twin, which beats the default.
 * Repeatable flags given on the command line replace the environment's list
 * (they do not add to it). Environment lists are comma-separated.
 *
 * Flags (each also DOTPROXY_<NAME>, upper case, '-' -> '_'):
 *   --listen ADDR:PORT          repeatable; 127.0.0.1:15353 and [::1]:15353
 *   --upstream IP[@PORT][#AUTH-NAME][^PIN]...
 *                               repeatable; default Cloudflare 1.1.1.1 and
 *                               1.0.0.1 @853 #cloudflare-dns.com. PIN is the
 *                               base64 SHA-256 of the certificate's SPKI.
 *                               An upstream with neither name nor pin is an
 *                               error (RFC 8310 strict profile).
 *   --ca-file PATH              CA bundle; empty means the system store
 *   --local-zone ZONE           repeatable (used by transparent mode)
 *   --timeout MS                per query, default 3000 (100..60000)
 *   --idle-timeout MS           upstream idle close, default 8000
 *   --client-idle-timeout MS    TCP client idle close, default 10000
 *   --connections N             TLS connections per upstream, default 2
 *   --max-inflight N            queries in flight per TLS connection, 1024
 *   --max-clients N             TCP client connections, default 1024
 *   --max-pipeline N            pending queries per TCP client, default 128
 *   --max-plain N               local-zone queries in flight, default 256
 *   --shutdown-grace MS         lameduck after SIGTERM, default 3000
 *   --cache-size N              cached answers, default 10000; 0 = off
 *   --cache-bytes BYTES         their memory bound, default 16 MiB
 *   --cache-min-ttl S           TTL clamps, default 0 and 86400
 *   --cache-max-ttl S
 *   --local-cache-max-ttl S     clamp for local-zone answers, default 5
 *   --cache-servfail-ttl S      failed resolutions kept, default 5
 *   --cache-stale-max S         serve-stale window, default 86400
 *   --cache-client-timeout MS   stale answer after, default 1800
 *   --metrics ADDR:PORT         metrics/health listener, default off
 *   --log-level debug|info|warn|error   default info
 *   --log-format text|json      default text
 *   --log-queries               log query names (off by default)
 *   --allow-root                run as UID 0 in transparent use
 *   --transparent               behind dotproxy-init's redirect
 *   --resolv-conf PATH          default /etc/resolv.conf
 *   --seccomp on|off            system call allowlist, default on
 *   --config FILE               a file of "key value" lines (later issue)
 *   --help, --version
 */
#ifndef PROXY_CONFIG_H
#define PROXY_CONFIG_H

#include <sys/socket.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "dns.h"
#include "log.h"

#define CFG_MAX_LISTEN		8
#define CFG_MAX_UPSTREAMS	8
#define CFG_MAX_WORKERS		256
/* A Unix socket path: sun_path less a ".<pid>" suffix for the rename. */
#define CFG_SOCKPATH_MAX	(108 - 12)
#define CFG_MAX_PINS		4
#define CFG_MAX_ZONES		32
#define CFG_PATH_MAX		1024

struct cfg_addr {
	struct sockaddr_storage	ss;	/* AF_INET or AF_INET6, port set */
	socklen_t		len;
};

struct cfg_upstream {
	struct cfg_addr	addr;
	char		auth_name[DNS_NAME_MAX + 1];	/* "" if none */
	uint8_t		pins[CFG_MAX_PINS][32];		/* SPKI SHA-256 */
	size_t		npins;
	char		text[320];	/* as the user wrote it, for logs */
};

struct cfg_zone {
	uint8_t	name[DNS_NAME_MAX];	/* uncompressed wire form */
	size_t	len;
};

enum cfg_action {
	CFG_RUN = 0,
	CFG_HELP,
	CFG_VERSION
};

struct config {
	enum cfg_action		action;
	struct cfg_addr		listen[CFG_MAX_LISTEN];
	size_t			nlisten;
	struct cfg_upstream	upstream[CFG_MAX_UPSTREAMS];
	size_t			nupstream;
	char			ca_file[CFG_PATH_MAX];	/* "" = system store */
	struct cfg_zone		zones[CFG_MAX_ZONES];
	size_t			nzones;
	unsigned		timeout_ms;
	unsigned		idle_timeout_ms;
	unsigned		client_idle_ms;
	unsigned		connections;
	unsigned		max_inflight;
	unsigned		max_clients;
	unsigned		max_pipeline;
	unsigned		max_plain;	/* plain queries in flight */
	unsigned		shutdown_grace_ms;
	unsigned		cache_size;		/* entries; 0 = off */
	unsigned		cache_bytes;
	unsigned		cache_min_ttl;		/* seconds */
	unsigned		cache_max_ttl;
	unsigned		local_cache_max_ttl;
	unsigned		cache_servfail_ttl;
	unsigned		cache_stale_max;
	unsigned		cache_client_timeout_ms;
	bool			has_metrics;
	struct cfg_addr		metrics;
	enum log_level		log_level;
	enum log_format		log_format;
	bool			log_queries;
	bool			allow_root;
	bool			transparent;
	bool			seccomp;	/* install the allowlist */
	unsigned		workers;	/* event loops; 0 = auto */
	char			handover_socket[CFG_PATH_MAX];	/* "" = none */
	char			resolv_conf[CFG_PATH_MAX];
	char			config_file[CFG_PATH_MAX];	/* "" = none */
};

/*
 * Fills cfg from defaults, then envp (NULL-terminated "NAME=value" list,
 * may be NULL), then argv. Returns 0, or -E_USAGE with one line in err
 * (no trailing newline) naming the option and what is wrong, e.g.
 * "--timeout: 'abc' is not a number of milliseconds" or
 * "DOTPROXY_UPSTREAM: 192.0.2.1: no auth name or pin (strict profile)".
 */
int	config_parse(struct config *cfg, int argc, char *const argv[],
	    char *const envp[], char *err, size_t errlen);

/*
 * As config_parse, with the text of the --config file (len bytes, named
 * path in errors) applied after the defaults and before the environment:
 * lines of "key value" where key is a flag name without "--".
 */
int	config_parse_file(struct config *cfg, int argc, char *const argv[],
	    char *const envp[], const char *text, size_t len, const char *path,
	    char *err, size_t errlen);

/* Parses one "IP[@PORT][#AUTH-NAME][^PIN]..." upstream. 0 or -E_USAGE. */
int	config_parse_upstream(const char *, struct cfg_upstream *,
	    char *err, size_t errlen);

/* Parses "ADDR:PORT" or "[V6ADDR]:PORT". 0 or -E_USAGE. */
int	config_parse_addr(const char *, struct cfg_addr *, char *err,
	    size_t errlen);

/* Writes the --help text. */
void	config_usage(FILE *);

/* Formats an address as "192.0.2.1:853" or "[2001:db8::1]:853". */
void	config_addr_text(const struct cfg_addr *, char *out, size_t cap);

/*
 * The descriptor budget. Everything but TCP clients has a known most:
 * stdio, the epoll and signal fds, two sockets per listen address, the
 * upstream connections twice over (a reload drains the old pool while the
 * new one connects), the plain local-zone sockets, the metrics listener and
 * http_clients, the two netlink sockets, and a margin for files read at
 * reload and /proc reads (CONFIG_FD_MARGIN). TCP clients get what is left,
 * whatever --max-clients says, so an upstream connection or a plain query
 * never loses a descriptor to a client. If even the fixed part does not fit
 * with room for a few clients (CONFIG_FD_MIN_CLIENTS), the plain cap
 * shrinks first. limit is the soft RLIMIT_NOFILE. Fills *b (cfg is not
 * changed) and returns 0, or -E_TOOBIG when the limit is too low to run.
 */
#define CONFIG_FD_MARGIN	32
#define CONFIG_FD_MIN_CLIENTS	8

struct fd_budget {
	uint64_t	reserved;	/* descriptors kept for all but clients */
	unsigned	max_clients;	/* --max-clients, capped */
	unsigned	max_plain;	/* --max-plain, capped */
};

int	config_fd_budget(const struct config *cfg, uint64_t limit,
	    unsigned http_clients, struct fd_budget *b);

#endif
