/*
 * Unit tests for proxy/config.c: defaults, every flag in both spellings,
 * environment twins and precedence, upstream and address syntax, strict
 * base64 pins, every error path (the option named as the user gave it),
 * address formatting and the --help text.
 */
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/config.h"
#include "proxy/errors.h"
#include "tests/unit/tap.h"

/*
 * Literal argv and envp vectors. String literals are const under
 * -Wwrite-strings, so the pointers are copied into a writable slot (the
 * parser never writes through them).
 */
#define ARGV(...)	vec((const char *const[]){ "dotproxy", __VA_ARGS__, NULL })
#define ENVP(...)	vec((const char *const[]){ __VA_ARGS__, NULL })
#define NOARGS		vec((const char *const[]){ "dotproxy", NULL })

/* SHA-256("abc"), from: printf abc | openssl dgst -sha256 -binary | base64 */
static const char pin_abc_b64[] =
    "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=";
static const uint8_t pin_abc[32] = {
	0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde,
	0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c,
	0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad
};
/*
 * SPKI pin of a throw-away P-256 key: openssl ecparam -genkey ... |
 * openssl pkey -pubout -outform der | openssl dgst -sha256 -binary.
 */
static const char pin_spki_b64[] =
    "xGufWBYLkZsolpaInTglKyNqIbnIWiigsloqy6mKmn8=";
static const uint8_t pin_spki[32] = {
	0xc4, 0x6b, 0x9f, 0x58, 0x16, 0x0b, 0x91, 0x9b, 0x28, 0x96, 0x96, 0x88,
	0x9d, 0x38, 0x25, 0x2b, 0x23, 0x6a, 0x21, 0xb9, 0xc8, 0x5a, 0x28, 0xa0,
	0xb2, 0x5a, 0x2a, 0xcb, 0xa9, 0x8a, 0x9a, 0x7f
};

static struct config cfg;	/* big; static keeps it off the test stack */
static char err[512];

static char *const *
vec(const char *const *in)
{
	static char *slots[8][64];
	static unsigned k;
	char **out = slots[k++ % 8];
	size_t n = 0;

	while (in[n] != NULL && n < 63)
		n++;
	memcpy(out, in, n * sizeof(*in));
	out[n] = NULL;
	return out;
}

static int
argc_of(char *const argv[])
{
	int n = 0;

	while (argv[n] != NULL)
		n++;
	return n;
}

static int
parse(char *const argv[], char *const envp[])
{
	memset(err, 'x', sizeof(err));
	return config_parse(&cfg, argc_of(argv), argv, envp, err, sizeof(err));
}

static const char *
addr_text(const struct cfg_addr *a)
{
	static char buf[2][64];
	static int k;

	k ^= 1;
	config_addr_text(a, buf[k], sizeof(buf[k]));
	return buf[k];
}

/*
 * Parses and expects -E_USAGE with err naming who (the option as given)
 * and containing what (NULL: anything).
 */
static void
expect_err(const char *name, char *const argv[], char *const envp[],
    const char *who, const char *what)
{
	int r = parse(argv, envp);

	if (!ok(r == -E_USAGE && strncmp(err, who, strlen(who)) == 0 &&
	    (what == NULL || strstr(err, what) != NULL) &&
	    strchr(err, '\n') == NULL, "error: %s", name))
		printf("#   r=%d err=\"%s\" want \"%s\" ... \"%s\"\n", r, err,
		    who, what != NULL ? what : "");
}

static void
test_defaults(void)
{
	is(parse(NOARGS, NULL), 0, "defaults: parse");
	is(cfg.action, CFG_RUN, "defaults: action run");
	is(cfg.nlisten, 2, "defaults: two listeners");
	ok(strcmp(addr_text(&cfg.listen[0]), "127.0.0.1:15353") == 0,
	    "defaults: listen 127.0.0.1:15353 (%s)", addr_text(&cfg.listen[0]));
	ok(strcmp(addr_text(&cfg.listen[1]), "[::1]:15353") == 0,
	    "defaults: listen [::1]:15353 (%s)", addr_text(&cfg.listen[1]));
	is(cfg.listen[0].len, sizeof(struct sockaddr_in), "defaults: v4 len");
	is(cfg.listen[1].len, sizeof(struct sockaddr_in6), "defaults: v6 len");
	is(cfg.nupstream, 2, "defaults: two upstreams");
	ok(strcmp(addr_text(&cfg.upstream[0].addr), "1.1.1.1:853") == 0 &&
	    strcmp(addr_text(&cfg.upstream[1].addr), "1.0.0.1:853") == 0,
	    "defaults: upstream addresses");
	ok(strcmp(cfg.upstream[0].auth_name, "cloudflare-dns.com") == 0 &&
	    strcmp(cfg.upstream[1].auth_name, "cloudflare-dns.com") == 0,
	    "defaults: upstream auth name");
	ok(strcmp(cfg.upstream[0].text, "1.1.1.1@853#cloudflare-dns.com") == 0,
	    "defaults: upstream text");
	is(cfg.upstream[0].npins + cfg.upstream[1].npins, 0, "defaults: no pins");
	ok(cfg.ca_file[0] == '\0', "defaults: system CA store");
	is(cfg.nzones, 0, "defaults: no local zones");
	is(cfg.timeout_ms, 3000, "defaults: timeout");
	is(cfg.idle_timeout_ms, 8000, "defaults: idle timeout");
	is(cfg.client_idle_ms, 10000, "defaults: client idle");
	is(cfg.connections, 2, "defaults: connections");
	is(cfg.max_inflight, 1024, "defaults: max inflight");
	is(cfg.max_clients, 1024, "defaults: max clients");
	is(cfg.max_pipeline, 128, "defaults: max pipeline");
	ok(!cfg.has_metrics, "defaults: no metrics");
	is(cfg.log_level, LOG_LVL_INFO, "defaults: log level");
	is(cfg.log_format, LOG_FMT_TEXT, "defaults: log format");
	ok(!cfg.log_queries && !cfg.allow_root, "defaults: booleans off");
	ok(cfg.config_file[0] == '\0', "defaults: no config file");

	/* argc 0 and a NULL argv are tolerated too. */
	is(config_parse(&cfg, 0, NULL, NULL, err, sizeof(err)), 0,
	    "defaults: argc 0, argv NULL");
}

