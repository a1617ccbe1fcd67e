/*
 * Unit tests for the logger: logfmt and JSON lines (numbers only when they
 * are JSON numbers, escapes, booleans), levels, and the rate limit with its
 * count of suppressed lines. stderr is redirected to a temporary file.
 */
#include "proxy/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/unit/tap.h"

static FILE *capture;

/* Returns what was logged since the last call (static buffer). */
static const char *
logged(void)
{
	static char buf[8192];
	size_t n;

	fflush(capture);
	rewind(capture);
	n = fread(buf, 1, sizeof(buf) - 1, capture);
	buf[n] = '\0';
	if (ftruncate(fileno(capture), 0) != 0)
		buf[0] = '\0';
	rewind(capture);
	return buf;
}

int
main(void)
{
	struct log_limit lim;
	const char *s;
	int saved = dup(2);
	unsigned i;

	capture = tmpfile();
	if (capture == NULL || saved < 0 || dup2(fileno(capture), 2) < 0)
		return 1;

	log_setup(LOG_LVL_INFO, LOG_FMT_TEXT);
	log_info("hello there", "a=1 b=\"x y\"");
	s = logged();
	ok(strstr(s, "level=info msg=\"hello there\" a=1 b=\"x y\"\n") != NULL,
	    "logfmt line");
	log_debug("hidden", "%s", "");
	is(strlen(logged()), 0, "below the level: nothing");

	log_setup(LOG_LVL_DEBUG, LOG_FMT_JSON);
	log_info("m", "n=42 neg=-7 dash=- zero=0 lead=007 word=abc flag "
	    "q=\"say \\\"hi\\\"\" big=12345678901234567890");
	s = logged();
	ok(strstr(s, "\"msg\":\"m\",\"fields\":{") != NULL, "JSON envelope");
	ok(strstr(s, "\"n\":42") && strstr(s, "\"neg\":-7") &&
	    strstr(s, "\"zero\":0"), "integers stay numbers");
	ok(strstr(s, "\"dash\":\"-\"") != NULL, "a lone dash is a string");
	ok(strstr(s, "\"lead\":\"007\"") != NULL, "leading zeros are a string");
	ok(strstr(s, "\"big\":\"12345678901234567890\"") != NULL,
	    "numbers too long to be exact are strings");
	ok(strstr(s, "\"word\":\"abc\"") && strstr(s, "\"flag\":true"),
	    "words are strings, a bare key is true");
	ok(strstr(s, "\"q\":\"say \\\"hi\\\"\"") != NULL, "quotes escaped once");
	ok(s[strlen(s) - 1] == '\n' && s[strlen(s) - 2] == '}', "one line, closed");

	log_setup(LOG_LVL_INFO, LOG_FMT_TEXT);
	memset(&lim, 0, sizeof(lim));
	for (i = 0; i < 12; i++)
		log_limited(&lim, 1000 + i, LOG_LVL_WARN, "down", "n=%u", i);
	s = logged();
	for (i = 0; *s != '\0'; s++)
		i += *s == '\n';
	is(i, LOG_LIMIT_BURST, "a burst, then silence within the interval");
	log_limited(&lim, 1000 + LOG_LIMIT_INTERVAL_MS + 1, LOG_LVL_WARN, "down",
	    "n=%u", 99u);
	s = logged();
	ok(strstr(s, "n=99 suppressed=7") != NULL, "next interval says how many were dropped");

	dup2(saved, 2);
	return tap_done();
}
