/*
 * dotproxy-init: the one-shot init-container program (top of init/). Owns
 * the command line and its DOTPROXY_INIT_* environment twins, the exit
 * statuses, the --validate probe, the refusal of the node's namespace
 * (the checks are hostnet.c's), and turning results from rules.c and
 * nl.c into one-line messages (err(3) style). It builds no rules itself
 * and never runs the nft binary.
 */
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <err.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libnftnl/chain.h>
#include <libnftnl/rule.h>

#include "init/hostnet.h"
#include "init/nl.h"
#include "init/nodelocal.h"
#include "init/rules.h"

#ifndef DOTPROXY_VERSION
#define DOTPROXY_VERSION "0.0.0"
#endif
#ifndef DOTPROXY_REVISION
#define DOTPROXY_REVISION "unknown"
#endif

/* Exit statuses; --help lists them. */
#define INIT_EXIT_OK		0
#define INIT_EXIT_FAIL		1	/* anything else (out of memory) */
#define INIT_EXIT_USAGE		2
#define INIT_EXIT_MISMATCH	3
#define INIT_EXIT_PERM		4
#define INIT_EXIT_NOKERNEL	5
#define INIT_EXIT_NETLINK	6
#define INIT_EXIT_VALIDATE	7
#define INIT_EXIT_HOSTNET	8	/* the node's namespace: refused */

#define INIT_ENV_PREFIX		"DOTPROXY_INIT_"
#define INIT_MAX_VALUES		64	/* flag occurrences per option */
#define INIT_VALIDATE_ADDR	"192.0.2.53"
#define INIT_VALIDATE_MS	2000
#define INIT_VALIDATE_PROBES	3
#define INIT_PROBE_NAME		"dotproxy-validate.invalid."

enum opt_id {
	O_PROXY_PORT = 0, O_PROXY_UID, O_EXCLUDE_UID, O_EXCLUDE_GID,
	O_EXCLUDE_CIDR, O_IPV6, O_DRY_RUN, O_CHECK, O_CLEANUP, O_VALIDATE,
	O_VALIDATE_ADDR, O_VALIDATE_TIMEOUT, O_POD_IP, O_HOST_IP,
	O_ALLOW_HOST_NETWORK, O_HELP, O_VERSION, O_COUNT
};

struct opt_def {
	const char	*name;		/* long flag without "--" */
	bool		 has_arg;	/* else a switch */
	bool		 repeat;	/* values accumulate, comma lists */
};

static const struct opt_def opt_defs[O_COUNT] = {
	[O_PROXY_PORT] = { "proxy-port", true, false },
	[O_PROXY_UID] = { "proxy-uid", true, false },
	[O_EXCLUDE_UID] = { "exclude-uid", true, true },
	[O_EXCLUDE_GID] = { "exclude-gid", true, true },
	[O_EXCLUDE_CIDR] = { "exclude-cidr", true, true },
	[O_IPV6] = { "ipv6", true, false },
	[O_DRY_RUN] = { "dry-run", false, false },
	[O_CHECK] = { "check", false, false },
	[O_CLEANUP] = { "cleanup", false, false },
	[O_VALIDATE] = { "validate", false, false },
	[O_VALIDATE_ADDR] = { "validate-addr", true, false },
	[O_VALIDATE_TIMEOUT] = { "validate-timeout", true, false },
	[O_POD_IP] = { "pod-ip", true, true },
	[O_HOST_IP] = { "host-ip", true, true },
	[O_ALLOW_HOST_NETWORK] = { "allow-host-network", false, false },
	[O_HELP] = { "help", false, false },
	[O_VERSION] = { "version", false, false },
};

enum init_mode { MODE_INSTALL = 0, MODE_DRY_RUN, MODE_CHECK, MODE_CLEANUP,
	MODE_VALIDATE };
enum ipv6_mode { IPV6_AUTO = 0, IPV6_ON, IPV6_OFF };

struct init_conf {
	struct rules_spec	spec;
	enum ipv6_mode		ipv6;
	bool			modes[MODE_VALIDATE + 1];	/* switches seen */
	struct sockaddr_storage	vaddr;		/* --validate-addr, port 53 */
	socklen_t		vaddr_len;
	int			vtimeout_ms;
	struct hostnet_in	hn;		/* --pod-ip, --host-ip */
	bool			allow_hostnet;	/* --allow-host-network */
};

