/*
 * Unit tests of dotproxy-cni's pure parts: the network configuration
 * (every key, defaults, bad values with their error codes), CNI_ARGS, the
 * pod-selection rule, the version list, the spec's error object, the
 * shared CIDR parser, and the installer's JSON edits and file choice.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "init/cni_conf.h"
#include "init/cni_install.h"
#include "init/rules.h"
#include "tests/unit/tap.h"

static int
parse(const char *text, struct cni_conf *c, struct cni_err *e)
{
	return cni_conf_parse(text, strlen(text), c, e);
}

static void
test_defaults(void)
{
	struct cni_conf c;
	struct cni_err e;

	is(parse("{\"cniVersion\":\"1.0.0\",\"name\":\"k8s-pod-network\","
	    "\"type\":\"dotproxy-cni\"}", &c, &e), 0, "minimal config parses");
	ok(strcmp(c.version, "1.0.0") == 0, "cniVersion kept");
	ok(strcmp(c.name, "k8s-pod-network") == 0, "name kept");
	is(c.spec.proxy_port, 15353, "proxyPort defaults to 15353");
	is(c.spec.proxy_uid, 15353, "proxyUID defaults to 15353");
	is(c.ipv6, CNI_IPV6_AUTO, "ipv6 defaults to auto");
	is(c.nnamespaces, 0, "no namespaces by default");
	ok(c.prev_result == NULL, "no prevResult");
	ok(!c.has_annotations && c.annotation[0] == '\0', "no annotations");
	ok(c.log_file[0] == '\0', "no log file");
	cni_conf_fini(&c);
}

static void
test_all_keys(void)
{
	static const char text[] =
	    "{\"cniVersion\":\"0.4.0\",\"name\":\"n\",\"type\":\"dotproxy-cni\","
	    "\"proxyPort\":5300,\"proxyUID\":1337,\"excludeUIDs\":[0,1001],"
	    "\"excludeGIDs\":[2001],\"excludeCIDRs\":[\"198.51.100.0/24\","
	    "\"2001:db8:ff::/48\"],\"ipv6\":\"off\",\"namespaces\":[\"apps\","
	    "\"web\"],\"logFile\":\"/var/log/dotproxy-cni.log\","
	    "\"someOtherKey\":{\"x\":1},"
	    "\"runtimeConfig\":{\"io.kubernetes.cri.pod-annotations\":"
	    "{\"dotproxy/capture\":\"true\",\"other\":\"x\"}},"
	    "\"prevResult\":{\"cniVersion\":\"0.4.0\",\"ips\":[]}}";
	struct cni_conf c;
	struct cni_err e;
	char a[INET6_ADDRSTRLEN];

	is(parse(text, &c, &e), 0, "every key parses (unknown keys pass)");
	is(c.spec.proxy_port, 5300, "proxyPort");
	is(c.spec.proxy_uid, 1337, "proxyUID");
	ok(c.spec.nexclude_uid == 2 && c.spec.exclude_uid[0] == 0 &&
	    c.spec.exclude_uid[1] == 1001, "excludeUIDs");
	ok(c.spec.nexclude_gid == 1 && c.spec.exclude_gid[0] == 2001,
	    "excludeGIDs");
	is(c.spec.nexclude_cidr, 2, "excludeCIDRs: two");
	inet_ntop(AF_INET, c.spec.exclude_cidr[0].addr, a, sizeof(a));
	ok(c.spec.exclude_cidr[0].family == AF_INET &&
	    strcmp(a, "198.51.100.0") == 0 && c.spec.exclude_cidr[0].prefix ==
	    24, "excludeCIDRs[0] = 198.51.100.0/24");
	ok(c.spec.exclude_cidr[1].family == AF_INET6 &&
	    c.spec.exclude_cidr[1].prefix == 48, "excludeCIDRs[1] is /48 v6");
	is(c.ipv6, CNI_IPV6_OFF, "ipv6 off");
	ok(c.nnamespaces == 2 && strcmp(c.namespaces[1], "web") == 0,
	    "namespaces");
	ok(strcmp(c.log_file, "/var/log/dotproxy-cni.log") == 0, "logFile");
	ok(c.has_annotations && strcmp(c.annotation, "true") == 0,
	    "the dotproxy/capture annotation from runtimeConfig");
	ok(json_is_object(c.prev_result) &&
	    json_is_array(json_object_get(c.prev_result, "ips")),
	    "prevResult held");
	cni_conf_fini(&c);
	ok(c.prev_result == NULL, "fini releases prevResult");

	is(parse("{\"cniVersion\":\"1.0.0\",\"ipv6\":true}", &c, &e), 0,
	    "ipv6 as a boolean");
	is(c.ipv6, CNI_IPV6_ON, "ipv6 true = on");
	cni_conf_fini(&c);
}

/* Each bad config: the code and a word the message must contain. */
static void
test_bad(void)
{
	static const struct {
		const char	*text;
		int		 code;
		const char	*word;
	} cases[] = {
		{ "{", CNI_ERR_DECODE, "decode" },
		{ "[1]", CNI_ERR_DECODE, "object" },
		{ "{\"cniVersion\":\"1.0.0\",\"cniVersion\":\"1.0.0\"}",
		    CNI_ERR_DECODE, "duplicate" },
		{ "{\"name\":\"x\"}", CNI_ERR_CONFIG, "cniVersion" },
		{ "{\"cniVersion\":1}", CNI_ERR_CONFIG, "cniVersion" },
		{ "{\"cniVersion\":\"2.0.0\"}", CNI_ERR_VERSION, "2.0.0" },
		{ "{\"cniVersion\":\"0.2.0\"}", CNI_ERR_VERSION, "incompatible" },
		{ "{\"cniVersion\":\"1.0.0\",\"proxyPort\":0}", CNI_ERR_CONFIG,
		    "proxyPort" },
		{ "{\"cniVersion\":\"1.0.0\",\"proxyPort\":65536}",
		    CNI_ERR_CONFIG, "proxyPort" },
		{ "{\"cniVersion\":\"1.0.0\",\"proxyPort\":\"53\"}",
		    CNI_ERR_CONFIG, "proxyPort" },
		{ "{\"cniVersion\":\"1.0.0\",\"proxyUID\":-1}", CNI_ERR_CONFIG,
		    "proxyUID" },
		{ "{\"cniVersion\":\"1.0.0\",\"proxyUID\":4294967295}",
		    CNI_ERR_CONFIG, "proxyUID" },
		{ "{\"cniVersion\":\"1.0.0\",\"excludeUIDs\":5}", CNI_ERR_CONFIG,
		    "excludeUIDs" },
		{ "{\"cniVersion\":\"1.0.0\",\"excludeGIDs\":[\"x\"]}",
		    CNI_ERR_CONFIG, "excludeGIDs[0]" },
		{ "{\"cniVersion\":\"1.0.0\",\"excludeCIDRs\":[\"10.0.0.1/8\"]}",
		    CNI_ERR_CONFIG, "host bits" },
		{ "{\"cniVersion\":\"1.0.0\",\"excludeCIDRs\":[\"10.0.0.0/33\"]}",
		    CNI_ERR_CONFIG, "prefix" },
		{ "{\"cniVersion\":\"1.0.0\",\"excludeCIDRs\":[\"nope\"]}",
		    CNI_ERR_CONFIG, "CIDR" },
		{ "{\"cniVersion\":\"1.0.0\",\"ipv6\":\"maybe\"}", CNI_ERR_CONFIG,
		    "ipv6" },
		{ "{\"cniVersion\":\"1.0.0\",\"namespaces\":\"apps\"}",
		    CNI_ERR_CONFIG, "namespaces" },
		{ "{\"cniVersion\":\"1.0.0\",\"namespaces\":[\"\"]}",
		    CNI_ERR_CONFIG, "namespaces[0]" },
		{ "{\"cniVersion\":\"1.0.0\",\"logFile\":\"relative.log\"}",
		    CNI_ERR_CONFIG, "logFile" },
		{ "{\"cniVersion\":\"1.0.0\",\"runtimeConfig\":{"
		    "\"io.kubernetes.cri.pod-annotations\":[]}}", CNI_ERR_CONFIG,
		    "pod-annotations" },
		{ "{\"cniVersion\":\"1.0.0\",\"prevResult\":[]}", CNI_ERR_CONFIG,
		    "prevResult" },
	};
	struct cni_conf c;
	struct cni_err e;
	char many[4096];
	size_t i, off;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = parse(cases[i].text, &c, &e);

		ok(rc == cases[i].code && (int)e.code == cases[i].code &&
		    strstr(e.msg, cases[i].word) != NULL, "bad config %zu: "
		    "code %d, message names '%s' (got %d: %s)", i + 1,
		    cases[i].code, cases[i].word, rc, e.msg);
		ok(c.prev_result == NULL, "bad config %zu holds nothing", i + 1);
	}
	/* One more id than the rules can carry. */
	off = (size_t)snprintf(many, sizeof(many),
	    "{\"cniVersion\":\"1.0.0\",\"excludeUIDs\":[");
	for (i = 0; i <= RULES_MAX_EXCLUDES; i++)
		off += (size_t)snprintf(many + off, sizeof(many) - off, "%s%zu",
		    i > 0 ? "," : "", i + 1);
	snprintf(many + off, sizeof(many) - off, "]}");
	is(parse(many, &c, &e), CNI_ERR_CONFIG, "33 excludeUIDs: too many");
}