static void
check_all_set(const char *how)
{
	static const uint8_t zone[] = "\7cluster\5local";

	is(cfg.nlisten, 2, "%s: listen count", how);
	ok(strcmp(addr_text(&cfg.listen[0]), "127.0.0.2:53") == 0 &&
	    strcmp(addr_text(&cfg.listen[1]), "[::1]:5353") == 0,
	    "%s: listen addresses", how);
	ok(cfg.has_metrics &&
	    strcmp(addr_text(&cfg.metrics), "127.0.0.1:9153") == 0,
	    "%s: metrics", how);
	is(cfg.nupstream, 2, "%s: upstream count", how);
	ok(strcmp(addr_text(&cfg.upstream[0].addr), "192.0.2.1:8853") == 0 &&
	    strcmp(cfg.upstream[0].auth_name, "dot.example") == 0,
	    "%s: upstream 0", how);
	ok(strcmp(addr_text(&cfg.upstream[1].addr), "[2001:db8::1]:853") == 0 &&
	    cfg.upstream[1].npins == 1 && cfg.upstream[1].auth_name[0] == 0,
	    "%s: upstream 1 (pin only)", how);
	ok(strcmp(cfg.ca_file, "/etc/dotproxy/ca.pem") == 0, "%s: ca-file", how);
	is(cfg.nzones, 2, "%s: zone count", how);
	ok(cfg.zones[0].len == sizeof(zone) &&
	    memcmp(cfg.zones[0].name, zone, sizeof(zone)) == 0,
	    "%s: zone cluster.local in wire form", how);
	ok(cfg.zones[1].len == 1 && cfg.zones[1].name[0] == 0,
	    "%s: zone '.' is the root", how);
	is(cfg.timeout_ms, 1500, "%s: timeout", how);
	is(cfg.idle_timeout_ms, 9000, "%s: idle timeout", how);
	is(cfg.client_idle_ms, 20000, "%s: client idle", how);
	is(cfg.connections, 4, "%s: connections", how);
	is(cfg.max_inflight, 100, "%s: max inflight", how);
	is(cfg.max_clients, 65536, "%s: max clients", how);
	is(cfg.max_pipeline, 4096, "%s: max pipeline", how);
	is(cfg.log_level, LOG_LVL_DEBUG, "%s: log level", how);
	is(cfg.log_format, LOG_FMT_JSON, "%s: log format", how);
	ok(cfg.log_queries, "%s: log queries", how);
	ok(cfg.allow_root, "%s: allow root", how);
	ok(strcmp(cfg.config_file, "/etc/dotproxy.conf") == 0, "%s: config",
	    how);
}

static void
test_every_flag(void)
{
	int r;

	r = parse(ARGV("--listen", "127.0.0.2:53", "--listen", "[::1]:5353",
	    "--metrics", "127.0.0.1:9153",
	    "--upstream", "192.0.2.1@8853#dot.example",
	    "--upstream", "2001:db8::1^xGufWBYLkZsolpaInTglKyNqIbnIWiigsloqy6mKmn8=",
	    "--ca-file", "/etc/dotproxy/ca.pem",
	    "--local-zone", "cluster.local", "--local-zone", ".",
	    "--timeout", "1500", "--idle-timeout", "9000",
	    "--client-idle-timeout", "20000", "--connections", "4",
	    "--max-inflight", "100", "--max-clients", "65536",
	    "--max-pipeline", "4096", "--log-level", "debug",
	    "--log-format", "json", "--log-queries", "--allow-root",
	    "--config", "/etc/dotproxy.conf"), NULL);
	if (!ok(r == 0, "every flag: parse"))
		printf("#   err: %s\n", err);
	check_all_set("--name value");

	r = parse(ARGV("--listen=127.0.0.2:53", "--listen=[::1]:5353",
	    "--metrics=127.0.0.1:9153",
	    "--upstream=192.0.2.1@8853#dot.example",
	    "--upstream=2001:db8::1^xGufWBYLkZsolpaInTglKyNqIbnIWiigsloqy6mKmn8=",
	    "--ca-file=/etc/dotproxy/ca.pem",
	    "--local-zone=cluster.local", "--local-zone=.",
	    "--timeout=1500", "--idle-timeout=9000",
	    "--client-idle-timeout=20000", "--connections=4",
	    "--max-inflight=100", "--max-clients=65536",
	    "--max-pipeline=4096", "--log-level=debug",
	    "--log-format=json", "--log-queries=yes", "--allow-root=on",
	    "--config=/etc/dotproxy.conf"), NULL);
	if (!ok(r == 0, "--name=value: parse"))
		printf("#   err: %s\n", err);
	check_all_set("--name=value");

	is(parse(ARGV("--log-queries", "--log-queries=false"), NULL), 0,
	    "--log-queries=false parses");
	ok(!cfg.log_queries, "--log-queries=false turns it off");
	is(parse(ARGV("--log-level", "warning", "--metrics", "[::1]:9153",
	    "--metrics", "off"), NULL), 0, "warning, metrics off: parse");
	ok(cfg.log_level == LOG_LVL_WARN && !cfg.has_metrics,
	    "warning is warn; a later --metrics off wins");
	is(parse(ARGV("--timeout", "100", "--idle-timeout", "600000",
	    "--connections", "1", "--max-inflight", "4096"), NULL), 0,
	    "range edges accepted");
	ok(cfg.timeout_ms == 100 && cfg.idle_timeout_ms == 600000 &&
	    cfg.connections == 1 && cfg.max_inflight == 4096,
	    "range edges stored");
	is(parse(ARGV("--timeout", "0500", "--timeout", "700"), NULL), 0,
	    "a repeated single-value flag: the last wins");
	is(cfg.timeout_ms, 700, "the last --timeout is 700");
	is(parse(ARGV("--listen", "127.0.0.1:53, [::1]:53"), NULL), 0,
	    "a flag takes a comma list too, blanks trimmed");
	is(cfg.nlisten, 2, "comma list on a flag: two listeners");
}