static const char usage_text[] =
"usage: dotproxy-init [options]\n"
"Installs table inet dotproxy: outgoing UDP and TCP to port 53 is\n"
"redirected to the local dotproxy, except the proxy's own traffic.\n"
"\n"
"  --proxy-port PORT      redirect target port (default 15353)\n"
"  --proxy-uid UID        the proxy's UID, never captured (default 15353)\n"
"  --exclude-uid UID      do not capture this UID (repeatable)\n"
"  --exclude-gid GID      do not capture this GID (repeatable)\n"
"  --exclude-cidr CIDR    do not capture DNS to this IPv4 or IPv6\n"
"                         network (repeatable)\n"
"  --ipv6 auto|on|off     also redirect IPv6 (auto: when the kernel has\n"
"                         IPv6 enabled; default auto)\n"
"  --dry-run              print the ruleset as `nft -f` text, change nothing\n"
"  --check                exit 0 only if the installed table matches\n"
"  --cleanup              remove the table (no error if absent)\n"
"  --validate             as an ordinary UID, after the proxy started: send a\n"
"                         DNS probe to a TEST-NET address and require the\n"
"                         proxy to answer it\n"
"  --validate-addr IP     probe destination (default 192.0.2.53, port 53)\n"
"  --validate-timeout MS  total probe time (default 2000, 3 probes)\n"
"  --pod-ip IP            the pod's IP(s), status.podIP(s) (repeatable)\n"
"  --host-ip IP           the node's IP(s), status.hostIP(s) (repeatable)\n"
"  --allow-host-network   install even in the node's network namespace\n"
"  -h, --help             this text\n"
"  -V, --version          print the version and exit\n"
"\n"
"Installing refuses the node's own network namespace: a pod IP equal to\n"
"a host IP (hostNetwork), a host IP on an interface here, or the kernel's\n"
"initial network namespace.\n"
"\n"
"Every option but help and version also reads DOTPROXY_INIT_<NAME> (upper\n"
"case, '-' -> '_'; comma-separated for repeatable ones; switches take 1/0,\n"
"true/false); a flag beats the environment. Any other DOTPROXY_INIT_*\n"
"variable is an error.\n"
"\n"
"Exit status: 0 ok; 1 other failure; 2 bad usage or value; 3 --check:\n"
"table missing or different; 4 no permission (needs CAP_NET_ADMIN);\n"
"5 no nf_tables support in the kernel; 6 other netlink failure;\n"
"7 --validate: the probe was not answered by the proxy; 8 refused: the\n"
"node's network namespace (see --allow-host-network).\n";

__attribute__((noreturn, format(printf, 1, 2))) static void
usage_err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vwarnx(fmt, ap);
	va_end(ap);
	exit(INIT_EXIT_USAGE);
}

/* Parses a decimal unsigned number in [min, max]; false if it is not. */
static bool
parse_num(const char *s, unsigned long min, unsigned long max,
    unsigned long *out)
{
	unsigned long v;
	char *end;

	if (s == NULL || !isdigit((unsigned char)s[0]))
		return false;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return false;
	*out = v;
	return true;
}

static uint32_t
parse_id(const char *src, const char *val, const char *what)
{
	unsigned long v;

	/* (uid_t)-1 means "no change" to the kernel: never a real id. */
	if (!parse_num(val, 0, UINT32_MAX - 1, &v))
		usage_err("%s '%s': not a numeric %s (0-%u)", src, val, what,
		    UINT32_MAX - 1);
	return (uint32_t)v;
}

static void
parse_cidr(const char *src, const char *val, struct rules_cidr *c)
{
	switch (rules_cidr_parse(val, c)) {
	case 0:
		return;
	case -ERANGE:
		usage_err("%s '%s': bad prefix length (0-%u)", src, val,
		    strchr(val, ':') != NULL ? 128 : 32);
	case -EDOM:
		usage_err("%s '%s': host bits set after /%u", src, val,
		    c->prefix);
	default:
		usage_err("%s '%s': not an IPv4 or IPv6 CIDR", src, val);
	}
}

