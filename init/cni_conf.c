/*
 * Configuration, CNI_ARGS and pod selection of dotproxy-cni (pure: no I/O,
 * no globals but constant tables). Owns the meaning of every key of the
 * plugin's network configuration, which mirror dotproxy-init's flags, and
 * the one rule that says which pods are captured. It must not touch the
 * kernel: cni.c enters the namespace and talks netlink through nl.c, with
 * the ruleset of rules.c.
 */
#include "init/cni_conf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "init/cni_json.h"
#include "init/rules.h"

const char *const cni_versions[] = { "0.3.0", "0.3.1", "0.4.0", "1.0.0",
    "1.1.0" };
const size_t cni_nversions = sizeof(cni_versions) / sizeof(cni_versions[0]);

int
cni_fail(struct cni_err *err, enum cni_code code, const char *fmt, ...)
{
	va_list ap;

	err->code = code;
	err->details[0] = '\0';
	va_start(ap, fmt);
	(void)vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return code;
}

bool
cni_version_supported(const char *v)
{
	size_t i;

	for (i = 0; v != NULL && i < cni_nversions; i++)
		if (strcmp(v, cni_versions[i]) == 0)
			return true;
	return false;
}

bool
cni_version_has_check(const char *v)
{
	return strcmp(v, "0.3.0") != 0 && strcmp(v, "0.3.1") != 0;
}

/* Copies a string value that must fit; false if it does not. */
static bool
copy_str(char *dst, size_t cap, const char *src)
{
	size_t n = strlen(src);

	if (n >= cap)
		return false;
	memcpy(dst, src, n + 1);
	return true;
}

/*
 * An integer value in [min, max]; false if v is anything else. Numbers
 * arrive as reals (the document is decoded with integers as reals, see
 * cni_conf_parse): a whole one in range is the integer.
 */
static bool
get_int(const json_t *v, json_int_t min, json_int_t max, json_int_t *out)
{
	double d;

	if (json_is_integer(v)) {
		*out = json_integer_value(v);
		return *out >= min && *out <= max;
	}
	if (!json_is_real(v))
		return false;
	d = json_real_value(v);
	if (!(d >= (double)min && d <= (double)max) || d != (double)(json_int_t)d)
		return false;
	*out = (json_int_t)d;
	return true;
}

static int
parse_ids(const char *key, const json_t *v, uint32_t *ids, size_t *n,
    struct cni_err *err)
{
	json_int_t id;
	size_t i;
	json_t *e;

	if (!json_is_array(v))
		return cni_fail(err, CNI_ERR_CONFIG, "%s: want an array of "
		    "numeric ids", key);
	if (json_array_size(v) > RULES_MAX_EXCLUDES)
		return cni_fail(err, CNI_ERR_CONFIG, "%s: more than %d values",
		    key, RULES_MAX_EXCLUDES);
	json_array_foreach(v, i, e) {
		/* (uid_t)-1 means "no change" to the kernel: never an id. */
		if (!get_int(e, 0, (json_int_t)UINT32_MAX - 1, &id))
			return cni_fail(err, CNI_ERR_CONFIG, "%s[%zu]: not a "
			    "numeric id (0-%u)", key, i, UINT32_MAX - 1);
		ids[(*n)++] = (uint32_t)id;
	}
	return 0;
}

static int
parse_cidrs(const json_t *v, struct rules_spec *sp, struct cni_err *err)
{
	const char *s;
	size_t i;
	json_t *e;
	int rc;

	if (!json_is_array(v))
		return cni_fail(err, CNI_ERR_CONFIG, "excludeCIDRs: want an "
		    "array of strings");
	if (json_array_size(v) > RULES_MAX_EXCLUDES)
		return cni_fail(err, CNI_ERR_CONFIG, "excludeCIDRs: more than "
		    "%d values", RULES_MAX_EXCLUDES);
	json_array_foreach(v, i, e) {
		if ((s = json_string_value(e)) == NULL)
			return cni_fail(err, CNI_ERR_CONFIG, "excludeCIDRs[%zu]: "
			    "not a string", i);
		rc = rules_cidr_parse(s, &sp->exclude_cidr[sp->nexclude_cidr]);
		if (rc == -ERANGE)
			return cni_fail(err, CNI_ERR_CONFIG, "excludeCIDRs[%zu] "
			    "'%s': bad prefix length", i, s);
		if (rc == -EDOM)
			return cni_fail(err, CNI_ERR_CONFIG, "excludeCIDRs[%zu] "
			    "'%s': host bits set after the prefix", i, s);
		if (rc != 0)
			return cni_fail(err, CNI_ERR_CONFIG, "excludeCIDRs[%zu] "
			    "'%s': not an IPv4 or IPv6 CIDR", i, s);
		sp->nexclude_cidr++;
	}
	return 0;
}

