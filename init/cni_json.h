/*
 * Edits of JSON text that keep every byte they do not change: the number
 * tokens (integers beyond int64, decimals like 0.1 that a double would
 * print as 0.10000000000000001), unknown fields, key order, spacing. A
 * conflist on a node and the prevResult of a chain belong to others; the
 * plugin and its installer only splice their own parts in and out. The
 * text must already be valid JSON (jansson checked it): the scanner finds
 * where values start and end, it does not validate. Pure; no I/O.
 */
#ifndef INIT_CNI_JSON_H
#define INIT_CNI_JSON_H

#include <stdbool.h>
#include <stddef.h>

#define CJS_MEMBERS_MAX	256	/* members of one object we look through */

/* A stretch of the text: [off, off + len). */
struct cjs_span {
	size_t	off;
	size_t	len;
};

/* The top-level value of text (whitespace around it excluded). */
bool	cjs_root(const char *text, size_t len, struct cjs_span *out);

/*
 * The value of member key in the object at obj (the last one when the
 * key repeats, as decoders keep the last). *member, when not NULL, gets
 * the member from the key's opening quote to the value's end. False when
 * obj is no object, has no such key or more than CJS_MEMBERS_MAX members.
 */
bool	cjs_member(const char *text, const struct cjs_span *obj,
	    const char *key, struct cjs_span *val, struct cjs_span *member);

/*
 * The members of the object at obj: up to cap key spans (with quotes)
 * and value spans, the count into *n. False when obj is no object or has
 * more than cap members.
 */
bool	cjs_members(const char *text, const struct cjs_span *obj,
	    struct cjs_span *keys, struct cjs_span *vals, size_t cap,
	    size_t *n);

/* True when the JSON string at key (quotes included) decodes to name. */
bool	cjs_key_is(const char *text, const struct cjs_span *key,
	    const char *name);

/*
 * The elements of the array at arr: up to cap spans into el, the count
 * into *n. False when arr is no array or holds more than cap elements.
 */
bool	cjs_elements(const char *text, const struct cjs_span *arr,
	    struct cjs_span *el, size_t cap, size_t *n);

/*
 * A new string (malloc, NUL-terminated, length in *outlen): text with
 * [cut.off, cut.off + cut.len) replaced by the len bytes at ins.
 */
char	*cjs_splice(const char *text, size_t len, const struct cjs_span *cut,
	    const char *ins, size_t inslen, size_t *outlen);

#endif