static bool
parse_switch(const char *src, const char *val)
{
	if (val == NULL)
		return true;	/* the flag itself */
	if (strcmp(val, "1") == 0 || strcasecmp(val, "true") == 0 ||
	    strcasecmp(val, "yes") == 0 || strcasecmp(val, "on") == 0)
		return true;
	if (val[0] == '\0' || strcmp(val, "0") == 0 ||
	    strcasecmp(val, "false") == 0 || strcasecmp(val, "no") == 0 ||
	    strcasecmp(val, "off") == 0)
		return false;
	usage_err("%s '%s': expected 1 or 0 (true/false)", src, val);
}

static void
parse_vaddr(const char *src, const char *val, struct init_conf *cf)
{
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&cf->vaddr;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&cf->vaddr;

	memset(&cf->vaddr, 0, sizeof(cf->vaddr));
	if (inet_pton(AF_INET, val, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(RULES_DNS_PORT);
		cf->vaddr_len = sizeof(*s4);
	} else if (inet_pton(AF_INET6, val, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(RULES_DNS_PORT);
		cf->vaddr_len = sizeof(*s6);
	} else
		usage_err("%s '%s': not an IPv4 or IPv6 address", src, val);
}

static void
parse_ip(const char *src, const char *val, struct hostnet_ip *list,
    size_t *n)
{
	if (*n >= HOSTNET_MAX_IPS)
		usage_err("%s: more than %d addresses", src, HOSTNET_MAX_IPS);
	if (hostnet_ip_parse(val, &list[*n]) != 0)
		usage_err("%s '%s': not an IPv4 or IPv6 address", src, val);
	(*n)++;
}

/* Applies one value of option id, from src (a flag or variable name). */
static void
apply(struct init_conf *cf, enum opt_id id, const char *src, const char *val)
{
	struct rules_spec *sp = &cf->spec;
	unsigned long v;

	switch (id) {
	case O_PROXY_PORT:
		if (!parse_num(val, 1, 65535, &v))
			usage_err("%s '%s': not a port number (1-65535)", src,
			    val);
		sp->proxy_port = (uint16_t)v;
		break;
	case O_PROXY_UID:
		sp->proxy_uid = parse_id(src, val, "UID");
		break;
	case O_EXCLUDE_UID:
		if (sp->nexclude_uid >= RULES_MAX_EXCLUDES)
			usage_err("%s: more than %d values", src,
			    RULES_MAX_EXCLUDES);
		sp->exclude_uid[sp->nexclude_uid++] = parse_id(src, val, "UID");
		break;
	case O_EXCLUDE_GID:
		if (sp->nexclude_gid >= RULES_MAX_EXCLUDES)
			usage_err("%s: more than %d values", src,
			    RULES_MAX_EXCLUDES);
		sp->exclude_gid[sp->nexclude_gid++] = parse_id(src, val, "GID");
		break;
	case O_EXCLUDE_CIDR:
		if (sp->nexclude_cidr >= RULES_MAX_EXCLUDES)
			usage_err("%s: more than %d values", src,
			    RULES_MAX_EXCLUDES);
		parse_cidr(src, val, &sp->exclude_cidr[sp->nexclude_cidr++]);
		break;
	case O_IPV6:
		if (strcmp(val, "auto") == 0)
			cf->ipv6 = IPV6_AUTO;
		else if (strcmp(val, "on") == 0)
			cf->ipv6 = IPV6_ON;
		else if (strcmp(val, "off") == 0)
			cf->ipv6 = IPV6_OFF;
		else
			usage_err("%s '%s': expected auto, on or off", src, val);
		break;
	case O_DRY_RUN:
		cf->modes[MODE_DRY_RUN] = parse_switch(src, val);
		break;
	case O_CHECK:
		cf->modes[MODE_CHECK] = parse_switch(src, val);
		break;
	case O_CLEANUP:
		cf->modes[MODE_CLEANUP] = parse_switch(src, val);
		break;
	case O_VALIDATE:
		cf->modes[MODE_VALIDATE] = parse_switch(src, val);
		break;
	case O_VALIDATE_ADDR:
		parse_vaddr(src, val, cf);
		break;
	case O_VALIDATE_TIMEOUT:
		if (!parse_num(val, 1, 600000, &v))
			usage_err("%s '%s': not a time in ms (1-600000)", src,
			    val);
		cf->vtimeout_ms = (int)v;
		break;
	case O_POD_IP:
		parse_ip(src, val, cf->hn.pod, &cf->hn.npod);
		break;
	case O_HOST_IP:
		parse_ip(src, val, cf->hn.host, &cf->hn.nhost);
		break;
	case O_ALLOW_HOST_NETWORK:
		cf->allow_hostnet = parse_switch(src, val);
		break;
	case O_HELP:
	case O_VERSION:
	case O_COUNT:
		break;
	}
}

/* Applies a value that may be a comma list (repeatable options). */
static void
apply_list(struct init_conf *cf, enum opt_id id, const char *src,
    const char *val)
{
	char *copy, *p, *tok;

	if (!opt_defs[id].repeat || val == NULL) {
		apply(cf, id, src, val);
		return;
	}
	if ((copy = strdup(val)) == NULL)
		err(INIT_EXIT_FAIL, "strdup");
	p = copy;
	while ((tok = strsep(&p, ",")) != NULL) {
		if (tok[0] == '\0')
			continue;	/* "a,,b" and a trailing comma */
		apply(cf, id, src, tok);
	}
	free(copy);
}

static void
env_name(enum opt_id id, char *buf, size_t cap)
{
	const char *s = opt_defs[id].name;
	size_t i, n = strlen(INIT_ENV_PREFIX);

	if (n + strlen(s) >= cap) {
		buf[0] = '\0';
		return;
	}
	memcpy(buf, INIT_ENV_PREFIX, n);
	for (i = 0; s[i] != '\0'; i++)
		buf[n + i] = s[i] == '-' ? '_' : (char)toupper((unsigned char)s[i]);
	buf[n + i] = '\0';
}

/*
 * A misspelt twin (DOTPROXY_INIT_EXCLUDE_UIDS) would otherwise be ignored
 * without a word and the pod would run with the default: every variable
 * under our prefix must name an option.
 */
static void
check_env(void)
{
	extern char **environ;
	char envn[64];
	const char *eq;
	size_t len;
	char **e;
	int j;

	for (e = environ; *e != NULL; e++) {
		if (strncmp(*e, INIT_ENV_PREFIX, strlen(INIT_ENV_PREFIX)) != 0)
			continue;
		eq = strchr(*e, '=');
		len = eq != NULL ? (size_t)(eq - *e) : strlen(*e);
		for (j = 0; j < O_COUNT; j++) {
			if (j == O_HELP || j == O_VERSION)
				continue;
			env_name((enum opt_id)j, envn, sizeof(envn));
			if (strlen(envn) == len && memcmp(envn, *e, len) == 0)
				break;
		}
		if (j == O_COUNT) {
			/* One line: a byte that is not printable shows as '?'. */
			if (len >= sizeof(envn))
				len = sizeof(envn) - 1;
			for (j = 0; j < (int)len; j++)
				envn[j] = (*e)[j] >= 0x20 && (*e)[j] < 0x7f ?
				    (*e)[j] : '?';
			envn[len] = '\0';
			usage_err("unknown variable %s: no option has this "
			    "name (see --help)", envn);
		}
	}
}

static void
parse_args(int argc, char **argv, struct init_conf *cf)
{
	struct option longopts[O_COUNT + 1];
	const char *vals[O_COUNT][INIT_MAX_VALUES];
	size_t nvals[O_COUNT] = { 0 };
	char flag[64], envn[64];
	const char *env;
	int c, i, j;
	size_t k;

	memset(longopts, 0, sizeof(longopts));
	for (i = 0; i < O_COUNT; i++) {
		longopts[i].name = opt_defs[i].name;
		longopts[i].has_arg = opt_defs[i].has_arg ? required_argument :
		    no_argument;
		longopts[i].val = 256 + i;
	}
	opterr = 0;
	while ((c = getopt_long(argc, argv, "hV", longopts, NULL)) != -1) {
		if (c == 'h')
			c = 256 + O_HELP;
		else if (c == 'V')
			c = 256 + O_VERSION;
		if (c < 256 || c >= 256 + O_COUNT) {
			if (optopt >= 256 && optopt < 256 + O_COUNT)
				usage_err("--%s needs a value (see --help)",
				    opt_defs[optopt - 256].name);
			usage_err("unknown option '%s' (see --help)",
			    argv[optind - 1]);
		}
		i = c - 256;
		if (i == O_HELP) {
			fputs(usage_text, stdout);
			exit(INIT_EXIT_OK);
		}
		if (i == O_VERSION) {
			printf("dotproxy-init %s (%s)\n", DOTPROXY_VERSION,
			    DOTPROXY_REVISION);
			exit(INIT_EXIT_OK);
		}
		if (nvals[i] >= INIT_MAX_VALUES)
			usage_err("--%s given too often", opt_defs[i].name);
		vals[i][nvals[i]++] = optarg;
	}
	if (optind < argc)
		usage_err("unexpected argument '%s' (see --help)", argv[optind]);
	check_env();

	/* Defaults, then per option: the flags if any, else the variable. */
	cf->spec.proxy_port = 15353;
	cf->spec.proxy_uid = 15353;
	cf->ipv6 = IPV6_AUTO;
	cf->vtimeout_ms = INIT_VALIDATE_MS;
	parse_vaddr("default", INIT_VALIDATE_ADDR, cf);
	for (j = 0; j < O_COUNT; j++) {
		if (nvals[j] > 0) {
			snprintf(flag, sizeof(flag), "--%s", opt_defs[j].name);
			/* The last of a non-repeatable flag wins. */
			k = opt_defs[j].repeat ? 0 : nvals[j] - 1;
			for (; k < nvals[j]; k++)
				apply_list(cf, (enum opt_id)j, flag, vals[j][k]);
			continue;
		}
		env_name((enum opt_id)j, envn, sizeof(envn));
		if (envn[0] == '\0' || (env = getenv(envn)) == NULL ||
		    j == O_HELP || j == O_VERSION)
			continue;
		if (opt_defs[j].has_arg && env[0] == '\0')
			continue;	/* set but empty: the default */
		apply_list(cf, (enum opt_id)j, envn, env);
	}
}

/*
 * Turns a failed netlink exchange into one line and its exit status.
 * verb is "change" or "read"; what names the failing command, or NULL.
 */
__attribute__((noreturn)) static void
nl_fail(const char *verb, int rc, const char *what)
{
	int e = -rc;

	if (e == EPERM || e == EACCES)
		errx(INIT_EXIT_PERM, "cannot %s nftables: operation not "
		    "permitted (needs CAP_NET_ADMIN)", verb);
	if (e == EOPNOTSUPP || e == EPROTONOSUPPORT || e == EAFNOSUPPORT)
		errx(INIT_EXIT_NOKERNEL, "cannot %s nftables: the kernel has "
		    "no nf_tables (inet family) support%s%s", verb,
		    what != NULL ? ": " : "", what != NULL ? what : "");
	if (e == ENOENT && what != NULL)
		errx(INIT_EXIT_NOKERNEL, "cannot %s nftables: the kernel lacks "
		    "an nf_tables feature (module) for: %s: %s", verb, what,
		    strerror(e));
	errx(INIT_EXIT_NETLINK, "cannot %s nftables: %s%s%s", verb,
	    what != NULL ? what : "", what != NULL ? ": " : "", strerror(e));
}

static struct nl *
open_nl(const char *verb)
{
	struct nl *nl;

	if ((nl = nl_open()) == NULL)
		nl_fail(verb, -errno, NULL);
	return nl;
}

/* Sends one batch and exits on any failure. */
static void
send_batch(struct nl *nl, const void *buf, const struct rules_batch *b)
{
	struct nl_result res;

	if (nl_talk(nl, buf, b, &res) != 0)
		nl_fail("change", res.err, res.msg != NULL ? res.msg->what :
		    NULL);
}

static size_t
spec_rules(const struct rules_spec *spec)
{
	struct rules_rule *plan;
	size_t n = 0;

	if ((plan = calloc(RULES_MAX_RULES, sizeof(*plan))) == NULL)
		err(INIT_EXIT_FAIL, "calloc");
	if (rules_plan(spec, plan, RULES_MAX_RULES, &n) != 0)
		n = 0;
	free(plan);
	return n;
}

/*
 * Before anything reaches netlink: refuses the node's own network
 * namespace (hostnet.c says what is checked and why) unless allowed, and
 * then says so. Only installing is guarded: --dry-run, --check and
 * --validate change nothing, and --cleanup is how a table a hostNetwork
 * pod once left on a node is removed.
 */
static void
hostnet_guard(const struct init_conf *cf)
{
	char why[256];

	if (!hostnet_same_ip(&cf->hn, why, sizeof(why)) &&
	    !hostnet_host_ip_local(&cf->hn, why, sizeof(why)) &&
	    !hostnet_initial_netns("/proc", why, sizeof(why)))
		return;
	if (cf->allow_hostnet) {
		warnx("installing in the node's network namespace as "
		    "--allow-host-network says: %s", why);
		return;
	}
	errx(INIT_EXIT_HOSTNET, "refusing to install in the node's network "
	    "namespace: %s; the table would redirect the node's own DNS and "
	    "outlive the pod (--allow-host-network overrides)", why);
}

static int
do_install(const struct init_conf *cf)
{
	static struct rules_batch batch;
	uint8_t *buf;
	struct nl *nl;
	int rc;

	nl = open_nl("change");
	if ((buf = malloc(RULES_BATCH_CAP)) == NULL)
		err(INIT_EXIT_FAIL, "malloc");
	if ((rc = rules_batch_install(&cf->spec, nl_seq(nl), buf,
	    RULES_BATCH_CAP, &batch)) != 0)
		errx(INIT_EXIT_FAIL, "cannot build the batch: %s", strerror(-rc));
	send_batch(nl, buf, &batch);
	printf("dotproxy-init: table inet %s installed (%zu rules): udp and "
	    "tcp port 53 -> :%u, %s, uid %u not captured\n", RULES_TABLE,
	    spec_rules(&cf->spec), cf->spec.proxy_port,
	    cf->spec.ipv6 ? "IPv4 and IPv6" : "IPv4 only",
	    cf->spec.proxy_uid);
	free(buf);
	nl_close(nl);
	return INIT_EXIT_OK;
}

static int
do_cleanup(void)
{
	static struct rules_batch batch;
	struct nftnl_chain_list *chains;
	struct nftnl_rule_list *rules;
	bool present = false;
	uint32_t tflags;
	uint8_t *buf;
	struct nl *nl;
	int rc;

	nl = open_nl("change");
	if ((buf = malloc(RULES_BATCH_CAP)) == NULL ||
	    (chains = nftnl_chain_list_alloc()) == NULL ||
	    (rules = nftnl_rule_list_alloc()) == NULL)
		err(INIT_EXIT_FAIL, "malloc");
	/* Only to say what happened; the batch is safe either way. */
	if ((rc = nl_read_table(nl, RULES_TABLE, &present, &tflags, chains,
	    rules)) != 0)
		nl_fail("read", rc, NULL);
	if ((rc = rules_batch_cleanup(nl_seq(nl), buf, RULES_BATCH_CAP,
	    &batch)) != 0)
		errx(INIT_EXIT_FAIL, "cannot build the batch: %s", strerror(-rc));
	send_batch(nl, buf, &batch);
	printf("dotproxy-init: table inet %s %s\n", RULES_TABLE,
	    present ? "removed" : "was not installed; nothing to do");
	nftnl_rule_list_free(rules);
	nftnl_chain_list_free(chains);
	free(buf);
	nl_close(nl);
	return INIT_EXIT_OK;
}

static int
do_check(const struct init_conf *cf)
{
	struct nftnl_chain_list *chains;
	struct nftnl_rule_list *rules;
	bool present = false, same;
	uint32_t tflags;
	char why[512];
	struct nl *nl;
	int rc;

	nl = open_nl("read");
	if ((chains = nftnl_chain_list_alloc()) == NULL ||
	    (rules = nftnl_rule_list_alloc()) == NULL)
		err(INIT_EXIT_FAIL, "malloc");
	if ((rc = nl_read_table(nl, RULES_TABLE, &present, &tflags, chains,
	    rules)) != 0)
		nl_fail("read", rc, NULL);
	if (!present)
		errx(INIT_EXIT_MISMATCH, "check: table inet %s is not installed",
		    RULES_TABLE);
	same = rules_check(&cf->spec, tflags, chains, rules, why, sizeof(why));
	nftnl_rule_list_free(rules);
	nftnl_chain_list_free(chains);
	nl_close(nl);
	if (!same)
		errx(INIT_EXIT_MISMATCH, "check: table inet %s differs from the "
		    "flags: %s", RULES_TABLE, why);
	printf("dotproxy-init: check: table inet %s matches the flags (%zu "
	    "rules)\n", RULES_TABLE, spec_rules(&cf->spec));
	return INIT_EXIT_OK;
}

static int
do_dry_run(const struct init_conf *cf)
{
	size_t cap = 256 * 1024;
	char *text;
	int rc;

	if ((text = malloc(cap)) == NULL)
		err(INIT_EXIT_FAIL, "malloc");
	if ((rc = rules_text(&cf->spec, text, cap)) != 0)
		errx(INIT_EXIT_FAIL, "cannot render the ruleset: %s",
		    strerror(-rc));
	fputs(text, stdout);
	free(text);
	if (fflush(stdout) != 0)
		err(INIT_EXIT_FAIL, "stdout");
	return INIT_EXIT_OK;
}

static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *
rcode_name(unsigned int rcode)
{
	static const char *const names[] = { "NOERROR", "FORMERR",
	    "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED" };

	return rcode < sizeof(names) / sizeof(names[0]) ? names[rcode] : NULL;
}

/* Builds the probe query; returns its length. */
static size_t
probe_build(uint8_t *q, size_t cap, uint16_t id)
{
	static const char name[] = INIT_PROBE_NAME;
	const char *p = name, *dot;
	size_t off = 12, n;

	memset(q, 0, 12);
	q[0] = (uint8_t)(id >> 8);
	q[1] = (uint8_t)id;
	q[2] = 0x01;		/* RD */
	q[5] = 1;		/* QDCOUNT */
	while (*p != '\0' && (dot = strchr(p, '.')) != NULL) {
		n = (size_t)(dot - p);
		if (off + 1 + n + 5 > cap)
			return 0;
		q[off++] = (uint8_t)n;
		memcpy(q + off, p, n);
		off += n;
		p = dot + 1;
	}
	q[off++] = 0;		/* root */
	q[off++] = 0;
	q[off++] = 1;		/* QTYPE A */
	q[off++] = 0;
	q[off++] = 1;		/* QCLASS IN */
	return off;
}

/* True if a is an answer to q: same ID, QR set, same single question. */
static bool
probe_matches(const uint8_t *q, size_t qlen, const uint8_t *a, size_t alen)
{
	size_t i;

	if (alen < qlen || a[0] != q[0] || a[1] != q[1] ||
	    (a[2] & 0x80) == 0 || a[4] != 0 || a[5] != 1)
		return false;
	for (i = 12; i < qlen; i++)
		if (tolower(a[i]) != tolower(q[i]))
			return false;
	return true;
}

static void
addr_text(const struct sockaddr_storage *ss, char *buf, size_t cap)
{
	char a[INET6_ADDRSTRLEN] = "?";

	if (ss->ss_family == AF_INET6) {
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr,
		    a, sizeof(a));
		snprintf(buf, cap, "[%s]:%d", a, RULES_DNS_PORT);
	} else {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr,
		    a, sizeof(a));
		snprintf(buf, cap, "%s:%d", a, RULES_DNS_PORT);
	}
}