static void
test_args(void)
{
	const char *args = "IgnoreUnknown=1;K8S_POD_NAMESPACE=apps;"
	    "K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID=abc;K8S_POD_UID=u";
	char v[16], tiny[4];

	ok(cni_args_get(args, "K8S_POD_NAMESPACE", v, sizeof(v)) &&
	    strcmp(v, "apps") == 0, "K8S_POD_NAMESPACE");
	ok(cni_args_get(args, "K8S_POD_NAME", v, sizeof(v)) &&
	    strcmp(v, "web-0") == 0, "K8S_POD_NAME is not a prefix match");
	ok(cni_args_get(args, "K8S_POD_UID", v, sizeof(v)) &&
	    strcmp(v, "u") == 0, "the last pair");
	ok(!cni_args_get(args, "K8S_POD", v, sizeof(v)), "no prefix match");
	ok(!cni_args_get(args, "K8S_POD_NAME", tiny, sizeof(tiny)),
	    "a value that does not fit is no value");
	ok(!cni_args_get(NULL, "K8S_POD_NAME", v, sizeof(v)), "no CNI_ARGS");
	ok(!cni_args_get("", "K8S_POD_NAME", v, sizeof(v)), "empty CNI_ARGS");
	ok(cni_args_get("A=;B=2", "A", v, sizeof(v)) && v[0] == '\0',
	    "an empty value");
	ok(!cni_args_get("noequals;;", "noequals", v, sizeof(v)),
	    "a key without '=' is no value");
}

