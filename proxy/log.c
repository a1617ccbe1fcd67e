/*
 * Logging to stderr in logfmt text or JSON lines, with levels and per-call-
 * site rate limits. Pure layer apart from writing stderr. The level and the
 * format are the one piece of process-wide state: stderr is one per process.
 */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static enum log_level	log_min = LOG_LVL_INFO;
static enum log_format	log_fmt = LOG_FMT_TEXT;

static const char *const level_names[] = { "debug", "info", "warn", "error" };

void
log_setup(enum log_level lvl, enum log_format fmt)
{
	/* Worker threads read these while the main thread reloads. */
	__atomic_store_n(&log_min, lvl, __ATOMIC_RELAXED);
	__atomic_store_n(&log_fmt, fmt, __ATOMIC_RELAXED);
}

bool
log_enabled(enum log_level lvl)
{
	return lvl >= __atomic_load_n(&log_min, __ATOMIC_RELAXED);
}

const char *
log_level_name(enum log_level lvl)
{
	return (unsigned)lvl < 4 ? level_names[lvl] : "?";
}

int
log_level_parse(const char *s, enum log_level *out)
{
	unsigned i;

	for (i = 0; i < 4; i++)
		if (strcmp(s, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	if (strcmp(s, "warning") == 0) {
		*out = LOG_LVL_WARN;
		return 0;
	}
	return -EINVAL;
}

int
log_format_parse(const char *s, enum log_format *out)
{
	if (strcmp(s, "text") == 0)
		*out = LOG_FMT_TEXT;
	else if (strcmp(s, "json") == 0)
		*out = LOG_FMT_JSON;
	else
		return -EINVAL;
	return 0;
}

/* Appends s to out as JSON string contents (without quotes). */
static size_t
json_escape(char *out, size_t cap, size_t n, const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len && n + 7 < cap; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\') {
			out[n++] = '\\';
			out[n++] = (char)c;
		} else if (c < 0x20 || c == 0x7f) {
			n += (size_t)snprintf(out + n, cap - n, "\\u%04x", c);
		} else
			out[n++] = (char)c;
	}
	return n;
}

/* True if s is a JSON integer: -?(0|[1-9][0-9]*), short enough to be
 * exact in every JSON reader. */