static void
validate_identity(const struct rules_spec *sp)
{
	uid_t uid = geteuid();
	gid_t gid = getegid();
	size_t i;

	if (uid == sp->proxy_uid)
		usage_err("--validate: running as the proxy UID %u, whose "
		    "traffic is never captured; run it as another UID",
		    (unsigned int)uid);
	for (i = 0; i < sp->nexclude_uid; i++)
		if (uid == sp->exclude_uid[i])
			usage_err("--validate: running as excluded UID %u; run "
			    "it as another UID", (unsigned int)uid);
	for (i = 0; i < sp->nexclude_gid; i++)
		if (gid == sp->exclude_gid[i])
			usage_err("--validate: running as excluded GID %u; run "
			    "it as another GID", (unsigned int)gid);
}

/*
 * Sends the probe to the TEST-NET address (nothing lives there, so only
 * the redirect to the proxy can answer) up to INIT_VALIDATE_PROBES times
 * within the timeout, and requires an answer with our ID and question.
 */
static int
do_validate(const struct init_conf *cf)
{
	uint8_t q[512], a[4096];
	char where[INET6_ADDRSTRLEN + 16];
	int64_t start, slot_end, left;
	int fd, probe, last_err = 0;
	struct pollfd pfd;
	const char *rn;
	uint16_t id;
	size_t qlen;
	ssize_t n;

	validate_identity(&cf->spec);
	addr_text(&cf->vaddr, where, sizeof(where));
	if (getrandom(&id, sizeof(id), 0) != (ssize_t)sizeof(id))
		id = (uint16_t)(getpid() ^ time(NULL));
	if ((qlen = probe_build(q, sizeof(q), id)) == 0)
		errx(INIT_EXIT_FAIL, "validate: cannot build the probe");
	if ((fd = socket(cf->vaddr.ss_family, SOCK_DGRAM | SOCK_CLOEXEC,
	    0)) == -1)
		err(INIT_EXIT_VALIDATE, "validate: socket");
	/* Connected: the kernel drops datagrams from anyone but where. */
	if (connect(fd, (const struct sockaddr *)&cf->vaddr,
	    cf->vaddr_len) == -1)
		err(INIT_EXIT_VALIDATE, "validate: capture does not work: "
		    "cannot reach %s", where);
	pfd.fd = fd;
	pfd.events = POLLIN;
	start = mono_ms();
	for (probe = 1; probe <= INIT_VALIDATE_PROBES; probe++) {
		slot_end = start + (int64_t)cf->vtimeout_ms * probe /
		    INIT_VALIDATE_PROBES;
		if (send(fd, q, qlen, 0) == -1)
			last_err = errno;
		for (;;) {
			left = slot_end - mono_ms();
			if (left <= 0)
				break;
			if (poll(&pfd, 1, (int)left) <= 0)
				continue;
			n = recv(fd, a, sizeof(a), 0);
			if (n == -1) {
				/* ICMP port unreachable: nobody on the port. */
				last_err = errno;
				continue;
			}
			if (!probe_matches(q, qlen, a, (size_t)n))
				continue;
			rn = rcode_name(a[3] & 0x0f);
			if (rn != NULL)
				printf("dotproxy-init: capture works: %s answered "
				    "by the proxy (rcode %s, %lld ms)\n", where,
				    rn, (long long)(mono_ms() - start));
			else
				printf("dotproxy-init: capture works: %s answered "
				    "by the proxy (rcode %u, %lld ms)\n", where,
				    a[3] & 0x0fu, (long long)(mono_ms() - start));
			close(fd);
			return INIT_EXIT_OK;
		}
	}
	close(fd);
	if (last_err == ECONNREFUSED)
		errx(INIT_EXIT_VALIDATE, "validate: capture does not work: %s "
		    "refused the probe (redirected, but nothing listens on port "
		    "%u?)", where, cf->spec.proxy_port);
	errx(INIT_EXIT_VALIDATE, "validate: capture does not work: no answer "
	    "from %s within %d ms (%d probes%s%s)", where, cf->vtimeout_ms,
	    INIT_VALIDATE_PROBES, last_err != 0 ? "; last error: " : "",
	    last_err != 0 ? strerror(last_err) : "");
}