static void
test_env(void)
{
	static const char *const envc[] = {
		"PATH=/usr/bin",
		"DOTPROXY_LISTEN=127.0.0.2:53,[::1]:5353",
		"DOTPROXY_METRICS=127.0.0.1:9153",
		"DOTPROXY_UPSTREAM=192.0.2.1@8853#dot.example,"
		    "2001:db8::1^xGufWBYLkZsolpaInTglKyNqIbnIWiigsloqy6mKmn8=",
		"DOTPROXY_CA_FILE=/etc/dotproxy/ca.pem",
		"DOTPROXY_LOCAL_ZONE=cluster.local,.",
		"DOTPROXY_TIMEOUT=1500",
		"DOTPROXY_IDLE_TIMEOUT=9000",
		"DOTPROXY_CLIENT_IDLE_TIMEOUT=20000",
		"DOTPROXY_CONNECTIONS=4",
		"DOTPROXY_MAX_INFLIGHT=100",
		"DOTPROXY_MAX_CLIENTS=65536",
		"DOTPROXY_MAX_PIPELINE=4096",
		"DOTPROXY_LOG_LEVEL=debug",
		"DOTPROXY_LOG_FORMAT=json",
		"DOTPROXY_LOG_QUERIES=true",
		"DOTPROXY_ALLOW_ROOT=1",
		"DOTPROXY_CONFIG=/etc/dotproxy.conf",
		"DOTPROXY_INIT_PROXY_PORT=15353",	/* init's twin: ignored */
		"DOTPROXY_CNI_CNI_BIN_DIR=/opt/cni/bin",	/* the installer's */
		"DOTPROXY_DOCKER_TESTS=0",		/* the test scripts' */
		NULL
	};
	char *const *envp = vec(envc);
	const char *yes[] = { "1", "true", "YES", "on" };
	const char *no[] = { "0", "False", "no", "OFF" };
	char buf[64];
	size_t i;

	if (!ok(parse(NOARGS, envp) == 0, "env twins: parse"))
		printf("#   err: %s\n", err);
	check_all_set("env");

	for (i = 0; i < 4; i++) {
		snprintf(buf, sizeof(buf), "DOTPROXY_ALLOW_ROOT=%s", yes[i]);
		ok(parse(NOARGS, ENVP(buf)) == 0 && cfg.allow_root,
		    "env boolean %s is true", yes[i]);
		snprintf(buf, sizeof(buf), "DOTPROXY_LOG_QUERIES=%s", no[i]);
		ok(parse(ARGV("--log-queries"), ENVP(buf)) == 0 &&
		    cfg.log_queries, "flag beats env boolean %s", no[i]);
		ok(parse(NOARGS, ENVP(buf)) == 0 && !cfg.log_queries,
		    "env boolean %s is false", no[i]);
	}

	is(parse(NOARGS, ENVP("DOTPROXY_TIMEOUT=")), 0,
	    "an empty variable counts as unset");
	is(cfg.timeout_ms, 3000, "empty DOTPROXY_TIMEOUT leaves the default");
	is(parse(NOARGS, ENVP("DOTPROXY_TIMEOUT=1000",
	    "DOTPROXY_TIMEOUT=2000")), 0, "a doubled variable parses");
	is(cfg.timeout_ms, 1000, "the first of two variables wins (getenv)");
	is(parse(NOARGS, ENVP("XDOTPROXY_TIMEOUT=abc", "dotproxy_timeout=abc")),
	    0, "names are matched exactly");
	is(cfg.timeout_ms, 3000, "(and those are not the twin)");
}

/* A DOTPROXY_* name that is no twin stops the program, naming it. */
static void
test_env_unknown(void)
{
	static const char *const project[] = {
		"DOTPROXY_INIT_EXCLUDE_UID=1337", "DOTPROXY_INIT_POD_IP=192.0.2.1",
		"DOTPROXY_CNI_PLUGIN_CONFIG=x", "DOTPROXY_BIN=/x",
		"DOTPROXY_DOCKER_TESTS=0", "DOTPROXY_IMAGE=dotproxy:1",
		"DOTPROXY_UPSTREAM_IMAGE=u:1", "DOTPROXY_VERSION=1.2.3",
	};
	char name[200], *envp[2] = { name, NULL };
	size_t i;

	expect_err("a misspelled twin", NOARGS, ENVP("DOTPROXY_TIMEOUTX=1"),
	    "DOTPROXY_TIMEOUTX: unknown environment variable",
	    "did you mean DOTPROXY_TIMEOUT?");
	expect_err("a transposition", NOARGS,
	    ENVP("DOTPROXY_TIMEOUT=1000", "DOTPROXY_LSITEN=127.0.0.1:53"),
	    "DOTPROXY_LSITEN: unknown", "did you mean DOTPROXY_LISTEN?");
	expect_err("a name far from every twin", NOARGS,
	    ENVP("DOTPROXY_SOMETHING=else"), "DOTPROXY_SOMETHING: unknown",
	    NULL);
	ok(strstr(err, "did you mean") == NULL, "no guess when none is close");
	expect_err("empty, still named", NOARGS, ENVP("DOTPROXY_TIMEOUTS="),
	    "DOTPROXY_TIMEOUTS: unknown", NULL);
	expect_err("no '='", NOARGS, ENVP("DOTPROXY_X"), "DOTPROXY_X: unknown",
	    NULL);
	expect_err("only the prefix", NOARGS, ENVP("DOTPROXY_=1"),
	    "DOTPROXY_: unknown", NULL);
	expect_err("a prefix of the project's names is no exception", NOARGS,
	    ENVP("DOTPROXY_INIT=1"), "DOTPROXY_INIT: unknown", NULL);
	expect_err("a name with a newline and a control byte: one line",
	    NOARGS, ENVP("DOTPROXY_LOG\nX\x1d=1"), "DOTPROXY_LOG?X?: unknown",
	    NULL);
	memset(name, 'A', sizeof(name));
	memcpy(name, "DOTPROXY_", 9);
	name[sizeof(name) - 3] = '=';
	name[sizeof(name) - 2] = '1';
	name[sizeof(name) - 1] = '\0';
	expect_err("a long name is cut in the message", NOARGS, envp,
	    "DOTPROXY_AAAA", "...: unknown");
	ok(strlen(err) < 200, "(%zu bytes)", strlen(err));
	for (i = 0; i < sizeof(project) / sizeof(project[0]); i++)
		is(parse(NOARGS, ENVP(project[i])), 0,
		    "the project's own %s is not an error", project[i]);
	is(parse(ARGV("--version"), ENVP("DOTPROXY_TIMEOUTX=1")), 0,
	    "--version still answers");
	is(cfg.action, CFG_VERSION, "(version)");
}

