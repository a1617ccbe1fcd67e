/*
 * Counter descriptions. Each module that counts owns a const table of
 * these next to its stats struct: the series name, its fixed labels, its
 * type and help, and where the value lives in that struct. The metrics
 * module renders any table generically, so a counter is exported by adding
 * one line where it is counted, and nothing counted can be forgotten.
 * Pure layer 0: types only.
 */
#ifndef PROXY_STAT_H
#define PROXY_STAT_H

#include <stddef.h>
#include <stdint.h>

enum stat_type {
	STAT_COUNTER = 0,	/* name ends in _total */
	STAT_GAUGE,
};

enum stat_width {
	STAT_U64 = 0,		/* the field is a uint64_t */
	STAT_UINT,		/* the field is an unsigned */
};

struct stat_desc {
	const char	*name;		/* series name, dotproxy_ prefix */
	const char	*labels;	/* fixed labels ("reason=\"x\"") or NULL */
	enum stat_type	 type;
	enum stat_width	 width;
	size_t		 off;		/* offsetof the field in the stats */
	const char	*help;		/* one line; the first row's counts */
};

/* A module's table: rows of one series must be adjacent. */
struct stat_table {
	const struct stat_desc	*rows;
	size_t			 n;
};

#define STAT_ROW(name, labels, type, st, field, help) \
	{ name, labels, type, STAT_U64, offsetof(st, field), help }
#define STAT_ROW_UINT(name, labels, type, st, field, help) \
	{ name, labels, type, STAT_UINT, offsetof(st, field), help }
#define STAT_TABLE(rows) { rows, sizeof(rows) / sizeof(rows[0]) }

/* The value a row describes, read from stats. */
static inline uint64_t
stat_value(const struct stat_desc *d, const void *stats)
{
	const unsigned char *p = (const unsigned char *)stats + d->off;

	if (d->width == STAT_UINT)
		return *(const unsigned *)(const void *)p;
	return *(const uint64_t *)(const void *)p;
}

#endif