int
main(int argc, char **argv)
{
	struct init_conf cf;
	enum init_mode mode = MODE_INSTALL;
	int m, nmodes = 0;

	/* --node-local*: the node's namespace, a mode with its own flags. */
	if (nodelocal_wanted(argc, argv))
		return nodelocal_main(argc, argv);
	memset(&cf, 0, sizeof(cf));
	parse_args(argc, argv, &cf);
	for (m = MODE_DRY_RUN; m <= MODE_VALIDATE; m++)
		if (cf.modes[m]) {
			mode = (enum init_mode)m;
			nmodes++;
		}
	if (nmodes > 1)
		usage_err("--dry-run, --check, --cleanup and --validate exclude "
		    "each other");
	cf.spec.ipv6 = cf.ipv6 == IPV6_ON ||
	    (cf.ipv6 == IPV6_AUTO && nl_ipv6_enabled());
	/* The nameservers the UDP marks name (see init/rules.c). */
	nl_read_nameservers(NL_RESOLV_CONF, &cf.spec);

	switch (mode) {
	case MODE_DRY_RUN:
		return do_dry_run(&cf);
	case MODE_CHECK:
		return do_check(&cf);
	case MODE_CLEANUP:
		return do_cleanup();
	case MODE_VALIDATE:
		return do_validate(&cf);
	case MODE_INSTALL:
		break;
	}
	hostnet_guard(&cf);
	return do_install(&cf);
}
