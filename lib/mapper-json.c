/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * JSON for mapper results.  Every owner carries "type", "sector" and
 * "count" (its exact sub-range of the device); the other keys depend on the
 * type.  Numbers are JSON integers (int64 in json-c; sector numbers and byte
 * offsets of real devices fit).
 */
#include <errno.h>

#include "escape.h"
#include "mapper-fiemap.h"
#include "mapper-json.h"

#define J_ADD(obj, key, val)                                            \
	do {                                                            \
		struct json_object *_v_ = (val);                        \
		if (json_object_object_add((obj), (key), _v_) < 0) {    \
			json_object_put(_v_);                           \
			goto oom;                                       \
		}                                                       \
	} while (0)

static struct json_object *jstr(const char *s)
{
	return s ? ph_json_string(s) : NULL;
}

static struct json_object *jint(uint64_t v)
{
	return json_object_new_int64((int64_t)v);
}

_public_ int ph_owner_to_json(const struct ph_owner *o, struct json_object **ret)
{
	struct json_object *j = json_object_new_object(), *paths;

	if (!j)
		return -ENOMEM;
	J_ADD(j, "type", jstr(ph_owner_type_to_string(o->type)));
	J_ADD(j, "sector", jint(o->sector));
	J_ADD(j, "count", jint(o->count));
	switch (o->type) {
	case PH_OWNER_FILE:
		paths = json_object_new_array();
		if (!paths)
			goto oom;
		for (size_t k = 0; k < o->n_paths; k++)
			if (json_object_array_add(paths, jstr(o->paths[k])) < 0) {
				json_object_put(paths);
				goto oom;
			}
		J_ADD(j, "paths", paths);
		J_ADD(j, "inode", jint(o->inode));
		J_ADD(j, "offset", jint(o->offset));
		J_ADD(j, "length", jint(o->length));
		J_ADD(j, "shared", json_object_new_boolean(o->shared));
		J_ADD(j, "unwritten", json_object_new_boolean(o->unwritten));
		J_ADD(j, "fork", jstr(o->attr_fork ? "attr" : "data"));
		J_ADD(j, "kind", jstr(o->directory ? "directory" : o->symlink ? "symlink" : "file"));
		break;
	case PH_OWNER_METADATA:
		J_ADD(j, "what", jstr(o->what));
		if (o->inode)
			J_ADD(j, "inode", jint(o->inode));
		break;
	case PH_OWNER_UNMOUNTED:
		if (o->fs)
			J_ADD(j, "device", jstr(ph_map_fs_get_node(o->fs)));
		break;
	case PH_OWNER_UNKNOWN:
		J_ADD(j, "reason", jstr(o->reason));
		break;
	case PH_OWNER_FREE:
		break;
	}
	if (o->fs && ph_map_fs_get_mount(o->fs))
		J_ADD(j, "mount", jstr(ph_map_fs_get_mount(o->fs)));
	*ret = j;
	return 0;
oom:
	json_object_put(j);
	return -ENOMEM;
}

static int fs_to_json(const struct ph_map_fs *fs, struct json_object **ret)
{
	struct json_object *j = json_object_new_object();
	const struct ph_findex_stats *st = ph_map_fs_get_index_stats(fs);
	uint64_t start, count;

	if (!j)
		return -ENOMEM;
	ph_map_fs_get_extent(fs, &start, &count);
	J_ADD(j, "device", jstr(ph_map_fs_get_node(fs)));
	J_ADD(j, "start", jint(start));
	J_ADD(j, "count", jint(count));
	J_ADD(j, "mount", jstr(ph_map_fs_get_mount(fs)));
	J_ADD(j, "fstype", jstr(ph_map_fs_get_fstype(fs)));
	J_ADD(j, "method", ph_map_fs_get_method(fs) == PH_MAP_NONE ? NULL :
			   jstr(ph_map_method_to_string(ph_map_fs_get_method(fs))));
	J_ADD(j, "paths_method", jstr(ph_map_fs_get_paths_method(fs)));
	if (ph_map_fs_get_notice(fs))
		J_ADD(j, "notice", jstr(ph_map_fs_get_notice(fs)));
	if (st) {
		struct json_object *idx = json_object_new_object();

		if (!idx)
			goto oom;
		J_ADD(j, "index", idx);
		J_ADD(idx, "inodes", jint(st->inodes));
		J_ADD(idx, "extents", jint(st->extents));
		J_ADD(idx, "unreadable_files", jint(st->failed));
		J_ADD(idx, "unreadable_dirs", jint(st->walk.unreadable));
	}
	*ret = j;
	return 0;
oom:
	json_object_put(j);
	return -ENOMEM;
}

_public_ int ph_map_to_json(const struct ph_mapper *m, const struct ph_map_result *res, size_t n,
			    struct json_object **ret)
{
	struct json_object *j = json_object_new_object(), *fss, *ranges;
	const struct ph_blkdev *b = ph_mapper_get_blkdev(m);
	const struct ph_map_fs *only = ph_mapper_n_fs(m) == 1 ? ph_mapper_get_fs(m, 0) : NULL;
	int r;

	if (!j)
		return -ENOMEM;
	J_ADD(j, "device", jstr(b->path));
	J_ADD(j, "sectors", jint(b->size));
	J_ADD(j, "mount", only ? jstr(ph_map_fs_get_mount(only)) : NULL);
	J_ADD(j, "fstype", only ? jstr(ph_map_fs_get_fstype(only)) : NULL);
	J_ADD(j, "method", only && ph_map_fs_get_method(only) != PH_MAP_NONE ?
			   jstr(ph_map_method_to_string(ph_map_fs_get_method(only))) : NULL);

	fss = json_object_new_array();
	if (!fss)
		goto oom;
	J_ADD(j, "filesystems", fss);
	for (size_t i = 0; i < ph_mapper_n_fs(m); i++) {
		struct json_object *f;

		r = fs_to_json(ph_mapper_get_fs(m, i), &f);
		if (r < 0)
			goto fail;
		if (json_object_array_add(fss, f) < 0) {
			json_object_put(f);
			goto oom;
		}
	}

	ranges = json_object_new_array();
	if (!ranges)
		goto oom;
	J_ADD(j, "ranges", ranges);
	for (size_t i = 0; i < n; i++) {
		struct json_object *rj = json_object_new_object(), *owners;

		if (!rj || json_object_array_add(ranges, rj) < 0) {
			json_object_put(rj);
			goto oom;
		}
		J_ADD(rj, "sector", jint(res[i].range.start));
		J_ADD(rj, "count", jint(res[i].range.count));
		owners = json_object_new_array();
		if (!owners)
			goto oom;
		J_ADD(rj, "owners", owners);
		for (size_t k = 0; k < res[i].n_owners; k++) {
			struct json_object *oj;

			r = ph_owner_to_json(&res[i].owners[k], &oj);
			if (r < 0)
				goto fail;
			if (json_object_array_add(owners, oj) < 0) {
				json_object_put(oj);
				goto oom;
			}
		}
	}
	*ret = j;
	return 0;
oom:
	r = -ENOMEM;
fail:
	json_object_put(j);
	return r;
}
