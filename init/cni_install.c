/*
 * The node installer of dotproxy-cni (see cni_install.h). Owns the files
 * it writes on the node: the plugin binary in the CNI bin directory and
 * its entry in the first network configuration list. Every write is a
 * temp file (a name libcni skips) renamed over the target, so a runtime
 * never reads half a file. It watches the configuration directory with
 * inotify and re-adds its entry whenever the network plugin rewrites the
 * file; on SIGTERM or SIGINT it removes the entry (restoring the exact
 * original bytes when nobody changed the file since) and the binary.
 * Single-threaded; blocks only in poll.
 */
#include "init/cni_install.h"

#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "init/cni_conf.h"

#define INST_MAX_FILES	1024	/* configuration files considered */
#define INST_FILE_MAX	(1u << 20)	/* bytes of one configuration file */
#define INST_ENV_PREFIX	"DOTPROXY_CNI_"

struct inst {
	const char	*bin_dir;	/* borrowed: argv/environment */
	const char	*conf_dir;	/* borrowed */
	const char	*source;	/* borrowed: the binary to copy */
	json_t		*entry;		/* owned: our plugin entry */
	bool		 once;		/* install, then exit */
	bool		 uninstall;	/* remove, then exit */
	char		 path[PATH_MAX];	/* the file we edited, "" = none */
	char		*orig;		/* owned: its bytes before our edit */
	size_t		 orig_len;
	char		*mine;		/* owned: the bytes we wrote */
	size_t		 mine_len;
	char		 last[512];	/* the last complaint, said once */
};

__attribute__((format(printf, 1, 2))) static void
say(const char *fmt, ...)
{
	va_list ap;

	fputs("dotproxy-cni install: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Says a complaint about the configuration once, not at every look. */
__attribute__((format(printf, 2, 3))) static void
complain(struct inst *in, const char *fmt, ...)
{
	char msg[sizeof(in->last)];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (strcmp(msg, in->last) == 0)
		return;
	memcpy(in->last, msg, sizeof(msg));
	say("%s", msg);
}

static bool
has_suffix(const char *s, const char *suf)
{
	size_t n = strlen(s), m = strlen(suf);

	return n > m && strcmp(s + n - m, suf) == 0;
}

ssize_t
cni_install_first(const char *const *names, size_t n)
{
	ssize_t best = -1;
	size_t i;

	for (i = 0; i < n; i++) {
		if (names[i][0] == '.' || !(has_suffix(names[i], ".conf") ||
		    has_suffix(names[i], ".conflist") ||
		    has_suffix(names[i], ".json")))
			continue;
		if (best < 0 || strcmp(names[i], names[best]) < 0)
			best = (ssize_t)i;
	}
	return best;
}

static bool
is_ours(const json_t *plugin)
{
	const char *t = json_string_value(json_object_get(plugin, "type"));

	return t != NULL && strcmp(t, CNI_PLUGIN_TYPE) == 0;
}

json_t *
cni_install_entry(json_t *config)
{
	const char *key;
	json_t *e, *v;

	if (config != NULL && !json_is_object(config))
		return NULL;
	if (config != NULL && json_object_get(config, "type") != NULL &&
	    !is_ours(config))
		return NULL;
	/* dns: the pod's nameservers, which the UDP marks name. */
	e = json_pack("{s:s, s:{s:b, s:b}}", "type", CNI_PLUGIN_TYPE,
	    "capabilities", CNI_CAP_ANNOTATIONS, 1, "dns", 1);
	if (e == NULL || config == NULL)
		return e;
	json_object_foreach(config, key, v)
		if (strcmp(key, "type") != 0 && strcmp(key, "capabilities") != 0)
			json_object_set(e, key, v);
	return e;
}

json_t *
cni_install_remove(const json_t *conf)
{
	json_t *out, *plugins, *kept, *p;
	size_t i;

	if (!json_is_object(conf) ||
	    !json_is_array(json_object_get(conf, "plugins")))
		return NULL;
	if ((out = json_deep_copy(conf)) == NULL)
		return NULL;
	plugins = json_object_get(out, "plugins");
	if ((kept = json_array()) == NULL) {
		json_decref(out);
		return NULL;
	}
	json_array_foreach(plugins, i, p)
		if (!is_ours(p))
			json_array_append(kept, p);
	/* Same key, same place in the object: only the array changes. */
	json_object_set_new(out, "plugins", kept);
	return out;
}

json_t *
cni_install_add(const json_t *conf, const json_t *entry)
{
	json_t *out;

	if ((out = cni_install_remove(conf)) == NULL)
		return NULL;
	json_array_append_new(json_object_get(out, "plugins"),
	    json_deep_copy(entry));
	return out;
}

bool
cni_install_has(const json_t *conf, const json_t *entry)
{
	const json_t *plugins = json_object_get(conf, "plugins");
	size_t i, n;

	if (!json_is_array(plugins) || (n = json_array_size(plugins)) == 0 ||
	    !json_equal(json_array_get(plugins, n - 1), entry))
		return false;
	for (i = 0; i + 1 < n; i++)
		if (is_ours(json_array_get(plugins, i)))
			return false;
	return true;
}

/* ---- files ---- */

static int
read_file(const char *path, char **out, size_t *len)
{
	size_t cap = 64 * 1024, n = 0;
	char *buf, *nb;
	ssize_t r;
	int fd, e;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -errno;
	if ((buf = malloc(cap)) == NULL) {
		close(fd);
		return -ENOMEM;
	}
	for (;;) {
		if (n == cap) {
			if (cap >= INST_FILE_MAX) {
				e = EFBIG;
				goto fail;
			}
			cap *= 2;
			if ((nb = realloc(buf, cap)) == NULL) {
				e = ENOMEM;
				goto fail;
			}
			buf = nb;
		}
		r = read(fd, buf + n, cap - n);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			e = errno;
			goto fail;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	*out = buf;
	*len = n;
	return 0;
fail:
	free(buf);
	close(fd);
	return -e;
}

/*
 * Writes len bytes to dir/name through a temp file in dir renamed over
 * it, with mode. Returns 0 or -errno.
 */
static int
write_atomic(const char *dir, const char *name, const void *data,
    size_t len, mode_t mode)
{
	char tmp[PATH_MAX], dst[PATH_MAX];
	const char *p = data;
	ssize_t w;
	int fd, e = 0;

	if (snprintf(tmp, sizeof(tmp), "%s/%s.%ld", dir, CNI_INSTALL_TMP,
	    (long)getpid()) >= (int)sizeof(tmp) ||
	    snprintf(dst, sizeof(dst), "%s/%s", dir, name) >= (int)sizeof(dst))
		return -ENAMETOOLONG;
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    mode)) == -1)
		return -errno;
	while (len > 0) {
		w = write(fd, p, len);
		if (w == -1 && errno == EINTR)
			continue;
		if (w == -1) {
			e = errno;
			break;
		}
		p += w;
		len -= (size_t)w;
	}
	if (e == 0 && fchmod(fd, mode) == -1)
		e = errno;
	if (e == 0 && fsync(fd) == -1)
		e = errno;
	if (close(fd) == -1 && e == 0)
		e = errno;
	if (e == 0 && rename(tmp, dst) == -1)
		e = errno;
	if (e != 0)
		(void)unlink(tmp);
	return -e;
}