static int
parse_ipv6(const json_t *v, struct cni_conf *c, struct cni_err *err)
{
	const char *s = json_string_value(v);

	if (json_is_boolean(v)) {
		c->ipv6 = json_is_true(v) ? CNI_IPV6_ON : CNI_IPV6_OFF;
		return 0;
	}
	if (s != NULL && strcmp(s, "auto") == 0)
		c->ipv6 = CNI_IPV6_AUTO;
	else if (s != NULL && strcmp(s, "on") == 0)
		c->ipv6 = CNI_IPV6_ON;
	else if (s != NULL && strcmp(s, "off") == 0)
		c->ipv6 = CNI_IPV6_OFF;
	else
		return cni_fail(err, CNI_ERR_CONFIG, "ipv6: want \"auto\", "
		    "\"on\", \"off\" or a boolean");
	return 0;
}

static int
parse_namespaces(const json_t *v, struct cni_conf *c, struct cni_err *err)
{
	const char *s;
	size_t i;
	json_t *e;

	if (!json_is_array(v))
		return cni_fail(err, CNI_ERR_CONFIG, "namespaces: want an array "
		    "of strings");
	if (json_array_size(v) > CNI_MAX_NAMESPACES)
		return cni_fail(err, CNI_ERR_CONFIG, "namespaces: more than %d "
		    "values", CNI_MAX_NAMESPACES);
	json_array_foreach(v, i, e) {
		if ((s = json_string_value(e)) == NULL || s[0] == '\0' ||
		    !copy_str(c->namespaces[c->nnamespaces], CNI_NAME_MAX + 1, s))
			return cni_fail(err, CNI_ERR_CONFIG, "namespaces[%zu]: "
			    "want a namespace name", i);
		c->nnamespaces++;
	}
	return 0;
}

/*
 * runtimeConfig.dns.servers (the "dns" capability): the pod's nameservers,
 * in the order kubelet writes them to its resolv.conf. The UDP marks name
 * them (init/rules.c). Addresses that do not parse are skipped, as the C
 * library skips them in resolv.conf; beyond RULES_MAX_NS are ignored.
 */
static int
parse_dns(const json_t *dns, struct cni_conf *c, struct cni_err *err)
{
	const json_t *servers, *sv;
	const char *s;
	size_t i;

	if (dns == NULL || json_is_null(dns))
		return 0;
	servers = json_object_get(dns, "servers");
	if (!json_is_object(dns) || (servers != NULL && !json_is_null(servers) &&
	    !json_is_array(servers)))
		return cni_fail(err, CNI_ERR_CONFIG, "runtimeConfig.dns: want "
		    "an object with an array of servers");
	json_array_foreach(servers, i, sv)
		if ((s = json_string_value(sv)) != NULL)
			(void)rules_ns_add(&c->spec, s);
	return 0;
}

/* runtimeConfig: the pod annotations and its DNS servers. */
static int
parse_runtime(const json_t *v, struct cni_conf *c, struct cni_err *err)
{
	const json_t *ann, *val;
	const char *s;
	int rc;

	if (!json_is_object(v))
		return cni_fail(err, CNI_ERR_CONFIG, "runtimeConfig: want an "
		    "object");
	if ((rc = parse_dns(json_object_get(v, "dns"), c, err)) != 0)
		return rc;
	if ((ann = json_object_get(v, CNI_CAP_ANNOTATIONS)) == NULL ||
	    json_is_null(ann))
		return 0;
	if (!json_is_object(ann))
		return cni_fail(err, CNI_ERR_CONFIG, "runtimeConfig.%s: want "
		    "an object of strings", CNI_CAP_ANNOTATIONS);
	c->has_annotations = true;
	if ((val = json_object_get(ann, CNI_ANNOTATION)) == NULL)
		return 0;
	/* Anything but a short string is no decision: like an absent one. */
	if ((s = json_string_value(val)) != NULL)
		(void)copy_str(c->annotation, sizeof(c->annotation), s);
	return 0;
}

/* One key of the plugin's own; unknown keys belong to others and pass. */
static int
parse_key(const char *key, json_t *v, struct cni_conf *c,
    struct cni_err *err)
{
	struct rules_spec *sp = &c->spec;
	json_int_t n;
	const char *s;