static void
conf_with(struct cni_conf *c, const char *annotation, const char *ns)
{
	char text[512];
	struct cni_err e;

	snprintf(text, sizeof(text), "{\"cniVersion\":\"1.0.0\",\"namespaces\":"
	    "[%s%s%s]%s%s%s}", ns != NULL ? "\"" : "", ns != NULL ? ns : "",
	    ns != NULL ? "\"" : "", annotation != NULL ? ",\"runtimeConfig\":"
	    "{\"io.kubernetes.cri.pod-annotations\":{\"dotproxy/capture\":\"" :
	    "", annotation != NULL ? annotation : "", annotation != NULL ?
	    "\"}}" : "");
	if (parse(text, c, &e) != 0)
		printf("# cannot parse %s: %s\n", text, e.msg);
}

static void
test_select(void)
{
	struct cni_conf c;

	conf_with(&c, "true", NULL);
	is(cni_select(&c, "default"), CNI_PICK_ANNOTATION, "annotated true");
	ok(cni_picked(cni_select(&c, NULL)), "annotated, no namespace known");
	conf_with(&c, NULL, NULL);
	is(cni_select(&c, "default"), CNI_SKIP, "nothing: not captured");
	ok(!cni_picked(cni_select(&c, "default")), "skip is not picked");
	conf_with(&c, NULL, "apps");
	is(cni_select(&c, "apps"), CNI_PICK_NAMESPACE, "listed namespace");
	is(cni_select(&c, "apps2"), CNI_SKIP, "exact names only");
	is(cni_select(&c, "app"), CNI_SKIP, "no prefix match");
	is(cni_select(&c, ""), CNI_SKIP, "empty namespace");
	is(cni_select(&c, NULL), CNI_SKIP, "unknown namespace");
	conf_with(&c, "false", "apps");
	is(cni_select(&c, "apps"), CNI_SKIP_OPTOUT,
	    "annotated false beats the namespace list");
	ok(!cni_picked(CNI_SKIP_OPTOUT), "opt-out is not picked");
	conf_with(&c, "TRUE", NULL);
	is(cni_select(&c, "default"), CNI_SKIP,
	    "only the exact string \"true\" captures");
	conf_with(&c, "yes", "apps");
	is(cni_select(&c, "apps"), CNI_PICK_NAMESPACE,
	    "another value leaves the namespace rule");
	ok(strstr(cni_pick_name(CNI_PICK_NAMESPACE), "namespace") != NULL &&
	    strstr(cni_pick_name(CNI_SKIP), "not captured") != NULL,
	    "decisions have words for the log");
}