static void
test_precedence(void)
{
	is(parse(ARGV("--timeout", "5000"), ENVP("DOTPROXY_TIMEOUT=4000")), 0,
	    "flag and env: parse");
	is(cfg.timeout_ms, 5000, "flag beats env");
	is(parse(NOARGS, ENVP("DOTPROXY_TIMEOUT=4000")), 0, "env: parse");
	is(cfg.timeout_ms, 4000, "env beats default");
	is(parse(ARGV("--log-format", "text"),
	    ENVP("DOTPROXY_LOG_FORMAT=json")), 0, "format flag and env");
	is(cfg.log_format, LOG_FMT_TEXT, "flag beats env (log format)");

	is(parse(ARGV("--listen", "127.0.0.3:53"),
	    ENVP("DOTPROXY_LISTEN=127.0.0.1:53,127.0.0.2:53")), 0,
	    "repeatable flag and env list: parse");
	ok(cfg.nlisten == 1 &&
	    strcmp(addr_text(&cfg.listen[0]), "127.0.0.3:53") == 0,
	    "a repeatable flag replaces the env list");
	is(parse(NOARGS, ENVP("DOTPROXY_LISTEN=127.0.0.9:53")), 0,
	    "env list: parse");
	ok(cfg.nlisten == 1 &&
	    strcmp(addr_text(&cfg.listen[0]), "127.0.0.9:53") == 0,
	    "an env list replaces the default list");
	is(parse(ARGV("--upstream", "192.0.2.1#a.example", "--upstream",
	    "192.0.2.2#b.example", "--upstream", "192.0.2.3#c.example"),
	    ENVP("DOTPROXY_UPSTREAM=198.51.100.1#env.example")), 0,
	    "three upstream flags: parse");
	ok(cfg.nupstream == 3 &&
	    strcmp(cfg.upstream[0].auth_name, "a.example") == 0 &&
	    strcmp(cfg.upstream[2].auth_name, "c.example") == 0,
	    "repeated flags add up, after replacing env and default");
	is(parse(ARGV("--local-zone", "svc.cluster.local"),
	    ENVP("DOTPROXY_LOCAL_ZONE=a.example,b.example")), 0,
	    "zone flag and env: parse");
	is(cfg.nzones, 1, "--local-zone replaces DOTPROXY_LOCAL_ZONE");
}

static void
test_upstream_syntax(void)
{
	struct cfg_upstream up;
	struct sockaddr_in6 sin6;
	char long_spec[600];
	uint8_t ip6[16];
	int r;

	r = config_parse_upstream("2001:db8::1@853#dot.example", &up, err,
	    sizeof(err));
	is(r, 0, "IPv6 upstream with port and name");
	memcpy(&sin6, &up.addr.ss, sizeof(sin6));
	inet_pton(AF_INET6, "2001:db8::1", ip6);
	ok(sin6.sin6_family == AF_INET6 && ntohs(sin6.sin6_port) == 853 &&
	    memcmp(&sin6.sin6_addr, ip6, 16) == 0 &&
	    up.addr.len == sizeof(sin6), "IPv6 upstream: address and port");
	ok(strcmp(up.auth_name, "dot.example") == 0 && up.npins == 0,
	    "IPv6 upstream: name, no pins");
	ok(strcmp(up.text, "2001:db8::1@853#dot.example") == 0,
	    "IPv6 upstream: text kept");

	is(config_parse_upstream("2001:db8::53@8853#dot.example.", &up, err,
	    sizeof(err)), 0, "IPv6 upstream, other port, trailing dot");
	ok(strcmp(addr_text(&up.addr), "[2001:db8::53]:8853") == 0 &&
	    strcmp(up.auth_name, "dot.example") == 0,
	    "trailing dot stripped (%s, %s)", addr_text(&up.addr), up.auth_name);
	is(config_parse_upstream("[2001:db8::1]@853#dot.example", &up, err,
	    sizeof(err)), 0, "IPv6 in brackets is accepted too");
	is(config_parse_upstream("192.0.2.1#dot.example", &up, err,
	    sizeof(err)), 0, "no port: default");
	ok(strcmp(addr_text(&up.addr), "192.0.2.1:853") == 0,
	    "no port means 853");

	is(config_parse_upstream("192.0.2.1^ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/"
	    "YfIAFa0=", &up, err, sizeof(err)), 0, "pin only, no name");
	ok(up.npins == 1 && up.auth_name[0] == '\0', "pin only: one pin");
	is_mem(up.pins[0], pin_abc, 32, "pin decodes to SHA-256(abc)");

	r = config_parse_upstream("192.0.2.1@853#dot.example^ungWv48Bz+pBQUDeXa4"
	    "iI7ADYaOWF3qctBD/YfIAFa0=^xGufWBYLkZsolpaInTglKyNqIbnIWiigsloqy6mK"
	    "mn8=", &up, err, sizeof(err));
	ok(r == 0 && up.npins == 2, "name and two pins");
	is_mem(up.pins[0], pin_abc, 32, "first pin bytes");
	is_mem(up.pins[1], pin_spki, 32, "second pin: openssl SPKI vector");
	(void)pin_abc_b64;
	(void)pin_spki_b64;

	/* A long spec is kept cut, terminated, ending in "...". */
	snprintf(long_spec, sizeof(long_spec), "192.0.2.1#dot.example"
	    "^%s^%s^%s^%s", pin_abc_b64, pin_spki_b64, pin_abc_b64,
	    pin_spki_b64);
	r = config_parse_upstream(long_spec, &up, err, sizeof(err));
	ok(r == 0 && up.npins == 4, "four pins (the maximum)");
	snprintf(long_spec, sizeof(long_spec), "192.0.2.1#%s.%s.%s.%s^%s^%s^%s",
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
	    "ccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc",
	    "ddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd",
	    pin_abc_b64, pin_spki_b64, pin_abc_b64);
	r = config_parse_upstream(long_spec, &up, err, sizeof(err));
	ok(r == 0 && strlen(up.auth_name) == 253,
	    "a 253-character name is accepted");
	ok(strlen(up.text) == sizeof(up.text) - 1 &&
	    strcmp(up.text + sizeof(up.text) - 4, "...") == 0,
	    "an over-long spec is kept cut with '...'");
}