	if (strcmp(key, "proxyPort") == 0) {
		if (!get_int(v, 1, 65535, &n))
			return cni_fail(err, CNI_ERR_CONFIG, "proxyPort: want a "
			    "port number (1-65535)");
		sp->proxy_port = (uint16_t)n;
	} else if (strcmp(key, "proxyUID") == 0) {
		if (!get_int(v, 0, (json_int_t)UINT32_MAX - 1, &n))
			return cni_fail(err, CNI_ERR_CONFIG, "proxyUID: want a "
			    "numeric uid (0-%u)", UINT32_MAX - 1);
		sp->proxy_uid = (uint32_t)n;
	} else if (strcmp(key, "excludeUIDs") == 0) {
		return parse_ids(key, v, sp->exclude_uid, &sp->nexclude_uid,
		    err);
	} else if (strcmp(key, "excludeGIDs") == 0) {
		return parse_ids(key, v, sp->exclude_gid, &sp->nexclude_gid,
		    err);
	} else if (strcmp(key, "excludeCIDRs") == 0) {
		return parse_cidrs(v, sp, err);
	} else if (strcmp(key, "ipv6") == 0) {
		return parse_ipv6(v, c, err);
	} else if (strcmp(key, "namespaces") == 0) {
		return parse_namespaces(v, c, err);
	} else if (strcmp(key, "logFile") == 0) {
		if ((s = json_string_value(v)) == NULL ||
		    (s[0] != '\0' && s[0] != '/') ||
		    !copy_str(c->log_file, sizeof(c->log_file), s))
			return cni_fail(err, CNI_ERR_CONFIG, "logFile: want an "
			    "absolute path");
	} else if (strcmp(key, "runtimeConfig") == 0) {
		return parse_runtime(v, c, err);
	} else if (strcmp(key, "prevResult") == 0) {
		if (json_is_null(v))
			return 0;
		if (!json_is_object(v))
			return cni_fail(err, CNI_ERR_CONFIG, "prevResult: want "
			    "an object");
		c->prev_result = json_incref(v);
	} else if (strcmp(key, "name") == 0) {
		if ((s = json_string_value(v)) == NULL ||
		    !copy_str(c->name, sizeof(c->name), s))
			return cni_fail(err, CNI_ERR_CONFIG, "name: want a "
			    "string of at most %d bytes", CNI_NAME_MAX);
	}
	return 0;
}

int
cni_conf_parse(const char *text, size_t len, struct cni_conf *c,
    struct cni_err *err)
{
	json_error_t jerr;
	const char *key, *v;
	json_t *root, *val;
	int rc = 0;

	memset(c, 0, sizeof(*c));
	memset(err, 0, sizeof(*err));
	c->spec.proxy_port = 15353;
	c->spec.proxy_uid = 15353;
	c->ipv6 = CNI_IPV6_AUTO;
	/* Integers as reals: a prevResult or a key of another plugin may
	 * hold integers beyond int64, which jansson refuses otherwise (Go's
	 * decoder, libcni's, reads them as doubles). The result passed on is
	 * the text, not this decoding (cni_prev_result_text). */
	if ((root = json_loadb(text, len, JSON_REJECT_DUPLICATES |
	    JSON_DECODE_INT_AS_REAL, &jerr)) == NULL)
		return cni_fail(err, CNI_ERR_DECODE, "cannot decode the network "
		    "configuration: %s (line %d, column %d)", jerr.text,
		    jerr.line, jerr.column);
	if (!json_is_object(root)) {
		json_decref(root);
		return cni_fail(err, CNI_ERR_DECODE, "the network configuration "
		    "is not a JSON object");
	}
	val = json_object_get(root, "cniVersion");
	if ((v = json_string_value(val)) == NULL) {
		json_decref(root);
		return cni_fail(err, CNI_ERR_CONFIG, "cniVersion: missing or "
		    "not a string");
	}
	if (!cni_version_supported(v) ||
	    !copy_str(c->version, sizeof(c->version), v)) {
		cni_fail(err, CNI_ERR_VERSION, "incompatible CNI version %.32s",
		    v);
		snprintf(err->details, sizeof(err->details), "supported: 0.3.0, "
		    "0.3.1, 0.4.0, 1.0.0, 1.1.0");
		json_decref(root);
		return CNI_ERR_VERSION;
	}
	json_object_foreach(root, key, val)
		if ((rc = parse_key(key, val, c, err)) != 0)
			break;
	json_decref(root);
	if (rc != 0)
		cni_conf_fini(c);
	return rc;
}

