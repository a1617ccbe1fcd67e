/*
 * Unit tests for --config files: "key value" lines, comments, booleans,
 * repeatable keys, precedence (defaults < file < environment < flags) and
 * one-line errors that name the file and line.
 */
#include "proxy/config.h"

#include <string.h>

#include "proxy/errors.h"
#include "tests/unit/tap.h"

int
main(void)
{
	static const char text[] =
	    "# dotproxy settings\n"
	    "timeout 1500\n"
	    "  upstream 192.0.2.1@853#a.example   # first\n"
	    "upstream=192.0.2.2#b.example\n"
	    "log-queries\n"
	    "idle-timeout 4000\r\n"
	    "\n";
	struct config cfg;
	char err[256];
	char a0[] = "dotproxy", a1[] = "--timeout", a2[] = "900";
	char e0[] = "DOTPROXY_IDLE_TIMEOUT=5000";
	char *argv_none[] = { a0, NULL };
	char *argv_flag[] = { a0, a1, a2, NULL };
	char *env_idle[] = { e0, NULL };
	char *env_none[] = { NULL };

	is(config_parse_file(&cfg, 1, argv_none, env_none, text, strlen(text),
	    "a.conf", err, sizeof(err)), 0, "file parses");
	is(cfg.timeout_ms, 1500, "timeout from the file");
	is(cfg.nupstream, 2, "repeatable key accumulates and replaces the default");
	ok(strcmp(cfg.upstream[1].auth_name, "b.example") == 0, "key=value form");
	ok(cfg.log_queries, "a bare boolean key is true");
	is(cfg.idle_timeout_ms, 4000, "CRLF line endings");

	is(config_parse_file(&cfg, 1, argv_none, env_idle, text, strlen(text),
	    "a.conf", err, sizeof(err)), 0, "with environment");
	is(cfg.idle_timeout_ms, 5000, "environment beats the file");
	is(config_parse_file(&cfg, 3, argv_flag, env_none, text, strlen(text),
	    "a.conf", err, sizeof(err)), 0, "with a flag");
	is(cfg.timeout_ms, 900, "a flag beats the file");

	is(config_parse_file(&cfg, 1, argv_none, env_none, "bogus 1\n", 8,
	    "b.conf", err, sizeof(err)), -E_USAGE, "unknown key refused");
	ok(strstr(err, "b.conf:1") != NULL && strstr(err, "bogus") != NULL,
	    "error names file, line and key: %s", err);
	is(config_parse_file(&cfg, 1, argv_none, env_none,
	    "timeout 5\ntimeout abc\n", 22, "c.conf", err, sizeof(err)),
	    -E_USAGE, "bad value refused");
	ok(strstr(err, "c.conf:1: timeout") != NULL, "error names the first bad line: %s", err);
	is(config_parse_file(&cfg, 1, argv_none, env_none, "upstream\n", 9,
	    "d.conf", err, sizeof(err)), -E_USAGE, "missing value refused");
	ok(strstr(err, "needs a value") != NULL, "says a value is needed: %s", err);
	is(config_parse_file(&cfg, 1, argv_none, env_none,
	    "upstream 192.0.2.9\n", 19, "e.conf", err, sizeof(err)), -E_USAGE,
	    "unauthenticated upstream refused from a file too");
	is(config_parse_file(&cfg, 1, argv_none, env_none, "config x\n", 9,
	    "f.conf", err, sizeof(err)), -E_USAGE, "a file cannot name another");
	return tap_done();
}
