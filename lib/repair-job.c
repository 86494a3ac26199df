/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A planned page as a job: job_from_plan() opens and fingerprints each owner
 * and names the side files; job_to_json()/job_from_json() are the intent
 * log's record of it, read back field by field (a job that does not parse is
 * set aside, never half-run).
 */
#include "repair-internal.h"

/* ---- jobs as JSON (the intent log's "plan") ---------------------------- */

struct json_object *job_to_json(const struct job *j)
{
	struct json_object *o = json_object_new_object(), *owners = json_object_new_array(),
			   *steps = json_object_new_array();

	json_object_object_add(o, "range_id", json_object_new_int64(j->range_id));
	json_object_object_add(o, "device", json_object_new_string(j->device));
	json_object_object_add(o, "list", json_object_new_string(j->list));
	json_object_object_add(o, "mount", j->mount ? json_object_new_string(j->mount) : NULL);
	json_object_object_add(o, "ns_id", json_object_new_string(j->ns_id));
	json_object_object_add(o, "page", json_object_new_int64((int64_t)j->page));
	json_object_object_add(o, "fs_page", json_object_new_int64((int64_t)j->fs_page));
	json_object_object_add(o, "mode", json_object_new_int(j->mode));
	json_object_object_add(o, "can_clear", json_object_new_boolean(j->can_clear));
	json_object_object_add(o, "hole", json_object_new_boolean(j->hole));
	json_object_object_add(o, "pin", j->pin ? json_object_new_string(j->pin) : NULL);
	json_object_object_add(o, "tmp", j->tmp ? json_object_new_string(j->tmp) : NULL);
	json_object_object_add(o, "qname", j->qname ? json_object_new_string(j->qname) : NULL);
	json_object_object_add(o, "bytes_lost", json_object_new_int64((int64_t)j->bytes_lost));
	if (!j->legacy_slots)
		json_object_object_add(o, "slots", json_object_new_int64((int64_t)j->n_slots));
	for (size_t i = 0; i < j->n_owners; i++) {
		struct json_object *w = json_object_new_object();

		json_object_object_add(w, "path", json_object_new_string(j->owners[i].path));
		json_object_object_add(w, "dev", json_object_new_int64((int64_t)j->owners[i].dev));
		json_object_object_add(w, "inode", json_object_new_int64((int64_t)j->owners[i].inode));
		json_object_object_add(w, "gen", json_object_new_int64((int64_t)j->owners[i].gen));
		json_object_object_add(w, "offset", json_object_new_int64((int64_t)j->owners[i].offset));
		json_object_object_add(w, "size", json_object_new_int64((int64_t)j->owners[i].size));
		json_object_object_add(w, "mtime_ns", json_object_new_int64(j->owners[i].mtime_ns));
		json_object_object_add(w, "ctime_ns", json_object_new_int64(j->owners[i].ctime_ns));
		json_object_object_add(w, "repair", json_object_new_boolean(j->owners[i].repair));
		json_object_object_add(w, "link", json_object_new_boolean(j->owners[i].link));
		json_object_object_add(w, "slot", json_object_new_int64(j->owners[i].slot == SIZE_MAX ? -1 :
									  (int64_t)j->owners[i].slot));
		json_object_array_add(owners, w);
	}
	for (size_t i = 0; i < j->n_steps; i++) {
		struct json_object *s = json_object_new_array();

		json_object_array_add(s, json_object_new_int(j->steps[i].kind));
		json_object_array_add(s, json_object_new_int((int)j->steps[i].owner));
		json_object_array_add(steps, s);
	}
	json_object_object_add(o, "owners", owners);
	json_object_object_add(o, "steps", steps);
	return o;
}

/*
 * Reading a job back is parsing outside input: the ledger is a file that a
 * crash, a full disk or a person may have damaged.  json-c asserts on the
 * wrong type (an array call on a number aborts the process), and the
 * daemon resumes before it is ready, so a bad intent would abort every
 * start.  Every field is checked for its type and range, and the first
 * one that is wrong is named; the caller sets that intent aside.
 */
struct jparse {
	char *why;     /* the first problem, naming the field */
};