char *
cni_prev_result_text(const char *text, size_t len, const char *version,
    size_t *outlen)
{
	struct cjs_span root, prev, ver, cut;
	char ins[64], *res, *out;
	size_t rlen;
	int n;

	if (!cjs_root(text, len, &root) ||
	    !cjs_member(text, &root, "prevResult", &prev, NULL) ||
	    prev.len < 2 || text[prev.off] != '{')
		return NULL;
	/* The prevResult alone, as its own document. */
	if ((res = malloc(prev.len + 1)) == NULL)
		return NULL;
	memcpy(res, text + prev.off, prev.len);
	res[prev.len] = '\0';
	prev.off = 0;
	if (cjs_member(res, &prev, "cniVersion", &ver, NULL)) {
		n = snprintf(ins, sizeof(ins), "\"%s\"", version);
		cut = ver;
	} else {
		/* None: ours goes first, before the other members if any. */
		cut.off = 1;
		cut.len = 0;
		n = snprintf(ins, sizeof(ins), "\"cniVersion\":\"%s\"%s",
		    version, cjs_members(res, &prev, &ver, &ver, 1, &rlen) &&
		    rlen == 0 ? "" : ",");
	}
	if (n < 0 || (size_t)n >= sizeof(ins)) {
		free(res);
		return NULL;
	}
	out = cjs_splice(res, prev.len, &cut, ins, (size_t)n, outlen);
	free(res);
	return out;
}

void
cni_conf_fini(struct cni_conf *c)
{
	json_decref(c->prev_result);
	c->prev_result = NULL;
}

bool
cni_args_get(const char *args, const char *key, char *out, size_t cap)
{
	size_t klen = strlen(key), vlen;
	const char *p = args, *end, *eq;

	if (args == NULL || cap == 0)
		return false;
	while (*p != '\0') {
		if ((end = strchr(p, ';')) == NULL)
			end = p + strlen(p);
		eq = memchr(p, '=', (size_t)(end - p));
		if (eq != NULL && (size_t)(eq - p) == klen &&
		    memcmp(p, key, klen) == 0) {
			vlen = (size_t)(end - eq - 1);
			if (vlen >= cap)
				return false;
			memcpy(out, eq + 1, vlen);
			out[vlen] = '\0';
			return true;
		}
		p = *end == ';' ? end + 1 : end;
	}
	return false;
}

enum cni_pick
cni_select(const struct cni_conf *c, const char *ns)
{
	size_t i;

	if (strcmp(c->annotation, "true") == 0)
		return CNI_PICK_ANNOTATION;
	if (strcmp(c->annotation, "false") == 0)
		return CNI_SKIP_OPTOUT;
	for (i = 0; ns != NULL && ns[0] != '\0' && i < c->nnamespaces; i++)
		if (strcmp(ns, c->namespaces[i]) == 0)
			return CNI_PICK_NAMESPACE;
	return CNI_SKIP;
}

bool
cni_picked(enum cni_pick p)
{
	return p == CNI_PICK_ANNOTATION || p == CNI_PICK_NAMESPACE;
}

const char *
cni_pick_name(enum cni_pick p)
{
	switch (p) {
	case CNI_PICK_ANNOTATION:
		return "captured (annotation " CNI_ANNOTATION "=true)";
	case CNI_PICK_NAMESPACE:
		return "captured (namespace listed)";
	case CNI_SKIP_OPTOUT:
		return "not captured (annotation " CNI_ANNOTATION "=false)";
	case CNI_SKIP:
		break;
	}
	return "not captured (not selected)";
}

/* Copies s with every byte outside printable ASCII made '?': a message
 * may hold a value cut in the middle of a UTF-8 sequence. */
static void
ascii(char *dst, size_t cap, const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0' && i + 1 < cap; i++)
		dst[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
	dst[i] = '\0';
}

json_t *
cni_err_json(const struct cni_err *err, const char *version)
{
	char msg[CNI_MSG_MAX], details[CNI_MSG_MAX];
	json_t *o;

	if (version == NULL || version[0] == '\0')
		version = cni_versions[cni_nversions - 1];
	ascii(msg, sizeof(msg), err->msg);
	ascii(details, sizeof(details), err->details);
	o = json_pack("{s:s, s:i, s:s}", "cniVersion", version, "code",
	    (int)err->code, "msg", msg);
	if (o != NULL && details[0] != '\0')
		json_object_set_new(o, "details", json_string(details));
	return o;
}