static void
test_versions_and_errors(void)
{
	struct cni_err e;
	json_t *o;

	ok(cni_version_supported("1.0.0") && cni_version_supported("0.3.1") &&
	    cni_version_supported("0.4.0"), "1.0.0, 0.4.0, 0.3.1 spoken");
	ok(!cni_version_supported("0.2.0") && !cni_version_supported("1.0") &&
	    !cni_version_supported(NULL), "0.2.0, 1.0, NULL not");
	ok(!cni_version_has_check("0.3.1") && cni_version_has_check("0.4.0") &&
	    cni_version_has_check("1.0.0"), "CHECK from 0.4.0 on");
	ok(strcmp(cni_versions[cni_nversions - 1], "1.1.0") == 0,
	    "newest last");

	cni_fail(&e, CNI_ERR_ENV, "environment variable %s is missing",
	    "CNI_NETNS");
	o = cni_err_json(&e, "1.0.0");
	ok(o != NULL && json_integer_value(json_object_get(o, "code")) == 4 &&
	    strcmp(json_string_value(json_object_get(o, "cniVersion")),
	    "1.0.0") == 0 && strstr(json_string_value(json_object_get(o,
	    "msg")), "CNI_NETNS") != NULL && json_object_get(o, "details") ==
	    NULL, "error object: cniVersion, code 4, msg names the variable");
	json_decref(o);
	/* A message with bytes that are not UTF-8 still makes an object. */
	cni_fail(&e, CNI_ERR_CONFIG, "bad \xc3");
	snprintf(e.details, sizeof(e.details), "more");
	o = cni_err_json(&e, NULL);
	ok(o != NULL && strcmp(json_string_value(json_object_get(o, "msg")),
	    "bad ?") == 0 && strcmp(json_string_value(json_object_get(o,
	    "details")), "more") == 0 && strcmp(json_string_value(
	    json_object_get(o, "cniVersion")), "1.1.0") == 0,
	    "error object survives a broken byte; details; default version");
	json_decref(o);
}

static void
test_cidr(void)
{
	struct rules_cidr c;

	is(rules_cidr_parse("192.0.2.0/24", &c), 0, "v4 /24");
	ok(c.family == AF_INET && c.prefix == 24, "family and prefix");
	is(rules_cidr_parse("192.0.2.7", &c), 0, "a host");
	is(c.prefix, 32, "a host is /32");
	is(rules_cidr_parse("2001:db8::/32", &c), 0, "v6 /32");
	ok(c.family == AF_INET6 && c.prefix == 32, "v6 family and prefix");
	is(rules_cidr_parse("2001:db8::1/127", &c), -EDOM, "v6 host bits");
	is(rules_cidr_parse("192.0.2.1/24", &c), -EDOM, "v4 host bits");
	is(rules_cidr_parse("192.0.2.0/33", &c), -ERANGE, "prefix > 32");
	is(rules_cidr_parse("192.0.2.0/", &c), -ERANGE, "empty prefix");
	is(rules_cidr_parse("192.0.2.0/-1", &c), -ERANGE, "negative prefix");
	is(rules_cidr_parse("192.0.2.0/2x", &c), -ERANGE, "junk prefix");
	is(rules_cidr_parse("/24", &c), -EINVAL, "no address");
	is(rules_cidr_parse("example.com/24", &c), -EINVAL, "a name");
	is(rules_cidr_parse("0.0.0.0/0", &c), 0, "everything");
}

static void
test_install_entry(void)
{
	json_t *cfg, *entry, *other;

	cfg = json_loads("{\"proxyPort\":15353,\"namespaces\":[\"apps\"]}", 0,
	    NULL);
	entry = cni_install_entry(cfg);
	ok(entry != NULL && strcmp(json_string_value(json_object_get(entry,
	    "type")), "dotproxy-cni") == 0, "entry has our type");
	ok(json_is_true(json_object_get(json_object_get(entry, "capabilities"),
	    "io.kubernetes.cri.pod-annotations")),
	    "entry declares the pod-annotations capability");
	ok(json_is_true(json_object_get(json_object_get(entry, "capabilities"),
	    "dns")), "entry declares the dns capability (the nameservers)");
	ok(json_integer_value(json_object_get(entry, "proxyPort")) == 15353 &&
	    json_is_array(json_object_get(entry, "namespaces")),
	    "entry carries the configured keys");
	other = json_loads("{\"type\":\"bridge\"}", 0, NULL);
	ok(cni_install_entry(other) == NULL,
	    "a config naming another type is refused");
	json_decref(other);
	json_decref(entry);
	json_decref(cfg);
}

