/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * GETFSMAP iteration.  The kernel fills a batch of records between a low and
 * a high key; fsmap_advance() moves the low key past the last record to get
 * the next batch.  Both keys name the data device, so an external log or
 * realtime device is never reported as if it were on the data device.
 */
#include <errno.h>
#include <linux/fsmap.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/sysmacros.h>

#include "mapper-getfsmap.h"
#include "range.h"

#define FSMAP_BATCH 128

/* The kernel reports devices in new_encode_dev() form. */
static uint32_t encode_dev(dev_t dev)
{
	unsigned maj = major(dev), min = minor(dev);

	return (min & 0xff) | (maj << 8) | ((min & ~0xffu) << 12);
}

_public_ int ph_getfsmap(int fd, dev_t dev, uint64_t start, uint64_t count, ph_fsmap_fn fn,
			 void *userdata)
{
	_cleanup_free_ struct fsmap_head *head = NULL;
	uint32_t edev = encode_dev(dev);
	uint64_t end;

	if (count == 0 || __builtin_add_overflow(start, count, &end) ||
	    end > UINT64_MAX >> PH_SECTOR_SHIFT)
		return -EINVAL;
	head = calloc(1, fsmap_sizeof(FSMAP_BATCH));
	if (!head)
		return -ENOMEM;
	head->fmh_count = FSMAP_BATCH;
	head->fmh_keys[0].fmr_device = edev;
	head->fmh_keys[0].fmr_physical = start << PH_SECTOR_SHIFT;
	head->fmh_keys[1].fmr_device = edev;
	head->fmh_keys[1].fmr_physical = (end << PH_SECTOR_SHIFT) - 1;
	head->fmh_keys[1].fmr_owner = ULLONG_MAX;
	head->fmh_keys[1].fmr_offset = ULLONG_MAX;
	head->fmh_keys[1].fmr_flags = UINT_MAX;

	for (;;) {
		bool last = false;

		if (ioctl(fd, FS_IOC_GETFSMAP, head) < 0)
			return negative_errno();
		if (head->fmh_entries == 0)
			return 0;
		for (unsigned i = 0; i < head->fmh_entries; i++) {
			const struct fsmap *m = &head->fmh_recs[i];
			struct ph_fsmap_rec rec;
			int r;

			if (m->fmr_flags & FMR_OF_LAST)
				last = true;
			if (m->fmr_device != edev || m->fmr_length == 0)
				continue;
			rec = (struct ph_fsmap_rec){
				.start = m->fmr_physical >> PH_SECTOR_SHIFT,
				.count = (m->fmr_length + PH_SECTOR_SIZE - 1) >> PH_SECTOR_SHIFT,
				.owner = m->fmr_owner,
				.offset = m->fmr_offset >> PH_SECTOR_SHIFT,
				.flags = m->fmr_flags,
			};
			r = fn(userdata, &rec);
			if (r != 0)
				return r < 0 ? r : 0;
		}
		if (last)
			return 0;
		fsmap_advance(head);
	}
}

struct probe {
	bool owners;
	bool unknown;
	unsigned seen;
};

/*
 * Without rmapbt (or without CAP_SYS_ADMIN) the kernel cannot name the owner
 * of allocated space and reports it as OWN_UNKNOWN; with it, every block has
 * an owner.  Every filesystem has allocated space near its start (the root
 * directory, AG headers), so the first records decide.
 */
static int probe_rec(void *userdata, const struct ph_fsmap_rec *rec)
{
	struct probe *p = userdata;

	if (!(rec->flags & FMR_OF_SPECIAL_OWNER))
		p->owners = true;
	else if (rec->owner == FMR_OWN_UNKNOWN)
		p->unknown = true;
	return ++p->seen >= 4096 || p->owners || p->unknown;
}

_public_ int ph_getfsmap_probe(int fd, dev_t dev, bool *ret_works, bool *ret_owners)
{
	struct probe p = { 0 };
	int r;

	r = ph_getfsmap(fd, dev, 0, UINT64_MAX >> (PH_SECTOR_SHIFT + 1), probe_rec, &p);
	if (r == -ENOTTY || r == -EOPNOTSUPP || r == -EINVAL) {
		*ret_works = false;
		*ret_owners = false;
		return 0;
	}
	if (r < 0)
		return r;
	*ret_works = true;
	*ret_owners = p.owners || (!p.unknown && p.seen > 0);
	return 0;
}