static int jbad(struct jparse *p, const char *field, const char *fmt, ...) _printf_(3, 4);
static int jbad(struct jparse *p, const char *field, const char *fmt, ...)
{
	_cleanup_free_ char *what = NULL;
	va_list ap;
	int k;

	if (p->why)
		return -EBADMSG;
	va_start(ap, fmt);
	k = vasprintf(&what, fmt, ap);
	va_end(ap);
	if (k < 0) {
		what = NULL; /* undefined after a failure */
		return -ENOMEM;
	}
	if (asprintf(&p->why, "%s: %s", field, what) < 0) {
		p->why = NULL;
		return -ENOMEM;
	}
	return -EBADMSG;
}

/* A string without embedded NULs; absolute: a path from the root. */
static int jstring(struct jparse *p, struct json_object *o, const char *field, const char *k, bool required,
		   bool absolute, char **ret)
{
	struct json_object *v = NULL;
	const char *s;

	*ret = NULL;
	if (!json_object_object_get_ex(o, k, &v) || !v)
		return required ? jbad(p, field, "missing") : 0;
	if (!json_object_is_type(v, json_type_string))
		return jbad(p, field, "not a string");
	s = json_object_get_string(v);
	if ((size_t)json_object_get_string_len(v) != strlen(s))
		return jbad(p, field, "holds a NUL byte");
	if (*s == '\0')
		return jbad(p, field, "empty");
	if (absolute && *s != '/')
		return jbad(p, field, "not an absolute path");
	*ret = strdup(s);
	return *ret ? 0 : -ENOMEM;
}

/* An integer in [min, max].  json-c clamps what does not fit in 64 bits
 * to the type's limits, so the limits themselves are refused too. */
static int jinteger(struct jparse *p, struct json_object *v, const char *field, int64_t min, int64_t max,
		    int64_t *ret)
{
	int64_t x;

	if (!v)
		return jbad(p, field, "missing");
	if (!json_object_is_type(v, json_type_int))
		return jbad(p, field, "not an integer");
	x = json_object_get_int64(v);
	if (x < min || x > max || x == INT64_MAX || x == INT64_MIN)
		return jbad(p, field, "out of range");
	*ret = x;
	return 0;
}

static int jint_field(struct jparse *p, struct json_object *o, const char *field, const char *k, int64_t min,
		      int64_t max, int64_t *ret)
{
	struct json_object *v = NULL;

	(void)json_object_object_get_ex(o, k, &v);
	return jinteger(p, v, field, min, max, ret);
}

static int jbool_field(struct jparse *p, struct json_object *o, const char *field, const char *k, bool *ret)
{
	struct json_object *v = NULL;

	if (!json_object_object_get_ex(o, k, &v) || !v)
		return jbad(p, field, "missing");
	if (!json_object_is_type(v, json_type_boolean))
		return jbad(p, field, "not true or false");
	*ret = json_object_get_boolean(v);
	return 0;
}

static bool step_uses_owner(enum ph_step_kind k)
{
	return k == PH_STEP_WRITE || k == PH_STEP_PUNCH || k == PH_STEP_RESHARE || k == PH_STEP_RENAME ||
	       k == PH_STEP_UNLINK || k == PH_STEP_RELINK || k == PH_STEP_SWAP;
}

static int owner_from_json(struct jparse *p, struct json_object *w, size_t i, size_t n_slots, struct job_owner *o)
{
	char f[64];
	int64_t x;
	int k;

#define FIELD(name) (snprintf(f, sizeof(f), "owners[%zu]." name, i), f)
	snprintf(f, sizeof(f), "owners[%zu]", i);
	if (!w || !json_object_is_type(w, json_type_object))
		return jbad(p, f, "not an object");
	k = jstring(p, w, FIELD("path"), "path", true, true, &o->path);
	/* "dev" came later: an intent without it compares the file against
	 * its directory's device */
	if (k == 0 && json_object_object_get_ex(w, "dev", NULL)) {
		k = jint_field(p, w, FIELD("dev"), "dev", 0, INT64_MAX, &x);
		o->dev = (uint64_t)x;
	}
	if (k == 0)
		k = jint_field(p, w, FIELD("inode"), "inode", 0, INT64_MAX, &x);
	if (k == 0) {
		o->inode = (uint64_t)x;
		k = jint_field(p, w, FIELD("gen"), "gen", 0, INT64_MAX, &x);
	}
	if (k == 0) {
		o->gen = (uint64_t)x;
		/* the page's bytes must be addressable: offset + a page fits off_t */
		k = jint_field(p, w, FIELD("offset"), "offset", 0, INT64_MAX - PH_PAGE_SIZE, &x);
	}
	if (k == 0) {
		o->offset = (uint64_t)x;
		k = jint_field(p, w, FIELD("size"), "size", 0, INT64_MAX, &x);
	}
	if (k == 0) {
		o->size = (uint64_t)x;
		k = jint_field(p, w, FIELD("mtime_ns"), "mtime_ns", INT64_MIN, INT64_MAX, &o->mtime_ns);
	}
	if (k == 0)
		k = jint_field(p, w, FIELD("ctime_ns"), "ctime_ns", INT64_MIN, INT64_MAX, &o->ctime_ns);
	if (k == 0)
		k = jbool_field(p, w, FIELD("repair"), "repair", &o->repair);
	if (k == 0)
		k = jbool_field(p, w, FIELD("link"), "link", &o->link);
	/* "slot" came with sharers' own pages: without it, a repaired
	 * owner has the one page; -1 is none (reported only) */
	if (k == 0 && !json_object_object_get_ex(w, "slot", NULL))
		o->slot = o->repair ? 0 : SIZE_MAX;
	else if (k == 0) {
		k = jint_field(p, w, FIELD("slot"), "slot", -1, (int64_t)n_slots - 1, &x);
		o->slot = x < 0 ? SIZE_MAX : (size_t)x;
	}
#undef FIELD
	return k;
}