/* runtimeConfig.dns (the "dns" capability) fills the nameserver list. */
static void
test_runtime_dns(void)
{
	static const char text[] =
	    "{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"type\":\"dotproxy-cni\","
	    "\"runtimeConfig\":{\"dns\":{\"servers\":[\"192.0.2.2\",\"bad\","
	    "\"2001:db8::3\",\"192.0.2.3\",\"192.0.2.4\"],"
	    "\"searches\":[\"ns.svc.cluster.local\"]}}}";
	struct cni_conf c;
	struct cni_err e;
	char a[INET6_ADDRSTRLEN];

	is(parse(text, &c, &e), 0, "runtimeConfig.dns parses");
	is(c.spec.nns, 3, "three servers kept (a bad one skipped, a fourth "
	    "ignored)");
	ok(c.spec.ns[0].family == AF_INET && strcmp(inet_ntop(AF_INET,
	    c.spec.ns[0].addr, a, sizeof(a)), "192.0.2.2") == 0 &&
	    c.spec.ns[1].family == AF_INET6 && strcmp(inet_ntop(AF_INET6,
	    c.spec.ns[1].addr, a, sizeof(a)), "2001:db8::3") == 0 &&
	    strcmp(inet_ntop(AF_INET, c.spec.ns[2].addr, a, sizeof(a)),
	    "192.0.2.3") == 0, "in order: 192.0.2.2, 2001:db8::3, 192.0.2.3");
	cni_conf_fini(&c);
	is(parse("{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"runtimeConfig\":"
	    "{\"dns\":{\"servers\":\"192.0.2.2\"}}}", &c, &e), CNI_ERR_CONFIG,
	    "servers not an array: code 7");
	ok(strstr(e.msg, "runtimeConfig.dns") != NULL, "naming the key: %s",
	    e.msg);
	cni_conf_fini(&c);
	is(parse("{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"runtimeConfig\":"
	    "{\"dns\":{}}}", &c, &e), 0, "dns without servers: none");
	is(c.spec.nns, 0, "no nameserver");
	cni_conf_fini(&c);
}

static void
test_install_first(void)
{
	const char *names[] = { "99-loopback.conf", "10-calico.conflist",
	    ".dotproxy-cni.tmp.12", "05-readme.txt", "10-calico.conflist.bak",
	    "20-x.json", "." };
	const bool dirs[] = { false, false, false, false, false, false, true };
	const char *none[] = { "a.txt", "conf", "x.conflist~" };
	const bool nodirs[] = { false, false, false };
	/* libcni: a directory with a list's name is skipped, a dot-file is a
	 * file like any other, and ".conf" alone has the extension. */
	const char *odd[] = { "10-b.conflist", "00-dir.conflist",
	    ".05-hidden.conflist", "07-link-to-dir.conf" };
	const bool odd_dirs[] = { false, true, false, false };
	const char *sub[] = { "10-b.conflist", "00-dir.conflist" };
	const bool sub_dirs[] = { false, true };
	const char *bare[] = { "zz.json", ".conf" };
	const bool bare_dirs[] = { false, false };

	is(cni_install_first(names, dirs, 7), 1, "first by name among .conf, "
	    ".conflist and .json; temp and other files skipped");
	is(cni_install_first(none, nodirs, 3), -1, "none");
	is(cni_install_first(names, dirs, 0), -1, "empty directory");
	is(cni_install_first(odd, odd_dirs, 4), 2, "directory skipped, "
	    "dot-file considered (byte order: '.' before digits)");
	is(cni_install_first(sub, sub_dirs, 2), 0, "a directory named like "
	    "a list, first by name, is skipped");
	is(cni_install_first(bare, bare_dirs, 2), 1, "\".conf\" itself is "
	    "a configuration file to libcni");
	ok(cni_install_candidate(".x.json") && !cni_install_candidate("x.yaml") &&
	    !cni_install_candidate(".dotproxy-cni.tmp.7"), "candidate names");
}

int
main(void)
{
	test_defaults();
	test_all_keys();
	test_bad();
	test_args();
	test_select();
	test_versions_and_errors();
	test_cidr();
	test_install_entry();
	test_install_first();
	test_runtime_dns();
	return tap_done();
}
