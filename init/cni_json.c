/*
 * JSON text splicing for dotproxy-cni (see cni_json.h). The scanner
 * trusts that jansson has accepted the text; on anything it does not
 * expect it stops and says false, never reads past len.
 */
#include "init/cni_json.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

static size_t
skip_ws(const char *t, size_t end, size_t p)
{
	while (p < end && (t[p] == ' ' || t[p] == '\t' || t[p] == '\n' ||
	    t[p] == '\r'))
		p++;
	return p;
}

/* The end of the string whose opening quote is at p, or 0. */
static size_t
string_end(const char *t, size_t end, size_t p)
{
	for (p++; p < end; p++) {
		if (t[p] == '\\')
			p++;
		else if (t[p] == '"')
			return p + 1;
	}
	return 0;
}

/* The end of the value starting at p (no whitespace before it), or 0. */
static size_t
value_end(const char *t, size_t end, size_t p)
{
	size_t depth = 0;

	if (p >= end)
		return 0;
	if (t[p] == '"')
		return string_end(t, end, p);
	if (t[p] != '{' && t[p] != '[') {
		/* A number, true, false or null: up to the next delimiter. */
		while (p < end && strchr(",]} \t\r\n", t[p]) == NULL)
			p++;
		return p;
	}
	for (; p < end; p++) {
		if (t[p] == '"') {
			if ((p = string_end(t, end, p)) == 0)
				return 0;
			p--;
		} else if (t[p] == '{' || t[p] == '[')
			depth++;
		else if ((t[p] == '}' || t[p] == ']') && --depth == 0)
			return p + 1;
	}
	return 0;
}

bool
cjs_root(const char *text, size_t len, struct cjs_span *out)
{
	size_t s = skip_ws(text, len, 0), e;

	if ((e = value_end(text, len, s)) == 0)
		return false;
	out->off = s;
	out->len = e - s;
	return true;
}

/* True when the JSON string at [s, e) decodes to key. */
static bool
key_is(const char *t, size_t s, size_t e, const char *key)
{
	size_t n = strlen(key);
	const char *v;
	json_t *j;
	bool same;

	/* The common case, no escapes: compare the bytes. */
	if (e - s == n + 2 && memcmp(t + s + 1, key, n) == 0)
		return true;
	if (memchr(t + s, '\\', e - s) == NULL)
		return false;
	if ((j = json_loadb(t + s, e - s, JSON_DECODE_ANY, NULL)) == NULL)
		return false;
	same = (v = json_string_value(j)) != NULL &&
	    json_string_length(j) == n && memcmp(v, key, n) == 0;
	json_decref(j);
	return same;
}

bool
cjs_key_is(const char *text, const struct cjs_span *key, const char *name)
{
	return key_is(text, key->off, key->off + key->len, name);
}

bool
cjs_members(const char *text, const struct cjs_span *obj,
    struct cjs_span *keys, struct cjs_span *vals, size_t cap, size_t *n)
{
	size_t end = obj->off + obj->len, p = obj->off, ke, vs, ve;

	*n = 0;
	if (obj->len < 2 || text[p] != '{')
		return false;
	p = skip_ws(text, end, p + 1);
	if (p < end && text[p] == '}')
		return true;
	while (p < end && text[p] == '"') {
		if (*n == cap || (ke = string_end(text, end, p)) == 0)
			return false;
		keys[*n].off = p;
		keys[*n].len = ke - p;
		p = skip_ws(text, end, ke);
		if (p >= end || text[p] != ':')
			return false;
		vs = skip_ws(text, end, p + 1);
		if ((ve = value_end(text, end, vs)) == 0)
			return false;
		vals[*n].off = vs;
		vals[*n].len = ve - vs;
		(*n)++;
		p = skip_ws(text, end, ve);
		if (p < end && text[p] == ',')
			p = skip_ws(text, end, p + 1);
		else
			return p < end && text[p] == '}';
	}
	return false;
}

bool
cjs_member(const char *text, const struct cjs_span *obj, const char *key,
    struct cjs_span *val, struct cjs_span *member)
{
	struct cjs_span keys[CJS_MEMBERS_MAX], vals[CJS_MEMBERS_MAX];
	size_t n, i;
	bool found = false;

	if (!cjs_members(text, obj, keys, vals, CJS_MEMBERS_MAX, &n))
		return false;
	for (i = 0; i < n; i++)
		if (cjs_key_is(text, &keys[i], key)) {
			*val = vals[i];
			if (member != NULL) {
				member->off = keys[i].off;
				member->len = vals[i].off + vals[i].len -
				    keys[i].off;
			}
			found = true;
		}
	return found;
}

bool
cjs_elements(const char *text, const struct cjs_span *arr,
    struct cjs_span *el, size_t cap, size_t *n)
{
	size_t end = arr->off + arr->len, p = arr->off, ve;

	*n = 0;
	if (arr->len < 2 || text[p] != '[')
		return false;
	p = skip_ws(text, end, p + 1);
	if (p < end && text[p] == ']')
		return true;
	while (p < end) {
		if (*n == cap || (ve = value_end(text, end, p)) == 0)
			return false;
		el[*n].off = p;
		el[*n].len = ve - p;
		(*n)++;
		p = skip_ws(text, end, ve);
		if (p < end && text[p] == ',')
			p = skip_ws(text, end, p + 1);
		else
			return p < end && text[p] == ']';
	}
	return false;
}

char *
cjs_splice(const char *text, size_t len, const struct cjs_span *cut,
    const char *ins, size_t inslen, size_t *outlen)
{
	size_t n;
	char *out;

	if (cut->off > len || cut->len > len - cut->off)
		return NULL;
	n = len - cut->len + inslen;
	if ((out = malloc(n + 1)) == NULL)
		return NULL;
	memcpy(out, text, cut->off);
	if (inslen > 0)
		memcpy(out + cut->off, ins, inslen);
	memcpy(out + cut->off + inslen, text + cut->off + cut->len,
	    len - cut->off - cut->len);
	out[n] = '\0';
	*outlen = n;
	return out;
}
