/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * pmemheal map: print the owners of device ranges.
 *
 * Ranges come from the command line ("SECTOR[+COUNT]") or, for "-", from
 * standard input in the format of /sys/block/<dev>/badblocks.  Everything
 * is validated before the device is touched, so a typo never costs a walk.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "cli.h"
#include "mapper-json.h"
#include "mapper.h"

static void help(FILE *f)
{
	fprintf(f,
		"Usage: %s map [--json] [--bytes] [--method auto|getfsmap|fiemap] DEVICE RANGE...\n\n"
		"Name every owner of each RANGE of DEVICE: files (all their paths), filesystem\n"
		"metadata, free space, or the device itself when nothing is mounted.\n\n"
		"RANGE is SECTOR[+COUNT] in 512-byte sectors (COUNT defaults to 1), or '-' to\n"
		"read \"SECTOR COUNT\" lines from standard input, as in /sys/block/*/badblocks.\n\n"
		"  --json          print JSON\n"
		"  --bytes         ranges are in bytes (rounded out to whole sectors)\n"
		"  --method M      auto (default), getfsmap or fiemap\n"
		"  --threads N     threads for directory walks (default: 2 per CPU)\n",
		program_name);
}

static int add_text_range(struct ph_ranges *l, const char *text, bool bytes)
{
	struct ph_range r;
	int k;

	k = ph_range_parse(text, bytes, &r);
	if (k == -ERANGE) {
		cli_error("range '%s' does not fit in 64 bits", text);
		return EXIT_USAGE;
	}
	if (k < 0) {
		cli_error("invalid range '%s': expected %s[+COUNT] with COUNT at least 1", text,
			  bytes ? "OFFSET" : "SECTOR");
		return EXIT_USAGE;
	}
	if (ph_ranges_add(l, r.start, r.count) < 0) {
		cli_error("out of memory");
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

static int add_stdin_ranges(struct ph_ranges *l, bool bytes)
{
	struct ph_parse_error perr = { 0 };
	int k;

	k = ph_badblocks_parse(stdin, bytes, l, &perr);
	if (k == -ENOMEM) {
		cli_error("out of memory");
		return EXIT_FAIL;
	}
	if (k == -EIO) {
		cli_error("<stdin>: read error");
		return EXIT_FAIL;
	}
	if (k < 0) {
		cli_error("<stdin>:%u: %s", perr.line, perr.reason);
		return EXIT_USAGE;
	}
	return EXIT_OK;
}

static void print_owner(const struct ph_owner *o)
{
	char where[64];

	snprintf(where, sizeof(where), "%" PRIu64 "+%" PRIu64, o->sector, o->count);
	switch (o->type) {
	case PH_OWNER_FILE:
		printf("    %-16s %-9s %s", where, o->directory ? "directory" : o->symlink ? "symlink" : "file",
		       o->n_paths ? cli_text(o->paths[0]) : "(no path found)");
		printf("  %s%" PRIu64 ", %" PRIu64 " bytes, inode %" PRIu64 "%s%s\n",
		       o->attr_fork ? "xattr offset " : "offset ", o->offset, o->length, o->inode,
		       o->shared ? ", shared" : "", o->unwritten ? ", unwritten" : "");
		for (size_t k = 1; k < o->n_paths; k++)
			printf("    %-16s %-9s %s\n", "", "", cli_text(o->paths[k]));
		break;
	case PH_OWNER_METADATA:
		printf("    %-16s %-9s %s", where, "metadata", cli_text(o->what));
		if (o->inode)
			printf(" of inode %" PRIu64, o->inode);
		printf("\n");
		break;
	case PH_OWNER_FREE:
		printf("    %-16s %s\n", where, "free");
		break;
	case PH_OWNER_UNMOUNTED:
		printf("    %-16s %-9s %s is not mounted\n", where, "unmounted",
		       o->fs ? cli_text(ph_map_fs_get_node(o->fs)) : "device");
		break;
	case PH_OWNER_UNKNOWN:
		printf("    %-16s %-9s %s\n", where, "unknown", cli_text(o->reason));
		break;
	}
}

static int path_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void print_human(const struct ph_mapper *m, const struct ph_map_result *res, size_t n)
{
	const struct ph_blkdev *b = ph_mapper_get_blkdev(m);
	_cleanup_free_ const char **files = NULL;
	size_t nfiles = 0, cap = 0;

	printf("  device: %s (%" PRIu64 " sectors)\n", cli_text(b->path), b->size);
	for (size_t i = 0; i < ph_mapper_n_fs(m); i++) {
		const struct ph_map_fs *fs = ph_mapper_get_fs(m, i);
		uint64_t s, c;

		ph_map_fs_get_extent(fs, &s, &c);
		if (b->partitioned)
			printf("    part: %s (sectors %" PRIu64 "+%" PRIu64 ")\n", cli_text(ph_map_fs_get_node(fs)), s, c);
		if (!ph_map_fs_get_mount(fs))
			printf("   mount: none\n");
		else
			printf("   mount: %s (%s, %s%s%s)\n", cli_text(ph_map_fs_get_mount(fs)),
			       cli_text(ph_map_fs_get_fstype(fs)),
			       ph_map_method_to_string(ph_map_fs_get_method(fs)),
			       ph_map_fs_get_paths_method(fs) ? ", paths by " : "",
			       ph_map_fs_get_paths_method(fs) ? ph_map_fs_get_paths_method(fs) : "");
	}
	for (size_t i = 0; i < n; i++) {
		printf("\n  range %" PRIu64 "+%" PRIu64 " (bytes %" PRIu64 "-%" PRIu64 "):\n",
		       res[i].range.start, res[i].range.count, res[i].range.start * 512,
		       (res[i].range.start + res[i].range.count) * 512 - 1);
		printf("    %-16s %-9s %s\n", "SECTORS", "OWNER", "DETAIL");
		for (size_t k = 0; k < res[i].n_owners; k++) {
			const struct ph_owner *o = &res[i].owners[k];

			print_owner(o);
			for (size_t p = 0; o->type == PH_OWNER_FILE && p < o->n_paths; p++) {
				if (nfiles == cap) {
					const char **v;

					cap = cap ? cap * 2 : 16;
					v = reallocarray(files, cap, sizeof(*v));
					if (!v)
						return;
					files = v;
				}
				files[nfiles++] = o->paths[p];
			}
		}
	}
	if (nfiles == 0)
		return;
	qsort(files, nfiles, sizeof(*files), path_cmp);
	printf("\n  files in these ranges:\n\n");
	for (size_t i = 0; i < nfiles; i++)
		if (i == 0 || strcmp(files[i], files[i - 1]) != 0)
			printf("        %s\n", cli_text(files[i]));
}

struct map_args {
	const char *device;
	enum ph_map_method method;
	bool json, bytes;
	unsigned threads;
};

/* Options into *a: EXIT_OK to go on, -1 after --help, or an exit status. */
static int map_parse_options(int argc, char *argv[], struct map_args *a)
{
	static const struct option options[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "json", no_argument, NULL, 'j' },
		{ "bytes", no_argument, NULL, 'b' },
		{ "method", required_argument, NULL, 'm' },
		{ "threads", required_argument, NULL, 't' },
		{},
	};
	int c;

	*a = (struct map_args){ .method = PH_MAP_AUTO };
	optind = 0;
	while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
		switch (c) {
		case 'h':
			help(stdout);
			return -1;
		case 'j':
			a->json = true;
			break;
		case 'b':
			a->bytes = true;
			break;
		case 'm':
			if (ph_map_method_from_string(optarg, &a->method) < 0) {
				cli_error("invalid --method '%s': expected auto, getfsmap or fiemap", optarg);
				return EXIT_USAGE;
			}
			break;
		case 't': {
			uint64_t v;

			if (ph_parse_u64(optarg, &v) < 0 || v < 1 || v > 256) {
				cli_error("invalid --threads '%s': expected 1 to 256", optarg);
				return EXIT_USAGE;
			}
			a->threads = (unsigned)v;
			break;
		}
		default:
			return EXIT_USAGE;
		}
	}
	if (argc - optind < 2) {
		cli_error("map needs a DEVICE and at least one RANGE; see '%s map --help'", program_name);
		return EXIT_USAGE;
	}
	a->device = argv[optind++];
	return EXIT_OK;
}

