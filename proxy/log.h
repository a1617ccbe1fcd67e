/*
 * Logging to stderr: levels, text (logfmt) or JSON lines, and a per-call-
 * site rate limit so a dead upstream cannot flood the log. The only state is
 * the struct log_ctx the caller owns (main keeps one for the process).
 */
#ifndef PROXY_LOG_H
#define PROXY_LOG_H

#include <stdbool.h>
#include <stdint.h>

enum log_level {
	LOG_LVL_DEBUG = 0,
	LOG_LVL_INFO,
	LOG_LVL_WARN,
	LOG_LVL_ERROR
};

enum log_format {
	LOG_FMT_TEXT = 0,
	LOG_FMT_JSON
};

/* A rate limit for one call site: at most burst lines per interval. */
struct log_limit {
	uint64_t	window_start_ms;	/* monotonic */
	unsigned	count;			/* lines in this window */
	unsigned	suppressed;		/* dropped in this window */
};

#define LOG_LIMIT_INTERVAL_MS	10000
#define LOG_LIMIT_BURST		5

/*
 * Sets the process-wide level and format. The logger is the one piece of
 * process state the style allows, since stderr is one per process.
 */
void	log_setup(enum log_level, enum log_format);
bool	log_enabled(enum log_level);
int	log_level_parse(const char *, enum log_level *);
int	log_format_parse(const char *, enum log_format *);
const char *log_level_name(enum log_level);

/* msg is a short fixed sentence; fields are "key=value" pairs already
 * formatted by fmt (logfmt). JSON output turns them into members. */
void	log_msg(enum log_level, const char *msg, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));
/* As log_msg, but through a rate limit; when lines were suppressed the next
 * line that passes says how many (suppressed=N). */
void	log_limited(struct log_limit *, uint64_t now_ms, enum log_level,
	    const char *msg, const char *fmt, ...)
	    __attribute__((format(printf, 5, 6)));

#define log_debug(msg, ...)	log_msg(LOG_LVL_DEBUG, msg, __VA_ARGS__)
#define log_info(msg, ...)	log_msg(LOG_LVL_INFO, msg, __VA_ARGS__)
#define log_warn(msg, ...)	log_msg(LOG_LVL_WARN, msg, __VA_ARGS__)
#define log_error(msg, ...)	log_msg(LOG_LVL_ERROR, msg, __VA_ARGS__)

/* Aborts with file:line when cond holds. Never for input validation. */
#define BUG_ON(cond) do { if (cond) log_bug(__FILE__, __LINE__, #cond); } while (0)
void	log_bug(const char *file, int line, const char *cond)
	    __attribute__((noreturn));

#endif