/* The job an intent's plan describes, checked against the intent's row.
 * -EBADMSG with *ret_why naming the field when it is no sound job. */
/* The job's own fields: where, which page, how, and its slots. */
static int job_fields_from_json(struct jparse *p, struct json_object *o, const struct ph_intent *it, struct job *j)
{
	int64_t x;
	int r;

	r = jint_field(p, o, "range_id", "range_id", INT64_MIN, INT64_MAX, &j->range_id);
	if (r == 0 && j->range_id != it->range_id)
		r = jbad(p, "range_id", "%" PRId64 ", but the intent is for range %" PRId64, j->range_id,
			 it->range_id);
	if (r == 0)
		r = jstring(p, o, "device", "device", true, true, &j->device);
	if (r == 0)
		r = jstring(p, o, "list", "list", true, true, &j->list);
	if (r == 0)
		r = jstring(p, o, "mount", "mount", false, true, &j->mount);
	if (r == 0)
		r = jstring(p, o, "ns_id", "ns_id", true, false, &j->ns_id);
	if (r == 0)
		r = jint_field(p, o, "page", "page", 0, INT64_MAX, &x);
	if (r == 0) {
		j->page = (uint64_t)x;
		if (j->page != it->page)
			r = jbad(p, "page", "%" PRIu64 ", but the intent is for page %" PRIu64, j->page, it->page);
	}
	if (r == 0)
		r = jint_field(p, o, "fs_page", "fs_page", 0, (int64_t)j->page, &x);
	if (r == 0) {
		j->fs_page = (uint64_t)x;
		r = jint_field(p, o, "mode", "mode", 0, INT_MAX, &x);
	}
	if (r == 0) {
		j->mode = (enum ph_mode)x;
		if (strcmp(ph_mode_to_string(j->mode), "?") == 0)
			r = jbad(p, "mode", "%" PRId64 " is no mode this pmemheal knows", x);
	}
	if (r == 0)
		r = jbool_field(p, o, "can_clear", "can_clear", &j->can_clear);
	if (r == 0)
		r = jbool_field(p, o, "hole", "hole", &j->hole);
	if (r == 0)
		r = jstring(p, o, "pin", "pin", false, true, &j->pin);
	if (r == 0)
		r = jstring(p, o, "tmp", "tmp", false, true, &j->tmp);
	if (r == 0)
		r = jstring(p, o, "qname", "qname", false, false, &j->qname);
	if (r == 0 && j->qname && (strchr(j->qname, '/') || strcmp(j->qname, ".") == 0 || strcmp(j->qname, "..") == 0))
		r = jbad(p, "qname", "not a file name");
	if (r == 0)
		r = jint_field(p, o, "bytes_lost", "bytes_lost", 0, INT64_MAX, &x);
	if (r == 0) {
		j->bytes_lost = (uint64_t)x;
		/* Jobs written before sharers had pages of their own: one slot.
		 * There is at most a slot per owner (checked with the owners). */
		j->n_slots = 1;
		j->legacy_slots = !json_object_object_get_ex(o, "slots", NULL);
		if (!j->legacy_slots) {
			r = jint_field(p, o, "slots", "slots", 1, INT32_MAX, &x);
			j->n_slots = (size_t)x;
		}
	}
	return r;
}

