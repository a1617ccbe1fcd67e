/*
 * Unit tests of dotproxy-cni's text edits: the JSON span scanner, the
 * installer's conflist edit (our entry in and out, every other byte kept:
 * numbers beyond int64 and double precision, unknown fields, spacing),
 * the entry built from the operator's text, the prevResult passed through
 * with only its cniVersion changed, and the configuration's version kept
 * for the error object of a failed parse.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "init/cni_conf.h"
#include "init/cni_install.h"
#include "init/cni_json.h"
#include "tests/unit/tap.h"

/* What a primary CNI might write: numbers a double cannot hold, a decimal
 * that prints differently, fields nobody here knows, its own spacing. */
static const char conflist[] =
"{\n"
"  \"cniVersion\": \"0.3.1\",\n"
"  \"name\": \"k8s-pod-network\",\n"
"  \"x-vendor\": {\"serial\": 123456789012345678901234567890, \"ratio\": 0.1,"
" \"s\": \"a]}\\\"[{\"},\n"
"  \"plugins\": [\n"
"    {\"type\": \"bridge\", \"mtu\": 1.50e3, \"big\": -18446744073709551617,\n"
"     \"ipam\": {\"type\": \"host-local\", \"ranges\": [[{\"subnet\": "
"\"198.51.100.0/24\"}]]}},\n"
"    {\"type\": \"portmap\", \"capabilities\": {\"portMappings\": true}}\n"
"  ]\n"
"}\n";

static const char entry_src[] =
    "{\"proxyPort\": 15353, \"weight\": 0.1, \"namespaces\": [\"apps\"]}";

static json_t *
entry_json(void)
{
	json_t *cfg = json_loads(entry_src, 0, NULL), *e;

	e = cni_install_entry(cfg);
	json_decref(cfg);
	return e;
}

static void
test_scanner(void)
{
	static const char t[] = " {\"a\": [1, {\"b\": \"]\\\"}\"}, 2], "
	    "\"c\\u0064\": 0.1, \"a\": true} ";
	struct cjs_span root, v, m, el[4];
	size_t n;

	ok(cjs_root(t, strlen(t), &root) && root.off == 1 &&
	    root.len == strlen(t) - 2, "root span without the blanks");
	ok(cjs_member(t, &root, "cd", &v, &m) && v.len == 3 &&
	    memcmp(t + v.off, "0.1", 3) == 0, "an escaped key is found, "
	    "its number as written");
	ok(cjs_member(t, &root, "a", &v, NULL) && v.len == 4,
	    "a repeated key: the last one, as decoders keep");
	ok(!cjs_member(t, &root, "zz", &v, NULL), "no such key");
	root.off = 7;	/* the first "a"'s array */
	root.len = 21;
	ok(t[root.off] == '[' && cjs_elements(t, &root, el, 4, &n) && n == 3 &&
	    el[1].len == 13 && el[2].len == 1, "elements, a string with "
	    "brackets and quotes inside");
	ok(!cjs_elements(t, &root, el, 2, &n), "more elements than room");
}

static void
test_edit(void)
{
	json_t *entry = entry_json(), *doc, *plugins, *ent;
	char *text, *added = NULL, *again = NULL, *back = NULL, why[256];
	size_t len = strlen(conflist), alen = 0, glen, blen = 0;

	text = cni_install_entry_text(entry_src, strlen(entry_src));
	ok(text != NULL && strstr(text, "\"weight\": 0.1") != NULL &&
	    strncmp(text, "{\"type\": \"dotproxy-cni\"", 23) == 0,
	    "entry text: our type first, the operator's members as written");
	doc = text != NULL ? json_loads(text, 0, NULL) : NULL;
	ok(doc != NULL && json_equal(doc, entry), "entry text is the entry");
	json_decref(doc);

	is(cni_install_edit(conflist, len, text, &added, &alen, why,
	    sizeof(why)), 1, "add: changed");
	ok(added != NULL && alen > len && memcmp(added, conflist,
	    strstr(conflist, "\n  ]") - conflist) == 0,
	    "add: everything before the end of the array byte for byte");
	ok(added != NULL && strstr(added, "123456789012345678901234567890") &&
	    strstr(added, "\"ratio\": 0.1") && strstr(added, "1.50e3") &&
	    strstr(added, "-18446744073709551617"), "add: number tokens kept");
	/* Integers as reals: jansson refuses the big ones otherwise. */
	doc = added != NULL ? json_loads(added, JSON_DECODE_INT_AS_REAL,
	    NULL) : NULL;
	ent = json_loads(text, JSON_DECODE_INT_AS_REAL, NULL);
	plugins = json_object_get(doc, "plugins");
	ok(json_array_size(plugins) == 3 && json_equal(json_array_get(plugins,
	    2), ent), "add: our entry last");
	json_decref(ent);
	json_decref(doc);
	is(cni_install_edit(added, alen, text, &again, &glen, why,
	    sizeof(why)), 0, "add again: nothing to change");
	ok(again == NULL, "add again: no text");
	is(cni_install_edit(added, alen, NULL, &back, &blen, why,
	    sizeof(why)), 1, "remove: changed");
	ok(back != NULL && blen == len && memcmp(back, conflist, len) == 0,
	    "remove gives back the very bytes");
	free(back);
	back = NULL;
	is(cni_install_edit(conflist, len, NULL, &back, &blen, why,
	    sizeof(why)), 0, "remove without an entry: nothing to change");
	free(added);
	free(text);
	json_decref(entry);
}