static bool
json_number(const char *s, size_t n)
{
	size_t i = 0;

	if (n > 0 && s[0] == '-')
		i++;
	if (i == n || n - i > 15 || (s[i] == '0' && n - i > 1))
		return false;
	for (; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

/*
 * Turns logfmt fields (key=value, key="quoted value") into JSON members.
 * Values that look like plain decimal numbers stay numbers.
 */
static size_t
json_fields(char *out, size_t cap, size_t n, const char *f)
{
	bool first = true;

	while (*f != '\0' && n + 16 < cap) {
		const char *k, *v, *ve;
		size_t kl, vl, i;
		bool num, quoted = false;

		while (*f == ' ')
			f++;
		if (*f == '\0')
			break;
		k = f;
		while (*f != '\0' && *f != '=' && *f != ' ')
			f++;
		kl = (size_t)(f - k);
		if (*f == '=') {
			f++;
			if (*f == '"') {
				quoted = true;
				v = ++f;
				while (*f != '\0' && *f != '"') {
					if (*f == '\\' && f[1] != '\0')
						f++;
					f++;
				}
				ve = f;
				if (*f == '"')
					f++;
			} else {
				v = f;
				while (*f != '\0' && *f != ' ')
					f++;
				ve = f;
			}
		} else {
			v = "true";
			ve = v + 4;
		}
		vl = (size_t)(ve - v);
		num = !quoted && json_number(v, vl);
		if (!first)
			out[n++] = ',';
		first = false;
		out[n++] = '"';
		n = json_escape(out, cap, n, k, kl);
		out[n++] = '"';
		out[n++] = ':';
		if (num || (vl == 4 && memcmp(v, "true", 4) == 0 && !quoted)) {
			if (vl < cap - n - 4) {
				memcpy(out + n, v, vl);
				n += vl;
			}
		} else {
			out[n++] = '"';
			if (quoted) {
				/* Undo logfmt's \" escapes before JSON escaping. */
				for (i = 0; i < vl; i++) {
					if (v[i] == '\\' && i + 1 < vl)
						i++;
					n = json_escape(out, cap, n, v + i, 1);
				}
			} else
				n = json_escape(out, cap, n, v, vl);
			out[n++] = '"';
		}
	}
	return n;
}

static void
log_vemit(enum log_level lvl, const char *msg, const char *suffix,
    const char *fmt, va_list ap)
{
	char fields[1024], line[3072], ts[40];
	struct timespec now;
	struct tm tm;
	size_t n = 0;
	int r;

	r = vsnprintf(fields, sizeof(fields), fmt, ap);
	if (r < 0)
		fields[0] = '\0';
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	r = snprintf(ts + 19, sizeof(ts) - 19, ".%03ldZ", now.tv_nsec / 1000000);
	if (r < 0)
		ts[19] = '\0';
	if (__atomic_load_n(&log_fmt, __ATOMIC_RELAXED) == LOG_FMT_JSON) {
		n = (size_t)snprintf(line, sizeof(line),
		    "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":\"", ts,
		    log_level_name(lvl));
		n = json_escape(line, sizeof(line), n, msg, strlen(msg));
		n += (size_t)snprintf(line + n, sizeof(line) - n,
		    "\",\"fields\":{");
		n = json_fields(line, sizeof(line), n, fields);
		if (suffix[0] != '\0') {
			if (fields[0] != '\0')
				line[n++] = ',';
			n = json_fields(line, sizeof(line), n, suffix);
		}
		if (n > sizeof(line) - 4)
			n = sizeof(line) - 4;
		line[n++] = '}';
		line[n++] = '}';
		line[n++] = '\n';
	} else {
		r = snprintf(line, sizeof(line), "ts=%s level=%s msg=\"%s\"%s%s%s%s\n",
		    ts, log_level_name(lvl), msg, fields[0] ? " " : "", fields,
		    suffix[0] ? " " : "", suffix);
		n = r < 0 ? 0 : (size_t)r;
		if (n >= sizeof(line)) {
			n = sizeof(line);
			line[n - 1] = '\n';
		}
	}
	/* One write per line so lines from a crash handler don't interleave. */
	if (write(STDERR_FILENO, line, n) == -1)
		return;
}

void
log_msg(enum log_level lvl, const char *msg, const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	if (!log_enabled(lvl))
		return;
	va_start(ap, fmt);
	log_vemit(lvl, msg, "", fmt, ap);
	va_end(ap);
	errno = saved;
}

void
log_limited(struct log_limit *lim, uint64_t now_ms, enum log_level lvl,
    const char *msg, const char *fmt, ...)
{
	char suffix[48] = "";
	va_list ap;
	int saved = errno;

	if (!log_enabled(lvl))
		return;
	if (now_ms - lim->window_start_ms >= LOG_LIMIT_INTERVAL_MS ||
	    lim->window_start_ms == 0) {
		if (lim->suppressed > 0)
			(void)snprintf(suffix, sizeof(suffix), "suppressed=%u",
			    lim->suppressed);
		lim->window_start_ms = now_ms == 0 ? 1 : now_ms;
		lim->count = 0;
		lim->suppressed = 0;
	}
	if (lim->count >= LOG_LIMIT_BURST) {
		lim->suppressed++;
		errno = saved;
		return;
	}
	lim->count++;
	va_start(ap, fmt);
	log_vemit(lvl, msg, suffix, fmt, ap);
	va_end(ap);
	errno = saved;
}

void
log_bug(const char *file, int line, const char *cond)
{
	log_msg(LOG_LVL_ERROR, "BUG", "file=%s line=%d cond=\"%s\"", file, line,
	    cond);
	abort();
}