/* Copies the plugin binary into the bin directory (atomically). */
static int
copy_binary(const struct inst *in)
{
	char *data;
	size_t len;
	int rc;

	if ((rc = read_file(in->source, &data, &len)) != 0 &&
	    rc != -EFBIG) {
		say("cannot read %s: %s", in->source, strerror(-rc));
		return rc;
	}
	if (rc == -EFBIG) {
		say("%s is larger than %u bytes", in->source, INST_FILE_MAX);
		return rc;
	}
	rc = write_atomic(in->bin_dir, CNI_INSTALL_BIN, data, len, 0755);
	free(data);
	if (rc != 0)
		say("cannot write %s/%s: %s", in->bin_dir, CNI_INSTALL_BIN,
		    strerror(-rc));
	return rc;
}

/* The name of the first configuration file in the directory, or "". */
static int
first_conf(const char *dir, char *name, size_t cap)
{
	const char *names[INST_MAX_FILES];
	char *copies[INST_MAX_FILES];
	struct dirent *de;
	size_t n = 0, i;
	ssize_t k;
	DIR *d;

	name[0] = '\0';
	if ((d = opendir(dir)) == NULL)
		return -errno;
	while ((de = readdir(d)) != NULL && n < INST_MAX_FILES) {
		if ((copies[n] = strdup(de->d_name)) == NULL)
			break;
		names[n] = copies[n];
		n++;
	}
	closedir(d);
	if ((k = cni_install_first(names, n)) >= 0 &&
	    strlen(names[k]) < cap)
		memcpy(name, names[k], strlen(names[k]) + 1);
	for (i = 0; i < n; i++)
		free(copies[i]);
	return 0;
}

