/*
 * libFuzzer target: the configuration, as flags, as DOTPROXY_* environment
 * entries and as a --config file. The input is split at NUL bytes; the
 * first byte picks where the pieces go (argv, envp, or the first piece as
 * file text and the rest as argv). A parse that succeeds must leave every
 * value in its documented range; one that fails must say why in one line.
 * Each piece also goes through config_parse_addr and
 * config_parse_upstream, and an address that parses must print and parse
 * back to the same socket address.
 */
#include <sys/socket.h>

#include <netinet/in.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/config.h"
#include "proxy/dns.h"
#include "proxy/errors.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define CHECK(cond) do { if (!(cond)) abort(); } while (0)
#define PIECES_MAX	48
#define INPUT_MAX	8192

static void
check_err(const char *err, size_t cap)
{
	size_t n = strnlen(err, cap);

	CHECK(n > 0 && n < cap);
	CHECK(memchr(err, '\n', n) == NULL);
}

static void
check_addr(const struct cfg_addr *a)
{
	CHECK(a->ss.ss_family == AF_INET || a->ss.ss_family == AF_INET6);
	CHECK(a->len == (a->ss.ss_family == AF_INET ?
	    sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6)));
}

/* An address that parsed prints and parses back to the same thing. */
static void
check_addr_round_trip(const struct cfg_addr *a)
{
	struct cfg_addr b;
	char text[128], err[256];

	check_addr(a);
	config_addr_text(a, text, sizeof(text));
	CHECK(config_parse_addr(text, &b, err, sizeof(err)) == 0);
	CHECK(b.len == a->len && b.ss.ss_family == a->ss.ss_family);
	CHECK(memcmp(&a->ss, &b.ss, a->len) == 0);
}

static void
check_upstream(const struct cfg_upstream *u)
{
	size_t n = strnlen(u->auth_name, sizeof(u->auth_name));

	check_addr(&u->addr);
	CHECK(n < sizeof(u->auth_name));
	CHECK(n > 0 || u->npins > 0);
	CHECK(u->npins <= CFG_MAX_PINS);
	CHECK(strnlen(u->text, sizeof(u->text)) < sizeof(u->text));
	if (n > 0) {
		uint8_t wire[DNS_NAME_MAX];
		size_t wl;

		CHECK(dns_name_from_text(u->auth_name, wire, &wl) == 0);
	}
}

static void
check_config(const struct config *c)
{
	char text[4 * DNS_NAME_MAX + 2];
	size_t i;

	CHECK(c->action == CFG_RUN || c->action == CFG_HELP ||
	    c->action == CFG_VERSION);
	if (c->action != CFG_RUN)
		return;
	CHECK(c->nlisten >= 1 && c->nlisten <= CFG_MAX_LISTEN);
	for (i = 0; i < c->nlisten; i++)
		check_addr_round_trip(&c->listen[i]);
	CHECK(c->nupstream >= 1 && c->nupstream <= CFG_MAX_UPSTREAMS);
	for (i = 0; i < c->nupstream; i++)
		check_upstream(&c->upstream[i]);
	CHECK(c->nzones <= CFG_MAX_ZONES);
	for (i = 0; i < c->nzones; i++) {
		CHECK(c->zones[i].len >= 1 && c->zones[i].len <= DNS_NAME_MAX);
		CHECK(dns_name_to_text(c->zones[i].name, c->zones[i].len,
		    text, sizeof(text)) == 0);
	}
	CHECK(c->timeout_ms >= 100 && c->timeout_ms <= 60000);
	CHECK(c->idle_timeout_ms >= 100 && c->idle_timeout_ms <= 600000);
	CHECK(c->client_idle_ms >= 100 && c->client_idle_ms <= 600000);
	CHECK(c->connections >= 1 && c->connections <= 16);
	CHECK(c->max_inflight >= 1 && c->max_inflight <= 4096);
	CHECK(c->max_clients >= 1 && c->max_clients <= 65536);
	CHECK(c->max_pipeline >= 1 && c->max_pipeline <= 4096);
	CHECK(c->shutdown_grace_ms <= 120000);
	if (c->has_metrics)
		check_addr_round_trip(&c->metrics);
	CHECK(strnlen(c->ca_file, CFG_PATH_MAX) < CFG_PATH_MAX);
	CHECK(strnlen(c->resolv_conf, CFG_PATH_MAX) < CFG_PATH_MAX);
	CHECK(strnlen(c->config_file, CFG_PATH_MAX) < CFG_PATH_MAX);
}

static void
check_piece(const char *s)
{
	struct cfg_addr a;
	struct cfg_upstream u;
	char err[256];

	memset(err, 'x', sizeof(err));
	if (config_parse_addr(s, &a, err, sizeof(err)) == 0)
		check_addr_round_trip(&a);
	else
		check_err(err, sizeof(err));
	memset(err, 'x', sizeof(err));
	if (config_parse_upstream(s, &u, err, sizeof(err)) == 0)
		check_upstream(&u);
	else
		check_err(err, sizeof(err));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct config cfg;
	static char argv0[] = "dotproxy";
	char *copy, *argv[PIECES_MAX + 2], *envp[PIECES_MAX + 1];
	char *pieces[PIECES_MAX], err[512], err2[512];
	const char *file = NULL;
	size_t n = 0, i, start, flen = 0;
	unsigned mode;
	int argc = 1, nenv = 0, rc, rc2;

	if (size < 1 || size > INPUT_MAX)
		return 0;
	mode = data[0] % 3;
	if ((copy = malloc(size)) == NULL)
		return 0;
	memcpy(copy, data + 1, size - 1);
	copy[size - 1] = '\0';
	/* Split at NULs; the last piece is NUL-terminated by the copy. */
	for (start = 0, i = 0; i < size && n < PIECES_MAX; i++) {
		if (copy[i] == '\0') {
			pieces[n++] = copy + start;
			start = i + 1;
		}
	}
	argv[0] = argv0;
	for (i = 0; i < n; i++) {
		if (mode == 2 && i == 0) {
			/* The file text: its bytes, not NUL-terminated. */
			file = pieces[0];
			flen = strlen(pieces[0]);
			continue;
		}
		if (mode == 1)
			envp[nenv++] = pieces[i];
		else
			argv[argc++] = pieces[i];
		check_piece(pieces[i]);
	}
	argv[argc] = NULL;
	envp[nenv] = NULL;

	memset(err, 'x', sizeof(err));
	if (file != NULL)
		rc = config_parse_file(&cfg, argc, argv, envp, file, flen,
		    "fuzz.conf", err, sizeof(err));
	else
		rc = config_parse(&cfg, argc, argv, envp, err, sizeof(err));
	if (rc == 0)
		check_config(&cfg);
	else {
		CHECK(rc == -E_USAGE);
		check_err(err, sizeof(err));
	}
	/* Pure: the same input gives the same outcome. */
	memset(err2, 'y', sizeof(err2));
	if (file != NULL)
		rc2 = config_parse_file(&cfg, argc, argv, envp, file, flen,
		    "fuzz.conf", err2, sizeof(err2));
	else
		rc2 = config_parse(&cfg, argc, argv, envp, err2, sizeof(err2));
	CHECK(rc2 == rc);
	CHECK(rc == 0 || strcmp(err, err2) == 0);
	free(copy);
	return 0;
}
