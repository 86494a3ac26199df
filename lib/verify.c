/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The verifier stage: after a job's changing steps, read back what each owner
 * now holds and ask the kernel's list again.  It returns a verdict (and sets
 * the job's cleared/pinned outcome); it records nothing and moves no ledger
 * state: the pipeline does that with the verdict.
 */
#include "repair-internal.h"

/* ---- verification ------------------------------------------------------ */

/* Did the job share owner i into owners[0]'s new block (OnShared=together)?
 * Under OnShared=separate each sharer gets its own write and its own
 * block: nothing is shared again, and verify must not ask for it. */
/* An older job's owner i that was to share owner 0's repaired block. */
static bool reshared(const struct job *j, size_t i)
{
	for (size_t k = 0; k < j->n_steps; k++)
		if (j->steps[k].kind == PH_STEP_RESHARE && j->steps[k].owner == i)
			return true;
	return false;
}

/* Where the poisoned block is now, asked of the filesystem and the kernel,
 * not remembered from the steps (a resumed job ran some of them before a
 * restart): still held by the job's pin file (pinned), or not held by it
 * and no longer listed (cleared: the bus cleared it before it was given
 * back).  Listed and held by nothing the job owns: a poisoned block went
 * back to the allocator, which the steps exist to prevent. */
static int verify_block(struct ph_repairer *r, struct job *j, char **why)
{
	_cleanup_close_ int qdir = -EBADF, pin = -EBADF;
	uint64_t sector = 0;
	bool hole = true, listed;
	int k;

	j->cleared = j->pinned = false;
	if (job_uses_pin(j)) {
		k = open_pin(r, j, false, &qdir, &pin);
		if (k == 0)
			k = page_map(pin, 0, &sector, &hole, NULL);
		if (k < 0 && k != -ENOENT)
			return asprintf(why, "%s: %s", j->pin, strerror(-k)) < 0 ? -ENOMEM : k;
		if (k == 0 && !hole && sector == j->fs_page) {
			j->pinned = true;
			return 0;
		}
	}
	k = page_listed(r->ctx, j, &listed);
	if (k < 0)
		return k;
	if (listed)
		return asprintf(why, "the kernel still lists the page and %s holds its block",
				job_uses_pin(j) ? "no pin" : "nothing") < 0 ? -ENOMEM : -EIO;
	j->cleared = true;
	return 0;
}

/* delete, punch and quarantine: no planned name may still reach the
 * poisoned block (a punched file no longer maps it; a deleted or
 * quarantined one is no longer there by that name), reached as the steps
 * reach it: through its directory, no link on the way.  A quarantined
 * file keeps the block (pinned); otherwise the block is the pin's or the
 * bus cleared it. */
static int verify_given_up(struct ph_repairer *r, struct job *j, char **why)
{
	for (size_t i = 0; i < j->n_owners; i++) {
		const struct job_owner *o = &j->owners[i];
		_cleanup_close_ int dir = -EBADF, fd = -EBADF;
		const char *name;
		uint64_t sector;
		bool hole;
		int k;

		if (!o->repair)
			continue;
		k = open_dir_of(j, o->path, &dir, &name);
		if (k == 0)
			k = ph_open_at_checked(dir, name, O_RDONLY, o->dev, o->inode, o->gen, &fd);
		if (k == -ENOENT || k == -ESTALE)
			continue; /* not that file by that name any more */
		if (k == 0 && j->mode == PH_MODE_PUNCH) {
			k = page_map(fd, o->offset, &sector, &hole, NULL);
			if (k == 0 && (hole || sector != j->fs_page))
				continue;
		}
		if (k < 0)
			return asprintf(why, "%s: %s", o->path, strerror(-k)) < 0 ? -ENOMEM : k;
		return asprintf(why, "%s still %s the poisoned block", o->path,
				j->mode == PH_MODE_PUNCH ? "maps" : "holds") < 0 ? -ENOMEM : -EIO;
	}
	if (j->mode == PH_MODE_QUARANTINE) {
		j->cleared = false;
		j->pinned = true;
		return 0;
	}
	return verify_block(r, j, why);
}

/* in-place and relocate-pin: each repaired owner reads back its own slot's
 * page; owners of one slot (identical pages) share one block again.  In
 * place, the kernel must no longer list the page (cleared); relocated, no
 * owner may map the poisoned block (pinned, unless a clear step cleared). */