static char *
render(const json_t *conf, size_t *len)
{
	char *s, *t;

	if ((s = json_dumps(conf, JSON_INDENT(2) | JSON_PRESERVE_ORDER)) ==
	    NULL)
		return NULL;
	*len = strlen(s);
	if ((t = realloc(s, *len + 2)) == NULL) {
		free(s);
		return NULL;
	}
	t[(*len)++] = '\n';
	t[*len] = '\0';
	return t;
}

static int	release_file(struct inst *);

/*
 * Makes sure the first configuration list ends with our entry. Returns 0
 * (also when there is no file yet: the watch brings us back), or -errno.
 */
static int
ensure(struct inst *in)
{
	char name[NAME_MAX + 1], path[PATH_MAX];
	char *data = NULL, *out = NULL;
	json_t *conf = NULL, *next = NULL;
	json_error_t jerr;
	struct stat st;
	size_t len, olen;
	int rc = 0;

	if (snprintf(path, sizeof(path), "%s/%s", in->bin_dir,
	    CNI_INSTALL_BIN) < (int)sizeof(path) && stat(path, &st) == -1 &&
	    (rc = copy_binary(in)) != 0)
		return rc;
	if ((rc = first_conf(in->conf_dir, name, sizeof(name))) != 0) {
		say("cannot list %s: %s", in->conf_dir, strerror(-rc));
		return rc;
	}
	if (name[0] == '\0')
		return 0;
	if (snprintf(path, sizeof(path), "%s/%s", in->conf_dir, name) >=
	    (int)sizeof(path))
		return -ENAMETOOLONG;
	/* Another file comes first now: the runtime no longer reads the old
	 * one, so it gets its own content back. */
	if (in->path[0] != '\0' && strcmp(in->path, path) != 0)
		(void)release_file(in);
	if ((rc = read_file(path, &data, &len)) != 0) {
		if (rc != -ENOENT)	/* renamed away meanwhile: next event */
			say("cannot read %s: %s", path, strerror(-rc));
		return rc == -ENOENT ? 0 : rc;
	}
	if (stat(path, &st) == -1)
		st.st_mode = 0644;
	if ((conf = json_loadb(data, len, 0, &jerr)) == NULL) {
		/* Half written by someone without a rename: wait for more. */
		complain(in, "%s is not valid JSON yet (%s); waiting", path,
		    jerr.text);
		goto out;
	}
	if (!json_is_array(json_object_get(conf, "plugins"))) {
		complain(in, "%s is a single-plugin configuration, not a list: "
		    "not supported (convert it to a .conflist)", path);
		rc = -EINVAL;
		goto out;
	}
	in->last[0] = '\0';
	if (cni_install_has(conf, in->entry))
		goto out;
	if ((next = cni_install_add(conf, in->entry)) == NULL ||
	    (out = render(next, &olen)) == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	if ((rc = write_atomic(in->conf_dir, name, out, olen,
	    st.st_mode & 07777)) != 0) {
		say("cannot write %s: %s", path, strerror(-rc));
		goto out;
	}
	/*
	 * Remember the file as it was, for an exact restore. When the
	 * network plugin rewrote it, its new text is the original now. A
	 * file that already held an entry of ours (an earlier run, other
	 * settings) has no clean original: it is undone through the JSON.
	 */
	free(in->orig);
	in->orig = NULL;
	in->orig_len = 0;
	json_decref(next);
	if ((next = cni_install_remove(conf)) != NULL &&
	    json_equal(next, conf)) {
		in->orig = data;
		in->orig_len = len;
		data = NULL;
	}
	memcpy(in->path, path, strlen(path) + 1);
	free(in->mine);
	in->mine = out;
	in->mine_len = olen;
	out = NULL;
	say("added %s to the end of %s", CNI_PLUGIN_TYPE, path);
out:
	free(out);
	json_decref(next);
	json_decref(conf);
	free(data);
	return rc;
}

/*
 * Takes our entry out of the file we edited (or, when this run edited
 * none, the first one) and forgets it. Returns 0 or -errno.
 */
static int
release_file(struct inst *in)
{
	char *data = NULL, *out = NULL, *slash;
	json_t *conf = NULL, *next = NULL;
	bool changed = false;
	struct stat st;
	size_t len, olen;
	int rc = 0;

	if (in->path[0] == '\0') {
		char name[NAME_MAX + 1];

		if (first_conf(in->conf_dir, name, sizeof(name)) == 0 &&
		    name[0] != '\0')
			snprintf(in->path, sizeof(in->path), "%s/%s",
			    in->conf_dir, name);
	}
	if (in->path[0] != '\0' && read_file(in->path, &data, &len) == 0) {
		if (stat(in->path, &st) == -1)
			st.st_mode = 0644;
		slash = strrchr(in->path, '/');
		if (in->mine != NULL && in->orig != NULL &&
		    len == in->mine_len && memcmp(data, in->mine, len) == 0) {
			/* Nobody touched it since: the original bytes back. */
			rc = write_atomic(in->conf_dir, slash + 1, in->orig,
			    in->orig_len, st.st_mode & 07777);
			changed = true;
		} else if ((conf = json_loadb(data, len, 0, NULL)) != NULL &&
		    (next = cni_install_remove(conf)) != NULL &&
		    !json_equal(conf, next)) {
			if ((out = render(next, &olen)) == NULL)
				rc = -ENOMEM;
			else
				rc = write_atomic(in->conf_dir, slash + 1, out,
				    olen, st.st_mode & 07777);
			changed = true;
		}
		if (rc != 0)
			say("cannot restore %s: %s", in->path, strerror(-rc));
		else if (changed)
			say("removed %s from %s", CNI_PLUGIN_TYPE, in->path);
	}
	in->path[0] = '\0';
	free(in->orig);
	free(in->mine);
	in->orig = in->mine = NULL;
	in->orig_len = in->mine_len = 0;
	free(out);
	json_decref(next);
	json_decref(conf);
	free(data);
	return rc;
}

/* Takes our entry out of the configuration, and the binary away. */
static int
remove_all(struct inst *in)
{
	char path[PATH_MAX];
	int rc, e;

	rc = release_file(in);
	if (snprintf(path, sizeof(path), "%s/%s", in->bin_dir,
	    CNI_INSTALL_BIN) < (int)sizeof(path) && unlink(path) == -1 &&
	    errno != ENOENT) {
		e = errno;
		say("cannot remove %s: %s", path, strerror(e));
		rc = -e;
	}
	return rc;
}

/* Watches the configuration directory until SIGTERM or SIGINT. */
static int
watch(struct inst *in)
{
	char evbuf[16 * 1024];
	struct signalfd_siginfo si;
	struct pollfd pfd[2];
	sigset_t set;
	int ifd, sfd, rc = 0;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	if (sigprocmask(SIG_BLOCK, &set, NULL) == -1 ||
	    (sfd = signalfd(-1, &set, SFD_CLOEXEC)) == -1) {
		say("signalfd: %s", strerror(errno));
		return -errno;
	}
	if ((ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK)) == -1 ||
	    inotify_add_watch(ifd, in->conf_dir, IN_CLOSE_WRITE | IN_MOVED_TO |
	    IN_MOVED_FROM | IN_CREATE | IN_DELETE) == -1) {
		say("cannot watch %s: %s", in->conf_dir, strerror(errno));
		close(sfd);
		return -errno;
	}
	/* After the watch exists: nothing written before it is missed. */
	(void)ensure(in);
	say("watching %s", in->conf_dir);
	pfd[0].fd = sfd;
	pfd[0].events = POLLIN;
	pfd[1].fd = ifd;
	pfd[1].events = POLLIN;
	for (;;) {
		/* The timeout also brings back a binary someone deleted. */
		if (poll(pfd, 2, 5000) == -1 && errno != EINTR) {
			rc = -errno;
			break;
		}
		if (pfd[0].revents & POLLIN) {
			if (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
				say("signal %u: uninstalling", si.ssi_signo);
			break;
		}
		/* Drain the events; one look at the directory serves them all. */
		while (read(ifd, evbuf, sizeof(evbuf)) > 0)
			;
		(void)ensure(in);
	}
	close(ifd);
	close(sfd);
	return rc;
}

static const char install_usage[] =
"usage: dotproxy-cni install [options]\n"
"Copies the plugin into the CNI bin directory, appends it to the end of\n"
"the first network configuration list (by name) in the configuration\n"
"directory, keeps it there when that file is rewritten, and removes both\n"
"again on SIGTERM or SIGINT.\n"
"\n"
"  --cni-bin-dir DIR     where the runtime finds plugins\n"
"                        (default /host/opt/cni/bin)\n"
"  --cni-conf-dir DIR    the runtime's configuration directory\n"
"                        (default /host/etc/cni/net.d)\n"
"  --plugin-config JSON  the plugin's keys, e.g. {\"proxyPort\":15353,\n"
"                        \"namespaces\":[\"apps\"]} (default {})\n"
"  --source PATH         the binary to copy (default: this one)\n"
"  --once                install, then exit instead of watching\n"
"  --uninstall           remove the entry and the binary, then exit\n"
"\n"
"Every option also reads DOTPROXY_CNI_<NAME> (upper case, '-' -> '_').\n"
"Exit status: 0 ok; 1 failure; 2 bad usage.\n";

/* A flag's value, else its DOTPROXY_CNI_ twin, else dflt. */
static const char *
opt_or_env(const char *flag_val, const char *env, const char *dflt)
{
	const char *v;

	if (flag_val != NULL)
		return flag_val;
	if ((v = getenv(env)) != NULL && v[0] != '\0')
		return v;
	return dflt;
}

static bool
env_switch(const char *env)
{
	const char *v = getenv(env);

	return v != NULL && (strcmp(v, "1") == 0 || strcmp(v, "true") == 0);
}

/* The entry must be a configuration the plugin accepts: say so now,
 * not at every pod start. */
static bool
entry_valid(const json_t *entry)
{
	struct cni_conf conf;
	struct cni_err err;
	json_t *doc;
	char *text;
	int rc;

	if ((doc = json_deep_copy(entry)) == NULL)
		return false;
	json_object_set_new(doc, "cniVersion", json_string("1.0.0"));
	text = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	if (text == NULL)
		return false;
	rc = cni_conf_parse(text, strlen(text), &conf, &err);
	free(text);
	if (rc != 0) {
		say("--plugin-config: %s", err.msg);
		return false;
	}
	cni_conf_fini(&conf);
	return true;
}

int
cni_install_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "cni-bin-dir", required_argument, NULL, 'b' },
		{ "cni-conf-dir", required_argument, NULL, 'c' },
		{ "plugin-config", required_argument, NULL, 'p' },
		{ "source", required_argument, NULL, 's' },
		{ "once", no_argument, NULL, 'o' },
		{ "uninstall", no_argument, NULL, 'u' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *fb = NULL, *fc = NULL, *fp = NULL, *fs = NULL, *pc;
	struct inst in;
	json_error_t jerr;
	json_t *cfg;
	int c, rc;

	memset(&in, 0, sizeof(in));
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'b': fb = optarg; break;
		case 'c': fc = optarg; break;
		case 'p': fp = optarg; break;
		case 's': fs = optarg; break;
		case 'o': in.once = true; break;
		case 'u': in.uninstall = true; break;
		case 'h':
			fputs(install_usage, stdout);
			return 0;
		default:
			say("unknown option or missing value '%s' (see --help)",
			    argv[optind - 1]);
			return 2;
		}
	}
	if (optind < argc) {
		say("unexpected argument '%s' (see --help)", argv[optind]);
		return 2;
	}
	in.bin_dir = opt_or_env(fb, INST_ENV_PREFIX "CNI_BIN_DIR",
	    "/host/opt/cni/bin");
	in.conf_dir = opt_or_env(fc, INST_ENV_PREFIX "CNI_CONF_DIR",
	    "/host/etc/cni/net.d");
	in.source = opt_or_env(fs, INST_ENV_PREFIX "SOURCE", "/proc/self/exe");
	pc = opt_or_env(fp, INST_ENV_PREFIX "PLUGIN_CONFIG", "{}");
	in.once = in.once || env_switch(INST_ENV_PREFIX "ONCE");
	in.uninstall = in.uninstall || env_switch(INST_ENV_PREFIX "UNINSTALL");
	if ((cfg = json_loads(pc, JSON_REJECT_DUPLICATES, &jerr)) == NULL) {
		say("--plugin-config: not JSON: %s", jerr.text);
		return 2;
	}
	in.entry = cni_install_entry(cfg);
	json_decref(cfg);
	if (in.entry == NULL) {
		say("--plugin-config: want a JSON object of the plugin's keys");
		return 2;
	}
	if (!entry_valid(in.entry)) {
		json_decref(in.entry);
		return 2;
	}
	if (in.uninstall)
		rc = remove_all(&in);
	else if (in.once) {
		if ((rc = copy_binary(&in)) == 0)
			rc = ensure(&in);
	} else if ((rc = copy_binary(&in)) == 0 && (rc = watch(&in)) == 0)
		rc = remove_all(&in);
	else
		(void)remove_all(&in);
	json_decref(in.entry);
	free(in.orig);
	free(in.mine);
	return rc == 0 ? 0 : 1;
}