/* The RANGE arguments ("-": standard input, once) into ranges. */
static int map_parse_ranges(int argc, char *argv[], bool bytes, struct ph_ranges *ranges)
{
	bool seen_stdin = false;
	int k;

	for (; optind < argc; optind++) {
		if (strcmp(argv[optind], "-") == 0) {
			if (seen_stdin) {
				cli_error("'-' given twice");
				return EXIT_USAGE;
			}
			seen_stdin = true;
			k = add_stdin_ranges(ranges, bytes);
		} else
			k = add_text_range(ranges, argv[optind], bytes);
		if (k != EXIT_OK)
			return k;
	}
	return EXIT_OK;
}

/* The mapping, as text or JSON; EXIT_OK or EXIT_FAIL. */
static int map_print(const struct ph_mapper *m, const struct ph_map_result *res, size_t n, bool json)
{
	if (json) {
		struct json_object *j;

		if (ph_map_to_json(m, res, n, &j) < 0) {
			cli_error("out of memory");
			return EXIT_FAIL;
		}
		puts(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(j);
	} else
		print_human(m, res, n);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		cli_error("cannot write output: %m");
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

int verb_map(int argc, char *argv[])
{
	_cleanup_(ph_ctx_unrefp) struct ph_ctx *ctx = NULL;
	_cleanup_(ph_mapper_freep) struct ph_mapper *m = NULL;
	struct ph_map_result *res = NULL;
	struct ph_ranges ranges = { 0 };
	struct ph_error err = { { 0 } };
	struct map_args a;
	int k, ret = EXIT_FAIL;

	k = map_parse_options(argc, argv, &a);
	if (k != EXIT_OK)
		return k < 0 ? EXIT_OK : k;
	ret = map_parse_ranges(argc, argv, a.bytes, &ranges);
	if (ret != EXIT_OK)
		goto out;
	ret = EXIT_FAIL;
	if (cli_ctx_new(&ctx) < 0) {
		cli_error("out of memory");
		goto out;
	}
	k = ph_mapper_new(ctx, a.device, a.method, &m, &err);
	if (k < 0) {
		cli_error("%s", err.message[0] ? err.message : strerror(-k));
		ret = k == -ENOENT ? EXIT_NO_DEVICE : k == -ENOTBLK ? EXIT_NOT_BLOCK :
		      k == -EPROTONOSUPPORT ? EXIT_UNSUPPORTED :
		      (k == -EACCES || k == -EPERM) ? EXIT_ACCESS : EXIT_FAIL;
		goto out;
	}
	if (a.threads)
		ph_mapper_set_threads(m, a.threads);
	k = ph_mapper_map(m, ranges.v, ranges.n, &res, &err);
	if (k < 0) {
		cli_error("%s", err.message);
		ret = k == -ERANGE ? EXIT_RANGE : (k == -EACCES || k == -EPERM) ? EXIT_ACCESS : EXIT_FAIL;
		goto out;
	}
	for (size_t i = 0; i < ph_mapper_n_fs(m); i++)
		if (ph_map_fs_get_notice(ph_mapper_get_fs(m, i)))
			cli_notice("%s", ph_map_fs_get_notice(ph_mapper_get_fs(m, i)));
	ret = map_print(m, res, ranges.n, a.json);
	if (ret == EXIT_OK && !ph_mapper_is_mounted(m)) {
		cli_error("%s: no filesystem is mounted; the ranges belong to the device", a.device);
		ret = EXIT_UNMOUNTED;
	}
out:
	ph_map_results_free(res, ranges.n);
	ph_ranges_clear(&ranges);
	return ret;
}
