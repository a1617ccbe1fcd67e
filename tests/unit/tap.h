/*
 * A tiny TAP producer for the unit tests: plan, ok, is (both values printed
 * on failure), and done. Header-only so each test binary stays one file.
 */
#ifndef TESTS_TAP_H
#define TESTS_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int tap_n;
static int tap_failed;

#define ok(cond, ...) tap_ok(!!(cond), __FILE__, __LINE__, __VA_ARGS__)
#define is(got, want, ...) do {						\
	long long g_ = (long long)(got), w_ = (long long)(want);	\
	if (!tap_ok(g_ == w_, __FILE__, __LINE__, __VA_ARGS__))		\
		printf("#   got %lld, want %lld\n", g_, w_);		\
} while (0)
#define is_mem(got, want, n, ...) do {					\
	if (!tap_ok(memcmp((got), (want), (n)) == 0, __FILE__, __LINE__,\
	    __VA_ARGS__))						\
		tap_hexdiff((const unsigned char *)(got),		\
		    (const unsigned char *)(want), (n));		\
} while (0)

__attribute__((format(printf, 4, 5), unused)) static int
tap_ok(int cond, const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	tap_n++;
	printf("%s %d - ", cond ? "ok" : "not ok", tap_n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (!cond) {
		tap_failed++;
		printf("#   at %s:%d\n", file, line);
	}
	return cond;
}

__attribute__((unused)) static void
tap_hexdiff(const unsigned char *got, const unsigned char *want, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (got[i] != want[i]) {
			printf("#   first difference at byte %zu: got 0x%02x, "
			    "want 0x%02x\n", i, got[i], want[i]);
			return;
		}
}

/* Prints the plan at the end (TAP allows it last) and returns the status. */
__attribute__((unused)) static int
tap_done(void)
{
	printf("1..%d\n", tap_n);
	return tap_failed ? 1 : 0;
}

#endif
