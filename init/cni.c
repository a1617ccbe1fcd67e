/*
 * dotproxy-cni: a chained CNI plugin (spec 1.0.0; 0.3.x, 0.4.0 and 1.1.0
 * configurations too), top of its program. The container runtime runs it
 * on the node, as root, after the network plugin; for a selected pod it
 * enters the pod's network namespace and installs exactly the table that
 * dotproxy-init installs, with the same rules (rules.c) and netlink talk
 * (nl.c). Owns the CNI_* environment, stdin and stdout of the protocol,
 * the error objects and the optional log file. `dotproxy-cni install`,
 * `uninstall` and `ready` are the node installer (cni_install.c), modes of
 * the same binary, which is linked fully static (cni_mnl.c).
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <libnftnl/chain.h>
#include <libnftnl/rule.h>

#include "init/cni_conf.h"
#include "init/cni_install.h"
#include "init/cni_json.h"
#include "init/nl.h"
#include "init/rules.h"

#ifndef DOTPROXY_VERSION
#define DOTPROXY_VERSION "0.0.0"
#endif

#define CNI_STDIN_MAX	(4u << 20)	/* a network configuration */

enum cni_cmd { CMD_ADD = 0, CMD_DEL, CMD_CHECK, CMD_VERSION, CMD_GC,
	CMD_STATUS };

static const struct {
	const char	*name;
	enum cni_cmd	 cmd;
} cni_cmds[] = {
	{ "ADD", CMD_ADD }, { "DEL", CMD_DEL }, { "CHECK", CMD_CHECK },
	{ "VERSION", CMD_VERSION }, { "GC", CMD_GC }, { "STATUS", CMD_STATUS },
};

/* What one invocation knows, for the log line. */
struct cni_run {
	const char	*command;	/* borrowed: environment */
	const char	*container;	/* borrowed: environment */
	const char	*netns;		/* borrowed: environment */
	char		 ns[CNI_NAME_MAX + 1];	/* K8S_POD_NAMESPACE */
	char		 pod[CNI_NAME_MAX + 1];	/* K8S_POD_NAME */
};

static const char usage_text[] =
"usage: dotproxy-cni                 (run by the container runtime: CNI_COMMAND\n"
"                                     and the other CNI_* variables, the\n"
"                                     network configuration on stdin)\n"
"       dotproxy-cni install [options]  (the node installer; see --help there)\n"
"       dotproxy-cni uninstall [options] (its entry and the plugin removed)\n"
"       dotproxy-cni ready [FILE]        (exit 0 once the installer placed its\n"
"                                     entry: a readinessProbe)\n"
"       dotproxy-cni --version | --help\n"
"\n"
"A chained CNI plugin: for a pod annotated dotproxy/capture: \"true\" (passed\n"
"by the runtime through the io.kubernetes.cri.pod-annotations capability)\n"
"or in one of the configured namespaces, it installs table inet dotproxy in\n"
"the pod's network namespace, exactly as dotproxy-init does. Keys:\n"
"proxyPort, proxyUID, excludeUIDs, excludeGIDs, excludeCIDRs, ipv6\n"
"(auto|on|off), namespaces, logFile.\n";