static void
test_addr_syntax(void)
{
	struct cfg_addr a;

	is(config_parse_addr("192.0.2.7:5353", &a, err, sizeof(err)), 0,
	    "addr: IPv4");
	ok(strcmp(addr_text(&a), "192.0.2.7:5353") == 0, "addr: IPv4 text");
	is(config_parse_addr("[2001:db8::7]:65535", &a, err, sizeof(err)), 0,
	    "addr: IPv6, port 65535");
	ok(strcmp(addr_text(&a), "[2001:db8::7]:65535") == 0, "addr: v6 text");
	is(config_parse_addr("0.0.0.0:1", &a, err, sizeof(err)), 0,
	    "addr: port 1");
	is(config_parse_addr("127.0.0.1", &a, err, sizeof(err)), -E_USAGE,
	    "addr: no port");
	is(config_parse_addr("::1:53", &a, err, sizeof(err)), -E_USAGE,
	    "addr: IPv6 without brackets");
	ok(strstr(err, "brackets") != NULL, "addr: says brackets (%s)", err);
	is(config_parse_addr("[192.0.2.1]:53", &a, err, sizeof(err)), -E_USAGE,
	    "addr: IPv4 in brackets");
	is(config_parse_addr("[::1:53", &a, err, sizeof(err)), -E_USAGE,
	    "addr: missing ']'");
	is(config_parse_addr("[::1]53", &a, err, sizeof(err)), -E_USAGE,
	    "addr: no ':' after ']'");
	is(config_parse_addr("localhost:53", &a, err, sizeof(err)), -E_USAGE,
	    "addr: host names are not addresses");
	is(config_parse_addr("1.2.3:53", &a, err, sizeof(err)), -E_USAGE,
	    "addr: short IPv4");
	is(config_parse_addr("127.0.0.1:+53", &a, err, sizeof(err)), -E_USAGE,
	    "addr: signed port");
	is(config_parse_addr("127.0.0.1:99999999999999999999", &a, err,
	    sizeof(err)), -E_USAGE, "addr: huge port");
	ok(strstr(err, "out of range") != NULL, "huge port is out of range");

	/* Formatting into small buffers stays terminated. */
	{
		char small[8];

		config_parse_addr("[2001:db8::7]:65535", &a, err, sizeof(err));
		config_addr_text(&a, small, sizeof(small));
		ok(strlen(small) == 7 && strncmp(small, "[2001:d", 7) == 0,
		    "addr text cut to the buffer");
		memset(&a, 0, sizeof(a));
		config_addr_text(&a, small, sizeof(small));
		ok(strcmp(small, "?") == 0, "addr text of no family is '?'");
	}
}