/* What a job's steps need named: the pin, the quarantine, a copy's name. */
struct job_needs {
	bool pin, quarantine, tmp, qname;
};

/* The job's steps, each a [kind, owner] pair naming an owner it has. */
static int job_steps_from_json(struct jparse *p, struct json_object *steps, struct job *j, struct job_needs *n)
{
	int64_t x;
	int r = 0;

	for (size_t i = 0; r == 0 && i < json_object_array_length(steps); i++) {
		struct json_object *s = json_object_array_get_idx(steps, i);
		char f[64];

		snprintf(f, sizeof(f), "steps[%zu]", i);
		if (!s || !json_object_is_type(s, json_type_array) || json_object_array_length(s) != 2) {
			r = jbad(p, f, "not a pair [kind, owner]");
			break;
		}
		snprintf(f, sizeof(f), "steps[%zu][0]", i);
		r = jinteger(p, json_object_array_get_idx(s, 0), f, 0, INT_MAX, &x);
		if (r == 0 && strcmp(ph_step_to_string((enum ph_step_kind)x), "?") == 0)
			r = jbad(p, f, "%" PRId64 " is no step this pmemheal knows", x);
		if (r < 0)
			break;
		j->steps[i].kind = (enum ph_step_kind)x;
		snprintf(f, sizeof(f), "steps[%zu][1]", i);
		/* an owner the job has; a step that acts on none may name
		 * owner 0 of a job without owners (owners[] has room for one) */
		r = jinteger(p, json_object_array_get_idx(s, 1), f, 0,
			     (int64_t)(step_uses_owner(j->steps[i].kind) ? j->n_owners : MAX(j->n_owners, (size_t)1)) - 1,
			     &x);
		if (r < 0)
			break;
		j->steps[i].owner = (size_t)x;
		j->n_steps++;
		/* the staging file is named after the pin, next to it */
		n->pin |= (j->steps[i].kind == PH_STEP_PIN || j->steps[i].kind == PH_STEP_CLEAR ||
			      j->steps[i].kind == PH_STEP_RELEASE || j->steps[i].kind == PH_STEP_STAGE ||
			      j->steps[i].kind == PH_STEP_SWAP || j->steps[i].kind == PH_STEP_UNSTAGE);
		n->quarantine |= j->steps[i].kind == PH_STEP_PIN || j->steps[i].kind == PH_STEP_LINK_OLD ||
				    j->steps[i].kind == PH_STEP_STAGE || j->steps[i].kind == PH_STEP_SWAP ||
				    j->steps[i].kind == PH_STEP_UNSTAGE ||
				    (j->steps[i].kind == PH_STEP_RENAME && j->mode != PH_MODE_RELOCATE_FILE);
		n->tmp |= j->steps[i].kind == PH_STEP_COPY_FILE ||
			     (j->steps[i].kind == PH_STEP_RENAME && j->mode == PH_MODE_RELOCATE_FILE);
		n->qname |= j->steps[i].kind == PH_STEP_LINK_OLD;
	}
	return r;
}

static int job_needs_check(struct jparse *p, const struct ph_intent *it, const struct job *j,
			   const struct job_needs *n)
{
	int r = 0;

	/* What the steps will open: a missing one would name a file relative
	 * to the working directory, or none at all. */
	if (n->pin && !j->pin)
		r = jbad(p, "pin", "missing, and the steps pin the page");
	else if (n->quarantine && !j->mount)
		r = jbad(p, "mount", "missing, and the steps use the quarantine");
	else if (n->qname && !j->qname)
		r = jbad(p, "qname", "missing, and the steps link the file into quarantine");
	else if (n->tmp && !j->tmp)
		r = jbad(p, "tmp", "missing, and the steps build a copy of the file");
	else if (it->step < 0 || (size_t)it->step >= j->n_steps) /* verify, the last, ends the intent */
		r = jbad(p, "step", "%d, but the job has %zu steps", it->step, j->n_steps);
	else if (!it->content || it->content_len != MAX(j->n_slots, (size_t)1) * PH_PAGE_SIZE)
		r = jbad(p, "content", "%zu bytes, not the %zu of its %zu page(s)", it->content_len,
			 MAX(j->n_slots, (size_t)1) * PH_PAGE_SIZE, MAX(j->n_slots, (size_t)1));
	return r;
}

/* The steps a job runs from the intent log: those that change something,
 * then verify.  Reading the content ran before the intent was written (its
 * bytes are in it); record steps are what the pipeline journals when it
 * settles the page; a device's clear is not a job (pipeline-devdax.c). */