static void
test_edit_stale(void)
{
	static const char stale[] = "{\"name\":\"n\",\"plugins\":["
	    "{\"type\":\"dotproxy-cni\",\"proxyPort\":1},{\"type\":\"bridge\"},"
	    "{\"type\":\"dotproxy-cni\"},{\"type\":\"portmap\",\"n\":1e300}]}";
	static const char empty[] = "{\"name\":\"n\",\"plugins\": [ ]}";
	static const char only[] = "{\"plugins\":[{\"type\":\"dotproxy-cni\"}]}";
	json_t *entry = entry_json();
	char *text = cni_install_entry_text(entry_src, strlen(entry_src));
	char *out = NULL, why[256];
	size_t olen;

	is(cni_install_edit(stale, strlen(stale), text, &out, &olen,
	    why, sizeof(why)), 1, "stale entries: changed");
	ok(out != NULL && strncmp(out, "{\"name\":\"n\",\"plugins\":["
	    "{\"type\":\"bridge\"},{\"type\":\"portmap\",\"n\":1e300},{\"type\": "
	    "\"dotproxy-cni\"", 70) == 0, "stale entries out (first and "
	    "middle), the others as written, ours last");
	free(out);
	out = NULL;
	is(cni_install_edit(stale, strlen(stale), NULL, &out, &olen,
	    why, sizeof(why)), 1, "remove stale entries");
	ok(out != NULL && strcmp(out, "{\"name\":\"n\",\"plugins\":["
	    "{\"type\":\"bridge\"},{\"type\":\"portmap\",\"n\":1e300}]}") == 0,
	    "removed: %s", out != NULL ? out : "(null)");
	free(out);
	out = NULL;
	is(cni_install_edit(empty, strlen(empty), text, &out, &olen,
	    why, sizeof(why)), 1, "an empty plugins array gets ours");
	ok(out != NULL && strncmp(out, "{\"name\":\"n\",\"plugins\": [{\"type\"",
	    29) == 0 && strcmp(out + olen - 4, "} ]}") == 0, "into the "
	    "brackets: %s", out != NULL ? out : "(null)");
	free(out);
	out = NULL;
	is(cni_install_edit(only, strlen(only), NULL, &out, &olen,
	    why, sizeof(why)), 1, "our entry alone: removed");
	ok(out != NULL && strcmp(out, "{\"plugins\":[]}") == 0, "leaves []");
	free(out);
	free(text);
	json_decref(entry);
}

static void
test_edit_bad(void)
{
	static const struct {
		const char	*text;
		const char	*word;
	} bad[] = {
		{ "{\"plugins\": [", "JSON" },
		{ "", "JSON" },
		{ "{\"type\":\"bridge\",\"name\":\"n\"}", "single-plugin" },
		{ "{\"plugins\":{}}", "plugins" },
		{ "[{\"plugins\":[]}]", "plugins" },
	};
	json_t *entry = entry_json();
	char *text = cni_install_entry_text(entry_src, strlen(entry_src));
	char *out, why[256];
	size_t i, olen;
	int rc;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		out = NULL;
		why[0] = '\0';
		rc = cni_install_edit(bad[i].text, strlen(bad[i].text), text,
		    &out, &olen, why, sizeof(why));
		ok(rc == -EINVAL && out == NULL && strstr(why, bad[i].word) !=
		    NULL, "bad list %zu refused: %s", i, why);
	}
	ok(cni_install_entry_text("[1]", 3) == NULL, "entry text from no "
	    "object: none");
	free(text);
	json_decref(entry);
}