static int verify_pages(struct ph_repairer *r, struct job *j, char **why)
{
	_cleanup_free_ uint64_t *slot_sector = calloc(MAX(j->n_slots, (size_t)1), sizeof(uint64_t));
	_cleanup_free_ size_t *slot_owner = calloc(MAX(j->n_slots, (size_t)1), sizeof(size_t));
	bool listed = false;
	int k;

	if (!slot_sector || !slot_owner)
		return -ENOMEM;
	for (size_t i = 0; i < j->n_owners; i++) {
		const struct job_owner *o = &j->owners[i];
		_cleanup_close_ int fd = -EBADF;
		uint64_t sector;
		bool hole, shared;

		if (!o->repair || o->slot == SIZE_MAX)
			continue;
		k = open_owner(j, o, O_RDONLY, &fd);
		if (k == 0)
			k = page_map(fd, o->offset, &sector, &hole, &shared);
		if (k < 0)
			return asprintf(why, "%s: %s", o->path, strerror(-k)) < 0 ? -ENOMEM : k;
		if (!same_prefix(fd, o->offset, slot_page(j, o->slot), page_len(o)))
			return asprintf(why, "%s does not read back the repaired page at %" PRIu64, o->path,
					o->offset) < 0 ? -ENOMEM : -EIO;
		if (j->mode == PH_MODE_RELOCATE_PIN && (hole || sector == j->fs_page))
			return asprintf(why, "%s still maps the poisoned block", o->path) < 0 ? -ENOMEM : -EIO;
		if (page_len(o) < PH_PAGE_SIZE)
			continue; /* its last page was trimmed to its size: a block of its own */
		if (j->legacy_slots && i > 0 && !reshared(j, i))
			continue; /* an older job: its own write, its own block (OnShared=separate) */
		if (!slot_sector[o->slot]) {
			slot_sector[o->slot] = sector + 1;
			slot_owner[o->slot] = i;
		} else if (j->mode == PH_MODE_RELOCATE_PIN && sector + 1 != slot_sector[o->slot])
			return asprintf(why, "%s does not share the repaired block with %s", o->path,
					j->owners[slot_owner[o->slot]].path) < 0 ? -ENOMEM : -EIO;
	}
	if (j->mode != PH_MODE_IN_PLACE)
		return verify_block(r, j, why);
	k = page_listed(r->ctx, j, &listed);
	if (k < 0)
		return k;
	if (listed)
		return asprintf(why, "the kernel still lists the page after writing it") < 0 ? -ENOMEM : -EIO;
	j->cleared = true;
	return 0;
}

/* relocate-file: the copy now has the name (a new inode: not the planned
 * one), reached as every step reaches it: through its directory, no link on
 * the way, on the planned filesystem; every other hard link is that inode.
 * Pinned: the old inode keeps the poisoned block. */
static int verify_copy(struct job *j, char **why)
{
	const struct job_owner *o = &j->owners[0];
	_cleanup_close_ int dir = -EBADF, fd = -EBADF;
	static const uint8_t zeros[PH_PAGE_SIZE];
	const char *name;
	struct stat a;
	int k;

	k = open_dir_of(j, o->path, &dir, &name);
	if (k == 0) {
		fd = openat(dir, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
		k = fd < 0 ? negative_errno() : fstat(fd, &a) < 0 ? negative_errno() : 0;
	}
	if (k == 0 && (!S_ISREG(a.st_mode) || (o->dev && (uint64_t)a.st_dev != o->dev)))
		k = -ESTALE;
	if (k < 0)
		return asprintf(why, "%s: %s", o->path, k == -ESTALE ? "not the repaired copy" : strerror(-k)) < 0 ?
			       -ENOMEM : -EIO;
	if (!same_bytes(fd, o->offset, j->hole ? zeros : j->content))
		return asprintf(why, "the copy of %s does not hold the repaired page", o->path) < 0 ? -ENOMEM : -EIO;
	for (size_t i = 1; i < j->n_owners; i++) {
		_cleanup_close_ int ldir = -EBADF;
		const char *lname;
		struct stat b;

		if (!j->owners[i].link || open_dir_of(j, j->owners[i].path, &ldir, &lname) < 0 ||
		    fstatat(ldir, lname, &b, AT_SYMLINK_NOFOLLOW) < 0)
			continue; /* a name removed meanwhile splits nothing */
		if (a.st_ino != b.st_ino || a.st_dev != b.st_dev)
			return asprintf(why, "%s is not a link of the repaired %s", j->owners[i].path, o->path) < 0 ?
				       -ENOMEM : -EIO;
	}
	j->pinned = true;
	return 0;
}

int verify(struct ph_repairer *r, struct job *j, char **why)
{
	switch (j->mode) {
	case PH_MODE_IN_PLACE:
	case PH_MODE_RELOCATE_PIN:
		return verify_pages(r, j, why);
	case PH_MODE_RELOCATE_FILE:
		return verify_copy(j, why);
	case PH_MODE_DELETE:
	case PH_MODE_PUNCH:
	case PH_MODE_QUARANTINE:
		return verify_given_up(r, j, why);
	default:
		return 0;
	}
}