static bool job_step(enum ph_step_kind k)
{
	return (ph_step_changes(k) && k != PH_STEP_CLEAR_DEVICE) || k == PH_STEP_VERIFY;
}

/* Verify is a job's last step, and only there.  An intent written before
 * verify was a step of its own ends without one: the job verifies all the
 * same (the steps array has room for it). */
static int job_ends_with_verify(struct jparse *p, struct job *j)
{
	for (size_t i = 0; i + 1 < j->n_steps; i++)
		if (j->steps[i].kind == PH_STEP_VERIFY) {
			char f[64];

			snprintf(f, sizeof(f), "steps[%zu][0]", i);
			return jbad(p, f, "verify, which only the last step is");
		}
	if (j->n_steps == 0 || j->steps[j->n_steps - 1].kind != PH_STEP_VERIFY)
		j->steps[j->n_steps++] = (struct job_step){ PH_STEP_VERIFY, 0 };
	return 0;
}

int job_from_json(const struct ph_intent *it, struct job *j, char **ret_why)
{
	struct json_object *o, *owners = NULL, *steps = NULL;
	struct jparse p = { NULL };
	struct job_needs needs = { 0 };
	int r;

	memset(j, 0, sizeof(*j));
	*ret_why = NULL;
	o = it->plan ? json_tokener_parse(it->plan) : NULL;
	if (!o || !json_object_is_type(o, json_type_object)) {
		r = jbad(&p, "plan", "not a JSON object");
		goto out;
	}
	r = job_fields_from_json(&p, o, it, j);
	if (r < 0)
		goto out;

	if (!json_object_object_get_ex(o, "owners", &owners) || !json_object_is_type(owners, json_type_array)) {
		r = jbad(&p, "owners", owners ? "not an array" : "missing");
		goto out;
	}
	if (!json_object_object_get_ex(o, "steps", &steps) || !json_object_is_type(steps, json_type_array)) {
		r = jbad(&p, "steps", steps ? "not an array" : "missing");
		goto out;
	}
	if (j->n_slots > MAX(json_object_array_length(owners), (size_t)1)) {
		r = jbad(&p, "slots", "%zu, more than the job's owners", j->n_slots);
		goto out;
	}
	j->owners = calloc(MAX(json_object_array_length(owners), (size_t)1), sizeof(*j->owners));
	j->steps = calloc(json_object_array_length(steps) + 1, sizeof(*j->steps)); /* + verify */
	if (!j->owners || !j->steps) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; r == 0 && i < json_object_array_length(owners); i++) {
		r = owner_from_json(&p, json_object_array_get_idx(owners, i), i, j->n_slots, &j->owners[i]);
		j->n_owners++; /* freed by job_done, even half filled */
	}
	if (r == 0)
		r = job_steps_from_json(&p, steps, j, &needs);
	if (r == 0)
		r = job_ends_with_verify(&p, j);
	if (r < 0)
		goto out;
	r = job_needs_check(&p, it, j, &needs);
	if (r == 0)
		r = slots_from_blob(j, it->content, it->content_len);
	if (r < 0)
		goto out;
	j->has_content = true;
out:
	json_object_put(o);
	if (r < 0) {
		job_done(j);
		*ret_why = p.why;
	}
	return r;
}

