/*
 * Replays fuzz inputs without libFuzzer: each argument is a file, or a
 * directory whose regular files (not recursive) are read one by one and
 * handed to LLVMFuzzerTestOneInput. Used by tests/run.sh to keep the
 * corpus (seeds and past crashers) passing under the normal build.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define REPLAY_MAX	(1024 * 1024)	/* larger inputs are an error */

/* Runs one file; returns 0, or -1 if it cannot be read. */
static int
replay_file(const char *path)
{
	FILE *f;
	uint8_t *data;
	size_t n;
	int rc = -1;

	if ((f = fopen(path, "rb")) == NULL) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if ((data = malloc(REPLAY_MAX)) == NULL)
		goto out;
	n = fread(data, 1, REPLAY_MAX, f);
	if (ferror(f) || !feof(f)) {
		fprintf(stderr, "replay: %s: read error or too big\n", path);
		goto out;
	}
	/* An exact-size copy, so ASan sees reads past the input. */
	{
		uint8_t *exact = malloc(n > 0 ? n : 1);

		if (exact == NULL)
			goto out;
		memcpy(exact, data, n);
		LLVMFuzzerTestOneInput(exact, n);
		free(exact);
	}
	rc = 0;
out:
	free(data);
	fclose(f);
	return rc;
}

/* Runs every regular file in dir; returns the count or -1. */
static int
replay_dir(const char *dir)
{
	DIR *d;
	struct dirent *de;
	struct stat st;
	char path[4096];
	int count = 0;

	if ((d = opendir(dir)) == NULL) {
		fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) >=
		    (int)sizeof(path))
			continue;
		if (stat(path, &st) == -1 || !S_ISREG(st.st_mode))
			continue;
		if (replay_file(path) != 0) {
			count = -1;
			break;
		}
		count++;
	}
	closedir(d);
	return count;
}

int
main(int argc, char *argv[])
{
	struct stat st;
	int i, n, total = 0;

	for (i = 1; i < argc; i++) {
		if (stat(argv[i], &st) == -1) {
			fprintf(stderr, "replay: %s: %s\n", argv[i],
			    strerror(errno));
			return 1;
		}
		if (S_ISDIR(st.st_mode))
			n = replay_dir(argv[i]);
		else
			n = replay_file(argv[i]) == 0 ? 1 : -1;
		if (n < 0)
			return 1;
		total += n;
	}
	printf("replay: %d inputs ran\n", total);
	return 0;
}