static void
test_prev_result(void)
{
	static const char conf[] = "{\"cniVersion\":\"1.0.0\",\"name\":\"n\","
	    "\"prevResult\": {\"cniVersion\": \"0.4.0\", \"ips\": [{\"address\":"
	    " \"198.51.100.7/24\"}], \"x\": 0.1, \"n\": 99999999999999999999,"
	    " \"unknown\": {\"k\": [1.0]}}}";
	static const char none[] = "{\"cniVersion\":\"1.0.0\",\"prevResult\":"
	    "{\"ips\":[]}}";
	static const char empty[] = "{\"cniVersion\":\"1.0.0\",\"prevResult\":"
	    "{ }}";
	char *out;
	size_t n;

	out = cni_prev_result_text(conf, strlen(conf), "1.0.0", &n);
	ok(out != NULL && strcmp(out, "{\"cniVersion\": \"1.0.0\", \"ips\": "
	    "[{\"address\": \"198.51.100.7/24\"}], \"x\": 0.1, \"n\": "
	    "99999999999999999999, \"unknown\": {\"k\": [1.0]}}") == 0 &&
	    n == strlen(out), "prevResult verbatim but its cniVersion: %s",
	    out != NULL ? out : "(null)");
	free(out);
	out = cni_prev_result_text(none, strlen(none), "0.4.0", &n);
	ok(out != NULL && strcmp(out, "{\"cniVersion\":\"0.4.0\",\"ips\":[]}") ==
	    0, "no cniVersion: ours goes first: %s", out != NULL ? out : "-");
	free(out);
	out = cni_prev_result_text(empty, strlen(empty), "1.0.0", &n);
	ok(out != NULL && strcmp(out, "{\"cniVersion\":\"1.0.0\" }") == 0,
	    "an empty prevResult: %s", out != NULL ? out : "-");
	free(out);
	ok(cni_prev_result_text("{\"a\":1}", 7, "1.0.0", &n) == NULL,
	    "no prevResult: NULL");
	/* More keys than the scanner looks through: refused, not guessed. */
	{
		static char many[16384];
		size_t off, i;

		off = (size_t)snprintf(many, sizeof(many), "{");
		for (i = 0; i < CJS_MEMBERS_MAX; i++)
			off += (size_t)snprintf(many + off, sizeof(many) - off,
			    "\"k%zu\":%zu,", i, i);
		snprintf(many + off, sizeof(many) - off, "\"prevResult\":{}}");
		ok(cni_prev_result_text(many, strlen(many), "1.0.0", &n) ==
		    NULL, "more than %d keys: NULL", CJS_MEMBERS_MAX);
	}
}

static void
test_error_version(void)
{
	struct cni_conf c;
	struct cni_err e;
	static const char bad_port[] = "{\"cniVersion\":\"0.4.0\",\"name\":\"n\","
	    "\"proxyPort\":70000}";
	static const char bad_version[] = "{\"cniVersion\":\"9.9.9\"}";
	json_t *o;

	is(cni_conf_parse(bad_port, strlen(bad_port), &c, &e), CNI_ERR_CONFIG,
	    "a bad key fails");
	ok(strcmp(c.version, "0.4.0") == 0, "the configuration's version is "
	    "kept for the error object");
	o = cni_err_json(&e, c.version);
	ok(strcmp(json_string_value(json_object_get(o, "cniVersion")),
	    "0.4.0") == 0, "error object in the configuration's version");
	json_decref(o);
	is(cni_conf_parse(bad_version, strlen(bad_version), &c, &e),
	    CNI_ERR_VERSION, "an unknown version fails");
	ok(c.version[0] == '\0', "then no version of its own (ours is used)");
}

/* Integers beyond int64 anywhere (another plugin's key, the prevResult)
 * are no reason to fail a pod; ours still must be whole and in range. */
static void
test_numbers(void)
{
	static const char big[] = "{\"cniVersion\":\"1.0.0\",\"name\":\"n\","
	    "\"x-other\":-99999999999999999999999,\"proxyPort\":5300,"
	    "\"prevResult\":{\"n\":123456789012345678901234567890}}";
	static const char half[] = "{\"cniVersion\":\"1.0.0\","
	    "\"proxyPort\":5300.5}";
	static const char huge_uid[] = "{\"cniVersion\":\"1.0.0\","
	    "\"proxyUID\":1e30}";
	struct cni_conf c;
	struct cni_err e;

	is(cni_conf_parse(big, strlen(big), &c, &e), 0, "integers beyond "
	    "int64 in other keys and the prevResult parse (%s)", e.msg);
	ok(c.spec.proxy_port == 5300 && c.prev_result != NULL, "and our keys "
	    "still read");
	cni_conf_fini(&c);
	is(cni_conf_parse(half, strlen(half), &c, &e), CNI_ERR_CONFIG,
	    "a fractional port is refused");
	is(cni_conf_parse(huge_uid, strlen(huge_uid), &c, &e), CNI_ERR_CONFIG,
	    "an out-of-range uid is refused");
}

int
main(void)
{
	test_scanner();
	test_edit();
	test_edit_stale();
	test_edit_bad();
	test_prev_result();
	test_error_version();
	test_numbers();
	return tap_done();
}