/* A job for a planned page: owners opened and fingerprinted now. */
int job_from_plan(struct ph_repairer *r, const struct ph_plan *plan, const struct ph_plan_page *pg,
			 const struct ph_namespace *ns, uint64_t part_start, int64_t range_id, struct job *j)
{
	memset(j, 0, sizeof(*j));
	j->range_id = range_id;
	j->page = pg->sector;
	j->fs_page = pg->sector - part_start;
	j->mode = pg->mode;
	j->can_clear = plan->can_clear;
	j->hole = pg->mode == PH_MODE_RELOCATE_FILE && pg->content == PH_CONTENT_NONE;
	j->bytes_lost = pg->bytes_lost;
	j->n_slots = 1;
	j->device = strdup(plan->device);
	j->mount = plan->mountpoint ? strdup(plan->mountpoint) : NULL;
	j->ns_id = strdup(ns->id);
	if (!j->device || !j->ns_id || ph_source_device_list(ns, &j->list) < 0 ||
	    asprintf(&j->pin, "%s/" PH_QUARANTINE_DIR "/%s-%" PRIu64 ".pin",
		     strcmp(plan->mountpoint, "/") ? plan->mountpoint : "", ns->id, pg->sector) < 0)
		return -ENOMEM;
	j->owners = calloc(MAX(pg->n_owners, (size_t)1), sizeof(*j->owners));
	j->steps = calloc(pg->n_steps + 1, sizeof(*j->steps));
	if (!j->owners || !j->steps)
		return -ENOMEM;
	for (size_t i = 0; i < pg->n_owners; i++) {
		const struct ph_plan_owner *po = &pg->owners[i];
		struct job_owner *o = &j->owners[j->n_owners];
		_cleanup_close_ int fd = -EBADF, dir = -EBADF;
		const char *name;
		struct stat st;

		if (!po->path)
			return -ESTALE; /* no path: nothing safe to do */
		o->path = strdup(po->path);
		if (!o->path)
			return -ENOMEM;
		j->n_owners++;
		o->inode = po->inode;
		o->offset = po->file_offset;
		o->repair = po->action != PH_ACTION_REPORT;
		o->slot = o->repair ? 0 : SIZE_MAX;
		if (open_dir_of(j, o->path, &dir, &name) < 0)
			return -ESTALE; /* not reachable without a link: not the file mapped */
		fd = openat(dir, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
		if (fd < 0 || fstat(fd, &st) < 0 || st.st_ino != po->inode || !S_ISREG(st.st_mode))
			return -ESTALE; /* renamed or replaced since it was mapped */
		o->dev = (uint64_t)st.st_dev;
		(void)ioctl(fd, FS_IOC_GETVERSION, &o->gen);
		o->size = (uint64_t)st.st_size;
		o->mtime_ns = st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
		o->ctime_ns = st.st_ctim.tv_sec * 1000000000LL + st.st_ctim.tv_nsec;
	}
	/* delete removes whole files: every byte of each is given up */
	if (pg->mode == PH_MODE_DELETE) {
		j->bytes_lost = 0;
		for (size_t i = 0; i < j->n_owners; i++)
			if (j->owners[i].repair)
				j->bytes_lost += j->owners[i].size;
	} else if (pg->mode == PH_MODE_RELOCATE_PIN)
		for (size_t i = 0; i < j->n_owners; i++)
			if (pg->owners[i].action == PH_ACTION_DELETE)
				j->bytes_lost += j->owners[i].size;
	if (pg->mode == PH_MODE_RELOCATE_FILE && pg->n_owners == 1 && pg->owners[0].n_links > 0) {
		struct job_owner *v = reallocarray(j->owners, 1 + pg->owners[0].n_links, sizeof(*v));

		if (!v)
			return -ENOMEM;
		j->owners = v;
		for (size_t k = 0; k < pg->owners[0].n_links; k++) {
			j->owners[j->n_owners] = (struct job_owner){ .dev = j->owners[0].dev, .inode = j->owners[0].inode,
								     .offset = j->owners[0].offset, .link = true };
			if (!(j->owners[j->n_owners].path = strdup(pg->owners[0].links[k])))
				return -ENOMEM;
			j->n_owners++;
		}
	}
	if (j->n_owners > 0) {
		const char *base = basename_of(j->owners[0].path);
		_cleanup_free_ char *dir = strdup(j->owners[0].path);

		if (!dir)
			return -ENOMEM;
		*strrchr(dir, '/') = '\0';
		_cleanup_free_ char *tname = NULL, *prefix = NULL;
		int k;

		/* Within NAME_MAX even for a name of NAME_MAX bytes. */
		k = ph_repair_side_name(".pmemheal-", base, pg->sector, ".tmp", 0, &tname);
		if (k < 0)
			return k;
		if (asprintf(&prefix, "%" PRIu64 "-", j->owners[0].inode) < 0)
			return -ENOMEM;
		k = ph_repair_side_name(prefix, base, pg->sector, "", PH_QUARANTINE_RESERVE, &j->qname);
		if (k < 0)
			return k;
		if (asprintf(&j->tmp, "%s/%s", dir, tname) < 0)
			return -ENOMEM;
	}
	for (size_t i = 0; i < pg->n_steps; i++)
		if (job_step(pg->steps[i].kind))
			j->steps[j->n_steps++] = (struct job_step){ pg->steps[i].kind, pg->steps[i].owner };
	return j->n_steps > 0 && j->steps[j->n_steps - 1].kind == PH_STEP_VERIFY ? 0 : -EINVAL;
}