/* Appends one line to the configured log file; silent when there is none. */
__attribute__((format(printf, 3, 4))) static void
cni_log(const struct cni_conf *c, const struct cni_run *r, const char *fmt,
    ...)
{
	char when[32], line[1024];
	struct tm tm;
	time_t now;
	va_list ap;
	int fd, n;

	if (c == NULL || c->log_file[0] == '\0')
		return;
	now = time(NULL);
	if (gmtime_r(&now, &tm) == NULL ||
	    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		when[0] = '\0';
	n = snprintf(line, sizeof(line) - 1, "%s %s container=%.64s "
	    "pod=%.64s/%.64s netns=%.256s: ", when, r->command, r->container != NULL ?
	    r->container : "-", r->ns[0] != '\0' ? r->ns : "-",
	    r->pod[0] != '\0' ? r->pod : "-", r->netns != NULL &&
	    r->netns[0] != '\0' ? r->netns : "-");
	if (n < 0 || (size_t)n >= sizeof(line))
		return;
	/* The terminating NUL's byte becomes the newline: a record cut at
	 * the bound (1 KiB with its newline) still ends its line, and the
	 * next one starts a new one. */
	va_start(ap, fmt);
	(void)vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	if ((fd = open(c->log_file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
	    0640)) == -1)
		return;
	n = (int)strlen(line);
	line[n++] = '\n';
	/* One write per record, O_APPEND: concurrent plugin runs do not
	 * interleave. Best effort: a full disk must not fail the pod. */
	if (write(fd, line, (size_t)n) != n)
		n = 0;
	close(fd);
}

/* Prints a JSON object on stdout, one line; false when that failed. */
static bool
put_json(json_t *o)
{
	bool good;

	if (o == NULL)
		return false;
	good = json_dumpf(o, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER) == 0 &&
	    fputc('\n', stdout) != EOF && fflush(stdout) == 0;
	json_decref(o);
	return good;
}

/* The spec's failure: the error object on stdout (libcni reads it there),
 * the message on stderr for people, exit status 1. */
static int
fail_out(const struct cni_err *err, const char *version)
{
	fprintf(stderr, "dotproxy-cni: %s%s%s\n", err->msg,
	    err->details[0] != '\0' ? ": " : "", err->details);
	(void)put_json(cni_err_json(err, version));
	return 1;
}

static int
read_stdin(char **out, size_t *len, struct cni_err *err)
{
	size_t cap = 64 * 1024, n = 0;
	char *buf, *nb;
	ssize_t r;

	if ((buf = malloc(cap)) == NULL)
		return cni_fail(err, CNI_ERR_IO, "out of memory");
	for (;;) {
		if (n == cap) {
			if (cap >= CNI_STDIN_MAX) {
				free(buf);
				return cni_fail(err, CNI_ERR_DECODE, "the network "
				    "configuration is larger than %u bytes",
				    CNI_STDIN_MAX);
			}
			cap *= 2;
			if ((nb = realloc(buf, cap)) == NULL) {
				free(buf);
				return cni_fail(err, CNI_ERR_IO, "out of memory");
			}
			buf = nb;
		}
		r = read(STDIN_FILENO, buf + n, cap - n);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			cni_fail(err, CNI_ERR_IO, "cannot read stdin: %s",
			    strerror(errno));
			free(buf);
			return CNI_ERR_IO;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	*out = buf;
	*len = n;
	return 0;
}

/* A required CNI_* variable: set and not empty. */
static int
need_env(const char *name, const char **out, struct cni_err *err)
{
	const char *v = getenv(name);

	if (v == NULL || v[0] == '\0')
		return cni_fail(err, CNI_ERR_ENV, "environment variable %s is "
		    "missing or empty", name);
	*out = v;
	return 0;
}

/*
 * Moves this process into the network namespace at path. *gone says the
 * namespace no longer exists (for DEL, which then has nothing to do).
 */
static int
enter_netns(const char *path, bool *gone, struct cni_err *err)
{
	int fd, e;

	*gone = false;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		e = errno;
		*gone = e == ENOENT;
		return cni_fail(err, CNI_ERR_IO, "cannot open network namespace "
		    "%s: %s", path, strerror(e));
	}
	if (setns(fd, CLONE_NEWNET) == -1) {
		e = errno;
		close(fd);
		/* EINVAL: the file is there but is no (longer a) namespace. */
		*gone = e == EINVAL;
		return cni_fail(err, CNI_ERR_IO, "cannot enter network namespace "
		    "%s: %s", path, strerror(e));
	}
	close(fd);
	return 0;
}

/* One batch through nl.c; a failure becomes CNI_ERR_NFT naming the command. */
static int
send_batch(struct nl *nl, const void *buf, const struct rules_batch *b,
    struct cni_err *err)
{
	struct nl_result res;

	if (nl_talk(nl, buf, b, &res) == 0)
		return 0;
	return cni_fail(err, CNI_ERR_NFT, "nftables refused %s: %s",
	    res.msg != NULL ? res.msg->what : "the batch", strerror(-res.err));
}

static int
table_install(const struct rules_spec *spec, struct cni_err *err)
{
	static struct rules_batch batch;
	uint8_t *buf = NULL;
	struct nl *nl;
	int rc;

	if ((nl = nl_open()) == NULL)
		return cni_fail(err, CNI_ERR_NFT, "cannot open netfilter netlink: "
		    "%s", strerror(errno));
	if ((buf = malloc(RULES_BATCH_CAP)) == NULL)
		rc = cni_fail(err, CNI_ERR_IO, "out of memory");
	else if ((rc = rules_batch_install(spec, nl_seq(nl), buf,
	    RULES_BATCH_CAP, &batch)) != 0)
		rc = cni_fail(err, CNI_ERR_CONFIG, "cannot build the ruleset: %s",
		    strerror(-rc));
	else
		rc = send_batch(nl, buf, &batch, err);
	free(buf);
	nl_close(nl);
	return rc;
}

static int
table_remove(bool *was, struct cni_err *err)
{
	static struct rules_batch batch;
	struct nftnl_chain_list *chains = NULL;
	struct nftnl_rule_list *rules = NULL;
	uint8_t *buf = NULL;
	uint32_t tflags;
	struct nl *nl;
	int rc;

	*was = false;
	if ((nl = nl_open()) == NULL)
		return cni_fail(err, CNI_ERR_NFT, "cannot open netfilter netlink: "
		    "%s", strerror(errno));
	if ((buf = malloc(RULES_BATCH_CAP)) == NULL ||
	    (chains = nftnl_chain_list_alloc()) == NULL ||
	    (rules = nftnl_rule_list_alloc()) == NULL)
		rc = cni_fail(err, CNI_ERR_IO, "out of memory");
	else if ((rc = nl_read_table(nl, RULES_TABLE, was, &tflags, chains,
	    rules)) != 0)
		rc = cni_fail(err, CNI_ERR_NFT, "cannot read nftables: %s",
		    strerror(-rc));
	else if (!*was)
		rc = 0;		/* nothing to remove: DEL twice is fine */
	else if ((rc = rules_batch_cleanup(nl_seq(nl), buf, RULES_BATCH_CAP,
	    &batch)) != 0)
		rc = cni_fail(err, CNI_ERR_IO, "cannot build the batch: %s",
		    strerror(-rc));
	else
		rc = send_batch(nl, buf, &batch, err);
	if (rules != NULL)
		nftnl_rule_list_free(rules);
	if (chains != NULL)
		nftnl_chain_list_free(chains);
	free(buf);
	nl_close(nl);
	return rc;
}

static int
table_check(const struct rules_spec *spec, struct cni_err *err)
{
	struct nftnl_chain_list *chains = NULL;
	struct nftnl_rule_list *rules = NULL;
	bool present = false;
	uint32_t tflags;
	char why[512];
	struct nl *nl;
	int rc;

	if ((nl = nl_open()) == NULL)
		return cni_fail(err, CNI_ERR_NFT, "cannot open netfilter netlink: "
		    "%s", strerror(errno));
	if ((chains = nftnl_chain_list_alloc()) == NULL ||
	    (rules = nftnl_rule_list_alloc()) == NULL)
		rc = cni_fail(err, CNI_ERR_IO, "out of memory");
	else if ((rc = nl_read_table(nl, RULES_TABLE, &present, &tflags,
	    chains, rules)) != 0)
		rc = cni_fail(err, CNI_ERR_NFT, "cannot read nftables: %s",
		    strerror(-rc));
	else if (!present)
		rc = cni_fail(err, CNI_ERR_TABLE, "table inet %s is missing",
		    RULES_TABLE);
	else if (!rules_check(spec, tflags, chains, rules, why, sizeof(why)))
		rc = cni_fail(err, CNI_ERR_TABLE, "table inet %s differs from "
		    "the configuration: %s", RULES_TABLE, why);
	else
		rc = 0;
	if (rules != NULL)
		nftnl_rule_list_free(rules);
	if (chains != NULL)
		nftnl_chain_list_free(chains);
	nl_close(nl);
	return rc;
}

/* ipv6 "auto" is decided inside the pod's namespace. */
static void
resolve_ipv6(struct cni_conf *c)
{
	c->spec.ipv6 = c->ipv6 == CNI_IPV6_ON ||
	    (c->ipv6 == CNI_IPV6_AUTO && nl_ipv6_enabled());
}

static int
cmd_add(struct cni_conf *c, struct cni_run *r, const char *text, size_t len,
    struct cni_err *err)
{
	enum cni_pick pick;
	size_t olen;
	char *out;
	bool gone;
	int rc;

	if (c->prev_result == NULL)
		return cni_fail(err, CNI_ERR_CONFIG, "no prevResult: "
		    CNI_PLUGIN_TYPE " must be chained after a network plugin");
	pick = cni_select(c, r->ns);
	if (cni_picked(pick)) {
		if ((rc = enter_netns(r->netns, &gone, err)) != 0)
			return rc;
		resolve_ipv6(c);
		if ((rc = table_install(&c->spec, err)) != 0)
			return rc;
		cni_log(c, r, "%s: table inet %s installed (udp and tcp port "
		    "53 -> :%u, %s, uid %u not captured)", cni_pick_name(pick),
		    RULES_TABLE, c->spec.proxy_port, c->spec.ipv6 ?
		    "IPv4 and IPv6" : "IPv4 only", c->spec.proxy_uid);
	} else
		cni_log(c, r, "%s%s", cni_pick_name(pick), c->has_annotations ?
		    "" : " (the runtime passed no pod annotations)");
	/*
	 * The previous result, unchanged but for the version, is ours: its
	 * text spliced, not re-encoded, so that numbers a double cannot hold
	 * and fields we do not know reach the runtime as they left the
	 * previous plugin.
	 */
	if ((out = cni_prev_result_text(text, len, c->version, &olen)) == NULL)
		return cni_fail(err, CNI_ERR_DECODE, "cannot pass the prevResult "
		    "on (out of memory, or more than %d keys around it)",
		    CJS_MEMBERS_MAX);
	rc = fwrite(out, 1, olen, stdout) == olen && fputc('\n', stdout) !=
	    EOF && fflush(stdout) == 0;
	free(out);
	if (!rc)
		return cni_fail(err, CNI_ERR_IO, "cannot write the result");
	return 0;
}

static int
cmd_del(struct cni_conf *c, struct cni_run *r, struct cni_err *err)
{
	enum cni_pick pick = cni_select(c, r->ns);
	bool gone, was;
	int rc;

	if (!cni_picked(pick)) {
		cni_log(c, r, "%s: nothing to remove", cni_pick_name(pick));
		return 0;
	}
	if (r->netns == NULL || r->netns[0] == '\0') {
		cni_log(c, r, "no network namespace: nothing to remove");
		return 0;
	}
	/*
	 * DEL must succeed when the resources are gone, and a namespace we
	 * cannot enter is one whose table we cannot reach either: it goes
	 * with the namespace. Failing here would only stop the runtime's
	 * teardown (and the other plugins' DEL) for good.
	 */
	if ((rc = enter_netns(r->netns, &gone, err)) != 0) {
		cni_log(c, r, "%s: nothing to remove", gone ?
		    "network namespace gone" : err->msg);
		return 0;
	}
	if ((rc = table_remove(&was, err)) != 0)
		return rc;
	cni_log(c, r, "table inet %s %s", RULES_TABLE, was ? "removed" :
	    "was not installed; nothing to do");
	return 0;
}

static int
cmd_check(struct cni_conf *c, struct cni_run *r, struct cni_err *err)
{
	enum cni_pick pick = cni_select(c, r->ns);
	bool gone;
	int rc;

	if (!cni_version_has_check(c->version))
		return cni_fail(err, CNI_ERR_VERSION, "CHECK is not defined for "
		    "cniVersion %s (needs 0.4.0 or later)", c->version);
	if (!cni_picked(pick))
		return 0;
	if ((rc = enter_netns(r->netns, &gone, err)) != 0)
		return rc;
	resolve_ipv6(c);
	return table_check(&c->spec, err);
}

/*
 * VERSION: the version asked for (the cniVersion of the configuration on
 * stdin) when we speak it, else our newest, and every version we speak.
 * Without a readable stdin (a person at a terminal) the newest.
 */
static int
cmd_version(void)
{
	const char *want = cni_versions[cni_nversions - 1], *v;
	struct cni_err err;
	json_t *o, *list, *in = NULL;
	char *text = NULL;
	size_t i, len;

	if (!isatty(STDIN_FILENO) && read_stdin(&text, &len, &err) == 0) {
		in = json_loadb(text, len, 0, NULL);
		if ((v = json_string_value(json_object_get(in, "cniVersion"))) !=
		    NULL && cni_version_supported(v))
			want = v;
	}
	free(text);
	if ((list = json_array()) == NULL) {
		json_decref(in);
		return 1;
	}
	for (i = 0; i < cni_nversions; i++)
		json_array_append_new(list, json_string(cni_versions[i]));
	o = json_pack("{s:s, s:o}", "cniVersion", want, "supportedVersions",
	    list);
	json_decref(in);
	return put_json(o) ? 0 : 1;
}

static int
run_plugin(void)
{
	struct cni_conf conf;
	struct cni_run run;
	struct cni_err err;
	const char *cmd_name, *args;
	enum cni_cmd cmd = CMD_VERSION;
	size_t i, len = 0;
	char *text = NULL;
	bool known = false;
	int rc;

	memset(&run, 0, sizeof(run));
	memset(&err, 0, sizeof(err));
	if ((rc = need_env("CNI_COMMAND", &cmd_name, &err)) != 0)
		return fail_out(&err, NULL);
	for (i = 0; i < sizeof(cni_cmds) / sizeof(cni_cmds[0]); i++)
		if (strcmp(cmd_name, cni_cmds[i].name) == 0) {
			cmd = cni_cmds[i].cmd;
			known = true;
		}
	if (!known) {
		cni_fail(&err, CNI_ERR_ENV, "CNI_COMMAND '%.32s' is not one of "
		    "ADD, DEL, CHECK, VERSION, GC, STATUS", cmd_name);
		return fail_out(&err, NULL);
	}
	if (cmd == CMD_VERSION)
		return cmd_version();
	run.command = cmd_name;
	run.container = getenv("CNI_CONTAINERID");
	run.netns = getenv("CNI_NETNS");
	args = getenv("CNI_ARGS");
	(void)cni_args_get(args, "K8S_POD_NAMESPACE", run.ns, sizeof(run.ns));
	(void)cni_args_get(args, "K8S_POD_NAME", run.pod, sizeof(run.pod));

	if ((rc = read_stdin(&text, &len, &err)) != 0)
		return fail_out(&err, NULL);
	/* The configuration's own version when it got that far (parse
	 * keeps it on a failure), else our newest. */
	if ((rc = cni_conf_parse(text, len, &conf, &err)) != 0) {
		free(text);
		return fail_out(&err, conf.version);
	}

	switch (cmd) {
	case CMD_ADD:
	case CMD_CHECK:
		if ((rc = need_env("CNI_CONTAINERID", &run.container, &err)) != 0 ||
		    (rc = need_env("CNI_NETNS", &run.netns, &err)) != 0 ||
		    (rc = need_env("CNI_IFNAME", &args, &err)) != 0)
			break;
		rc = cmd == CMD_ADD ? cmd_add(&conf, &run, text, len, &err) :
		    cmd_check(&conf, &run, &err);
		break;
	case CMD_DEL:
		if ((rc = need_env("CNI_CONTAINERID", &run.container, &err)) != 0 ||
		    (rc = need_env("CNI_IFNAME", &args, &err)) != 0)
			break;
		rc = cmd_del(&conf, &run, &err);
		break;
	case CMD_GC:
	case CMD_STATUS:
	case CMD_VERSION:
		/* Our state lives and dies with each pod's namespace. */
		rc = 0;
		break;
	}
	if (rc != 0) {
		cni_log(&conf, &run, "error %d: %s", (int)err.code, err.msg);
		rc = fail_out(&err, conf.version);
	}
	cni_conf_fini(&conf);
	free(text);
	return rc;
}

int
main(int argc, char **argv)
{
	if (argc >= 2 && (strcmp(argv[1], "install") == 0 ||
	    strcmp(argv[1], "uninstall") == 0))
		return cni_install_main(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "ready") == 0)
		return cni_ready_main(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "--version") == 0) {
		printf("dotproxy-cni %s\n", DOTPROXY_VERSION);
		return 0;
	}
	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0)) {
		fputs(usage_text, stdout);
		return 0;
	}
	if (argc >= 2) {
		fprintf(stderr, "dotproxy-cni: unexpected argument '%s' (see "
		    "--help)\n", argv[1]);
		return 2;
	}
	return run_plugin();
}