static void
test_errors(void)
{
	const char *many[2 + 2 * (CFG_MAX_UPSTREAMS + 1)];
	char specs[CFG_MAX_UPSTREAMS + 1][40];
	char manyenv[600];
	char longpath[CFG_PATH_MAX + 16];
	char arg[CFG_PATH_MAX + 32];
	size_t i, n;

	/* Command-line syntax. */
	expect_err("unknown option", ARGV("--foo"), NULL,
	    "unknown option '--foo' (see --help)", NULL);
	expect_err("unknown option with =", ARGV("--foo=bar"), NULL,
	    "unknown option '--foo' (see --help)", NULL);
	expect_err("unknown short option", ARGV("-x"), NULL,
	    "unknown option '-x'", NULL);
	expect_err("no prefix matching", ARGV("--time", "100"), NULL,
	    "unknown option '--time'", NULL);
	expect_err("missing value at end", ARGV("--timeout"), NULL,
	    "--timeout: needs a value", NULL);
	expect_err("missing value before a flag", ARGV("--timeout",
	    "--log-queries"), NULL, "--timeout: needs a value", NULL);
	expect_err("positional argument", ARGV("foo"), NULL,
	    "unexpected argument 'foo'", NULL);
	expect_err("positional after --", ARGV("--", "foo"), NULL,
	    "unexpected argument 'foo'", NULL);
	expect_err("lone dash", ARGV("-"), NULL, "unexpected argument '-'",
	    NULL);
	expect_err("--help=x", ARGV("--help=x"), NULL, "--help: takes no value",
	    NULL);
	expect_err("bad flag boolean", ARGV("--allow-root=maybe"), NULL,
	    "--allow-root: 'maybe' is not a boolean", NULL);
	is(parse(ARGV("--"), NULL), 0, "a bare -- is fine");

	/* Numbers. */
	expect_err("bad number", ARGV("--timeout", "abc"), NULL,
	    "--timeout: 'abc' is not a number (100..60000 ms)", NULL);
	expect_err("bad number, = form", ARGV("--timeout=abc"), NULL,
	    "--timeout: 'abc' is not a number", NULL);
	expect_err("trailing junk", ARGV("--timeout", "100ms"), NULL,
	    "--timeout: '100ms' is not a number", NULL);
	expect_err("sign", ARGV("--timeout", "+100"), NULL,
	    "--timeout: '+100' is not a number", NULL);
	expect_err("negative", ARGV("--connections", "-1"), NULL,
	    "--connections: '-1' is not a number (1..16)", NULL);
	expect_err("negative, = form", ARGV("--connections=-1"), NULL,
	    "--connections: '-1' is not a number (1..16)", NULL);
	expect_err("leading blank", ARGV("--timeout", " 100"), NULL,
	    "--timeout: ' 100' is not a number", NULL);
	expect_err("empty number", ARGV("--timeout="), NULL,
	    "--timeout: '' is not a number", NULL);
	expect_err("hex", ARGV("--max-clients", "0x10"), NULL,
	    "--max-clients: '0x10' is not a number", NULL);
	expect_err("below range", ARGV("--timeout", "99"), NULL,
	    "--timeout: '99' is out of range (100..60000 ms)", NULL);
	expect_err("above range", ARGV("--timeout", "60001"), NULL,
	    "--timeout: '60001' is out of range", NULL);
	expect_err("huge", ARGV("--timeout", "18446744073709551616"), NULL,
	    "--timeout: '18446744073709551616' is out of range", NULL);
	expect_err("idle-timeout range", ARGV("--idle-timeout", "600001"),
	    NULL, "--idle-timeout: ", "out of range");
	expect_err("client-idle-timeout range", ARGV("--client-idle-timeout",
	    "99"), NULL, "--client-idle-timeout: ", "out of range");
	expect_err("connections range", ARGV("--connections", "17"), NULL,
	    "--connections: '17' is out of range (1..16)", NULL);
	expect_err("connections zero", ARGV("--connections", "0"), NULL,
	    "--connections: ", "out of range");
	expect_err("max-inflight range", ARGV("--max-inflight", "4097"), NULL,
	    "--max-inflight: ", "(1..4096)");
	expect_err("max-clients range", ARGV("--max-clients", "65537"), NULL,
	    "--max-clients: ", "(1..65536)");
	expect_err("max-pipeline range", ARGV("--max-pipeline", "0"), NULL,
	    "--max-pipeline: ", "out of range");

	/* The same errors from the environment name the variable. */
	expect_err("env bad number", NOARGS, ENVP("DOTPROXY_TIMEOUT=abc"),
	    "DOTPROXY_TIMEOUT: 'abc' is not a number (100..60000 ms)", NULL);
	expect_err("env out of range", NOARGS,
	    ENVP("DOTPROXY_MAX_INFLIGHT=5000"), "DOTPROXY_MAX_INFLIGHT: ",
	    "out of range");
	expect_err("env bad boolean", NOARGS, ENVP("DOTPROXY_LOG_QUERIES=2"),
	    "DOTPROXY_LOG_QUERIES: '2' is not a boolean", NULL);
	expect_err("env bad listen", NOARGS, ENVP("DOTPROXY_LISTEN=1.2.3.4"),
	    "DOTPROXY_LISTEN: ", "no port");
	expect_err("env empty list item", NOARGS,
	    ENVP("DOTPROXY_LISTEN=127.0.0.1:53,,[::1]:53"),
	    "DOTPROXY_LISTEN: ", "empty item");
	expect_err("env trailing comma", NOARGS,
	    ENVP("DOTPROXY_LOCAL_ZONE=cluster.local,"),
	    "DOTPROXY_LOCAL_ZONE: ", "empty item");
	expect_err("env upstream without name or pin", NOARGS,
	    ENVP("DOTPROXY_UPSTREAM=192.0.2.1"), "DOTPROXY_UPSTREAM: 192.0.2.1: ",
	    "no auth name (#NAME) and no pin (^PIN): refusing unauthenticated "
	    "TLS (RFC 8310 strict profile)");
	expect_err("env bad log level", NOARGS, ENVP("DOTPROXY_LOG_LEVEL=loud"),
	    "DOTPROXY_LOG_LEVEL: 'loud'", NULL);
	/* A bad value in a flag overridden... is still checked in env. */
	expect_err("env checked even when a flag follows", ARGV("--timeout",
	    "200"), ENVP("DOTPROXY_TIMEOUT=abc"), "DOTPROXY_TIMEOUT: ", NULL);

	/* Addresses. */
	expect_err("bad listen IP", ARGV("--listen", "127.0.0.256:53"), NULL,
	    "--listen: 127.0.0.256:53: '127.0.0.256' is not an IP address",
	    NULL);
	expect_err("listen port 0", ARGV("--listen", "127.0.0.1:0"), NULL,
	    "--listen: ", "port '0' is out of range (1..65535)");
	expect_err("listen port 65536", ARGV("--listen", "[::1]:65536"), NULL,
	    "--listen: ", "port '65536' is out of range (1..65535)");
	expect_err("listen port junk", ARGV("--listen", "127.0.0.1:53x"), NULL,
	    "--listen: ", "port '53x' is not a number");
	expect_err("listen port empty", ARGV("--listen", "127.0.0.1:"), NULL,
	    "--listen: ", "not a number");
	expect_err("listen twice", ARGV("--listen", "127.0.0.1:53",
	    "--listen", "127.0.0.1:53"), NULL, "--listen: 127.0.0.1:53 is "
	    "given twice", NULL);
	expect_err("listen twice from env", NOARGS,
	    ENVP("DOTPROXY_LISTEN=[::1]:53,[::1]:53"),
	    "DOTPROXY_LISTEN: [::1]:53 is given twice", NULL);
	expect_err("metrics on a listen address", ARGV("--metrics",
	    "127.0.0.1:15353"), NULL, "--metrics: 127.0.0.1:15353 is also",
	    NULL);
	expect_err("bad metrics", ARGV("--metrics", "nowhere"), NULL,
	    "--metrics: nowhere: no port", NULL);
	expect_err("metrics port 0", ARGV("--metrics=[::1]:0"), NULL,
	    "--metrics: ", "out of range");
	n = 2 + CFG_MAX_LISTEN;
	snprintf(manyenv, sizeof(manyenv), "DOTPROXY_LISTEN=127.0.0.1:1");
	for (i = 2; i < n; i++) {
		size_t l = strlen(manyenv);

		snprintf(manyenv + l, sizeof(manyenv) - l, ",127.0.0.1:%zu", i);
	}
	expect_err("too many listeners", NOARGS, ENVP(manyenv),
	    "DOTPROXY_LISTEN: ", "more than 8 listen addresses");

	/* Upstreams. */
	expect_err("upstream without name or pin", ARGV("--upstream",
	    "192.0.2.1@853"), NULL, "--upstream: 192.0.2.1@853: no auth name "
	    "(#NAME) and no pin (^PIN): refusing unauthenticated TLS (RFC 8310 "
	    "strict profile)", NULL);
	expect_err("upstream bad IP", ARGV("--upstream", "192.0.2.300#x.example"),
	    NULL, "--upstream: ", "'192.0.2.300' is not an IP address");
	expect_err("upstream host name", ARGV("--upstream", "dns.example#x"),
	    NULL, "--upstream: ", "is not an IP address");
	expect_err("upstream port 0", ARGV("--upstream", "192.0.2.1@0#x.example"),
	    NULL, "--upstream: ", "port '0' is out of range (1..65535)");
	expect_err("upstream port 65536", ARGV("--upstream",
	    "2001:db8::1@65536#x.example"), NULL, "--upstream: ",
	    "port '65536' is out of range");
	expect_err("upstream empty port", ARGV("--upstream", "192.0.2.1@#x.example"),
	    NULL, "--upstream: ", "port '' is not a number");
	expect_err("upstream empty name", ARGV("--upstream", "192.0.2.1#"),
	    NULL, "--upstream: ", "auth name '' is empty");
	expect_err("upstream bad name char", ARGV("--upstream",
	    "192.0.2.1#dot_example"), NULL, "--upstream: ", "auth name");
	expect_err("upstream empty label", ARGV("--upstream",
	    "192.0.2.1#dot..example"), NULL, "--upstream: ", "empty label");
	expect_err("upstream hyphen label", ARGV("--upstream",
	    "192.0.2.1#-dot.example"), NULL, "--upstream: ", "starting with");
	expect_err("upstream label 64", ARGV("--upstream", "192.0.2.1#"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
	    NULL, "--upstream: ", "longer than 63");
	expect_err("upstream parts out of order", ARGV("--upstream",
	    "192.0.2.1#dot.example@853"), NULL, "--upstream: ", "out of order");
	expect_err("upstream bad base64 pin", ARGV("--upstream",
	    "192.0.2.1^not*base64*at*all*at*all*at*all*at*all="), NULL,
	    "--upstream: ", "is not base64");
	expect_err("upstream unpadded pin", ARGV("--upstream",
	    "192.0.2.1^ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0"), NULL,
	    "--upstream: ", "is not base64");
	expect_err("upstream url-safe pin", ARGV("--upstream",
	    "192.0.2.1^ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0="), NULL,
	    "--upstream: ", "is not base64");
	expect_err("upstream non-canonical pin", ARGV("--upstream",
	    "192.0.2.1^ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa1="), NULL,
	    "--upstream: ", "is not base64");
	expect_err("upstream padding inside", ARGV("--upstream",
	    "192.0.2.1^ungW=v48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0"), NULL,
	    "--upstream: ", "is not base64");
	expect_err("upstream empty pin", ARGV("--upstream",
	    "192.0.2.1#x.example^"), NULL, "--upstream: ", "is not base64");
	expect_err("upstream SHA-1 pin", ARGV("--upstream",
	    "192.0.2.1^qZk+NkcGgWq6PiVxeFDCbJzQ2J0="), NULL, "--upstream: ",
	    "decodes to 20 bytes, not the 32");
	expect_err("upstream 33-byte pin", ARGV("--upstream",
	    "192.0.2.1^AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), NULL,
	    "--upstream: ", "decodes to 33 bytes");
	expect_err("upstream five pins", ARGV("--upstream", "192.0.2.1"
	    "^ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="
	    "^ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="
	    "^ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="
	    "^ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="
	    "^ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="), NULL,
	    "--upstream: ", "more than 4 pins");
	expect_err("upstream in env, flag form fine", ARGV("--upstream",
	    "192.0.2.1#ok.example"), ENVP("DOTPROXY_UPSTREAM=192.0.2.1"),
	    "DOTPROXY_UPSTREAM: 192.0.2.1: no auth name", NULL);

	/* Too many upstreams, as flags. */
	n = 0;
	many[n++] = "dotproxy";
	for (i = 0; i < CFG_MAX_UPSTREAMS + 1; i++) {
		snprintf(specs[i], sizeof(specs[i]), "192.0.2.%zu#x.example",
		    i + 1);
		many[n++] = "--upstream";
		many[n++] = specs[i];
	}
	many[n] = NULL;
	expect_err("too many upstreams", vec(many), NULL, "--upstream: ",
	    "more than 8 upstreams");
	many[n - 2] = NULL;
	is(parse(vec(many), NULL), 0, "eight upstreams are fine");
	is(cfg.nupstream, CFG_MAX_UPSTREAMS, "eight upstreams stored");

	/* Zones and paths. */
	expect_err("bad zone", ARGV("--local-zone", "a..b"), NULL,
	    "--local-zone: 'a..b' is not a valid zone name", NULL);
	expect_err("bad zone label", ARGV("--local-zone", "aaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example"), NULL,
	    "--local-zone: ", "not a valid zone name");
	expect_err("empty ca-file", ARGV("--ca-file="), NULL,
	    "--ca-file: empty path", NULL);
	memset(longpath, 'a', CFG_PATH_MAX);
	longpath[0] = '/';
	longpath[CFG_PATH_MAX] = '\0';
	snprintf(arg, sizeof(arg), "--config=%s", longpath);
	expect_err("long config path", ARGV(arg), NULL, "--config: ",
	    "path is longer than 1023 bytes");
	longpath[CFG_PATH_MAX - 1] = '\0';
	is(parse(ARGV("--ca-file", longpath), NULL), 0,
	    "a 1023-byte path is fine");
	is(strlen(cfg.ca_file), CFG_PATH_MAX - 1, "ca-file stored whole");
	expect_err("bad log format", ARGV("--log-format", "xml"), NULL,
	    "--log-format: 'xml' is not one of text, json", NULL);
	expect_err("bad log level", ARGV("--log-level=loud"), NULL,
	    "--log-level: 'loud' is not one of", NULL);

	/* User text in errors is made printable. */
	expect_err("control bytes shown as '?'", ARGV("--timeout", "1\n2"),
	    NULL, "--timeout: '1?2' is not a number", NULL);

	/* A small error buffer is cut, still terminated. */
	{
		char small[10];
		char *const *av = ARGV("--timeout", "abc");

		memset(small, 'x', sizeof(small));
		is(config_parse(&cfg, 3, av, NULL, small, sizeof(small)),
		    -E_USAGE, "small err buffer: still an error");
		ok(strcmp(small, "--timeout") == 0, "small err buffer cut: %s",
		    small);
		is(config_parse(&cfg, 3, av, NULL, NULL, 0), -E_USAGE,
		    "NULL err buffer is fine");
	}
}

static void
test_actions(void)
{
	is(parse(ARGV("--help"), NULL), 0, "--help: 0");
	is(cfg.action, CFG_HELP, "--help: action");
	is(parse(ARGV("-h"), NULL), 0, "-h: 0");
	is(cfg.action, CFG_HELP, "-h: action");
	is(parse(ARGV("--version"), NULL), 0, "--version: 0");
	is(cfg.action, CFG_VERSION, "--version: action");
	is(parse(ARGV("-V"), NULL), 0, "-V: 0");
	is(cfg.action, CFG_VERSION, "-V: action");
	is(parse(ARGV("--timeout", "200", "--help", "--bogus", "x"),
	    ENVP("DOTPROXY_TIMEOUT=abc")), 0,
	    "--help wins over a bad env value and anything after it");
	is(cfg.action, CFG_HELP, "--help after other flags: action");
	expect_err("an error before --help still counts", ARGV("--bogus",
	    "--help"), NULL, "unknown option '--bogus'", NULL);
}

static void
test_usage(void)
{
	static const char *const want[] = {
		"usage: dotproxy", "Listening:", "Upstreams:", "Limits:",
		"Logging:", "Transparent mode:", "Exit status:",
		"--listen ADDR:PORT", "DOTPROXY_LISTEN",
		"127.0.0.1:15353 and [::1]:15353",
		"--upstream IP[@PORT][#AUTH-NAME][^PIN]...", "DOTPROXY_UPSTREAM",
		"1.1.1.1@853#cloudflare-dns.com and\n"
		"        1.0.0.1@853#cloudflare-dns.com.",
		"--ca-file PATH", "DOTPROXY_CA_FILE",
		"--local-zone ZONE", "DOTPROXY_LOCAL_ZONE",
		"--timeout MS", "DOTPROXY_TIMEOUT", "Range 100..60000 ms",
		"Default: 3000 ms",
		"--idle-timeout MS", "DOTPROXY_IDLE_TIMEOUT", "Default: 8000 ms",
		"--client-idle-timeout MS", "DOTPROXY_CLIENT_IDLE_TIMEOUT",
		"Default: 10000 ms",
		"--connections N", "DOTPROXY_CONNECTIONS", "Range 1..16",
		"--max-inflight N", "DOTPROXY_MAX_INFLIGHT", "Default: 1024.",
		"--max-clients N", "DOTPROXY_MAX_CLIENTS", "Default: 1024.",
		"--max-pipeline N", "DOTPROXY_MAX_PIPELINE", "Default: 128.",
		"--metrics ADDR:PORT", "DOTPROXY_METRICS",
		"--log-level debug|info|warn|error", "DOTPROXY_LOG_LEVEL",
		"--log-format text|json", "DOTPROXY_LOG_FORMAT",
		"--log-queries\n", "DOTPROXY_LOG_QUERIES",
		"--allow-root\n", "DOTPROXY_ALLOW_ROOT",
		"--config FILE", "DOTPROXY_CONFIG",
		"-h, --help", "-V, --version",
		"0  clean shutdown", "1  runtime failure",
		"2  bad usage or configuration",
	};
	char *text = NULL, *line, *save = NULL;
	size_t len = 0, i, longest = 0;
	FILE *fp;

	if ((fp = open_memstream(&text, &len)) == NULL) {
		ok(0, "open_memstream");
		return;
	}
	config_usage(fp);
	fclose(fp);
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		ok(strstr(text, want[i]) != NULL, "usage mentions '%.*s'",
		    (int)strcspn(want[i], "\n"), want[i]);
	ok(strchr(text, '\t') == NULL, "usage has no tabs");
	for (line = strtok_r(text, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save))
		if (strlen(line) > longest)
			longest = strlen(line);
	ok(longest <= 80, "usage lines fit 80 columns (longest %zu)", longest);
	free(text);
}

/*
 * The descriptor budget: TCP clients get what the fixed part leaves, the
 * plain cap shrinks only when not even that leaves room for a few clients,
 * and a limit too low to run is refused. The fixed part is counted here
 * from its parts, not from the code.
 */
static void
test_fd_budget(void)
{
	char *av[] = { (char *)(uintptr_t)"dotproxy",
	    (char *)(uintptr_t)"--listen", (char *)(uintptr_t)"127.0.0.1:53",
	    (char *)(uintptr_t)"--upstream",
	    (char *)(uintptr_t)"192.0.2.1#a.test,192.0.2.2#a.test",
	    (char *)(uintptr_t)"--connections", (char *)(uintptr_t)"3",
	    (char *)(uintptr_t)"--max-clients", (char *)(uintptr_t)"1000",
	    (char *)(uintptr_t)"--max-plain", (char *)(uintptr_t)"100", NULL };
	struct fd_budget b;
	uint64_t fixed;

	is(parse(av, NULL), 0, "budget: a config with 2 upstreams x 3 connections");
	/* stdio 3, epoll + signalfd 2, 2 per listen address, upstream
	 * connections twice over, 2 netlink sockets, the margin. */
	fixed = 3 + 2 + 2 * 1 + 2 * 2 * 3 + 2 + CONFIG_FD_MARGIN;
	is(config_fd_budget(&cfg, 1 << 20, 0, &b), 0, "a large limit fits");
	is(b.reserved, fixed, "reserved: %llu", (unsigned long long)fixed);
	is(b.max_clients, 1000, "clients as asked");
	is(b.max_plain, 100, "plain as asked");
	is(cfg.max_clients, 1000, "the config itself is not changed");
	is(config_fd_budget(&cfg, 1024, 0, &b), 0, "the usual 1024 fits");
	is(b.max_clients, 1024 - fixed - 100, "clients get what is left");
	is(b.max_plain, 100, "plain keeps its cap");
	is(config_fd_budget(&cfg, fixed + 1 + CONFIG_FD_MIN_CLIENTS + 10, 0, &b),
	    0, "a tight limit fits");
	is(b.max_plain, (1 + CONFIG_FD_MIN_CLIENTS + 10 - CONFIG_FD_MIN_CLIENTS) / 2,
	    "plain shrinks to half of what the minimum clients leave");
	is(b.max_clients, 1 + CONFIG_FD_MIN_CLIENTS + 10 - b.max_plain,
	    "clients get the rest (at least the minimum)");
	ok(b.max_clients >= CONFIG_FD_MIN_CLIENTS, "never below the minimum");
	is(config_fd_budget(&cfg, fixed + CONFIG_FD_MIN_CLIENTS, 0, &b),
	    -E_TOOBIG, "a limit with no room for the minimum is refused");
	cfg.has_metrics = true;
	is(config_fd_budget(&cfg, 1024, 5, &b), 0, "with the metrics endpoint");
	is(b.reserved, fixed + 1 + 5, "its listener and clients are reserved");
	is(b.max_clients, 1024 - fixed - 6 - 100, "and taken from the clients");
}

/* --workers and --handover-socket (proxy/worker.h, proxy/handover.h). */
static void
test_workers(void)
{
	char longpath[CFG_SOCKPATH_MAX + 8];

	is(parse(NOARGS, NULL), 0, "workers: defaults");
	is(cfg.workers, 0u, "--workers defaults to auto (0)");
	is(cfg.handover_socket[0], '\0', "no handover socket by default");
	is(parse(ARGV("--workers", "3", "--handover-socket", "/run/dp/ho"),
	    NULL), 0, "--workers 3 --handover-socket PATH");
	is(cfg.workers, 3u, "three workers");
	ok(strcmp(cfg.handover_socket, "/run/dp/ho") == 0, "the handover path");
	is(parse(ARGV("--workers=auto"), ENVP("DOTPROXY_WORKERS=2")), 0,
	    "the flag beats the environment");
	is(cfg.workers, 0u, "auto from the flag");
	is(parse(NOARGS, ENVP("DOTPROXY_WORKERS=256")), 0, "the most");
	is(cfg.workers, 256u, "256 from the environment");
	expect_err("no workers", ARGV("--workers", "0"), NULL, "--workers:",
	    "not auto or a number from 1 to 256");
	expect_err("too many workers", ARGV("--workers", "257"), NULL,
	    "--workers:", "from 1 to 256");
	expect_err("workers not a number", ARGV("--workers", "two"), NULL,
	    "--workers:", "'two'");
	expect_err("workers with a sign", ARGV("--workers", "+2"), NULL,
	    "--workers:", NULL);
	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = '\0';
	expect_err("handover path too long for a Unix socket",
	    ARGV("--handover-socket", longpath), NULL, "--handover-socket:",
	    "longer than");
	expect_err("empty handover path", ARGV("--handover-socket="), NULL,
	    "--handover-socket:", "empty path");
}

int
main(void)
{
	test_defaults();
	test_every_flag();
	test_env();
	test_env_unknown();
	test_precedence();
	test_upstream_syntax();
	test_addr_syntax();
	test_errors();
	test_actions();
	test_usage();
	test_fd_budget();
	test_workers();
	return tap_done();
}
