/*
 * The node installer of dotproxy-cni (`dotproxy-cni install`, run by a
 * DaemonSet): copies the plugin into the CNI bin directory, appends it to
 * the end of the node's first network configuration list, keeps it there
 * when the network plugin rewrites the file, and takes both away again on
 * SIGTERM. The JSON edits are pure functions, unit-tested without files.
 */
#ifndef INIT_CNI_INSTALL_H
#define INIT_CNI_INSTALL_H

#include <sys/types.h>

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#define CNI_INSTALL_BIN		"dotproxy-cni"	/* the plugin's file name */
#define CNI_INSTALL_TMP		".dotproxy-cni.tmp"	/* temp file prefix:
							 * libcni skips it */

/* Runs the installer; argv[0] is "install". Returns the exit status. */
int	cni_install_main(int argc, char **argv);

/*
 * Which file a runtime uses: the first name, in byte order, that ends in
 * .conf, .conflist or .json (libcni's rule; containerd and CRI-O load only
 * that one by default) and does not start with '.'. Returns its index in
 * names[0..n), or -1.
 */
ssize_t	cni_install_first(const char *const *names, size_t n);

/*
 * Our plugin entry: "type": "dotproxy-cni", the pod-annotations
 * capability, then the keys of config (an object, may be NULL). Returns a
 * new object owned by the caller, or NULL when config is no object or
 * names a different type.
 */
json_t	*cni_install_entry(json_t *config);

/*
 * A copy of the configuration list conf with every dotproxy-cni entry
 * removed and entry appended as the last plugin; everything else keeps
 * its order and values. Returns a new object owned by the caller, or NULL
 * when conf is not a list ("plugins" array).
 */
json_t	*cni_install_add(const json_t *conf, const json_t *entry);

/*
 * A copy of conf with every dotproxy-cni entry removed, or NULL when conf
 * is not a list.
 */
json_t	*cni_install_remove(const json_t *conf);

/* True when conf's last plugin equals entry and no other is ours. */
bool	cni_install_has(const json_t *conf, const json_t *entry);

#endif
