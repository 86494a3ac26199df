/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The planner's words and small answers that plan nothing: the names of
 * modes and steps, which owners' repaired pages share a staged block
 * (ph_plan_stage_slots()), and what a rule's action does, in words, for
 * `pmemheal policy`: the same choices the planner makes (in place,
 * relocate-pin, relocate-file, pin before freeing), told for a bus that can
 * or cannot clear and a filesystem with or without reflink.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "planner.h"

_public_ int ph_plan_describe_rule(const struct ph_rule *r, bool can_clear, bool reflink, char **ret)
{
	enum ph_action a = r ? r->action : PH_ACTION_REPORT;
	const char *single, *shared;
	int k;

	switch (a) {
	case PH_ACTION_REPORT:
		return (*ret = strdup("record the damage and change nothing")) ? 0 : -ENOMEM;
	case PH_ACTION_QUARANTINE:
		return (*ret = strdup("move the file into <mount>/.pmemheal/quarantine with a report; "
				      "its blocks stay allocated")) ? 0 : -ENOMEM;
	case PH_ACTION_DELETE:
	case PH_ACTION_PUNCH:
		k = asprintf(ret, "%s, after %s", a == PH_ACTION_DELETE ? "unlink the file" : "deallocate the damaged pages",
			     reflink ? "cloning each poisoned page into the quarantine file so its block is never "
				       "handed back to the allocator" :
			     can_clear ? "writing zeros over the page, which clears the poison on this bus" :
			     a == PH_ACTION_DELETE ? "no way to pin the block: the file is moved into quarantine instead" :
						     "no way to pin the block: a copy with a hole there replaces the file");
		return k < 0 ? -ENOMEM : 0;
	default:
		break;
	}
	single = can_clear ? "writes the repaired page back in place with one aligned write, which clears the poison" :
		 reflink ? "pins the poisoned block in the quarantine file and writes the repaired page to a fresh block" :
			   "replaces the file with a repaired copy and keeps the old inode, with its poisoned block, in quarantine";
	shared = reflink ? (can_clear ? "pins the block, gives every sharer the repaired page on a fresh block, "
				     "re-shares them, then clears and releases the pinned block" :
					"pins the block, gives every sharer the repaired page on a fresh block, "
					"re-shares them, and keeps the poisoned block pinned") :
			   "cannot happen (no reflink here)";
	k = asprintf(ret, "%s; a page only this file owns: %s; a page shared by reflink: %s",
		     a == PH_ACTION_SALVAGE ? "keep every readable sector of the damaged page and zero the poisoned "
					      "ones (a page that went through memory_failure is never read: "
					      "zeroed, or taken from Source=)" :
		     a == PH_ACTION_ZERO ? "zero the damaged page" :
		     a == PH_ACTION_RESTORE ? "copy the damaged page from Source=, which must be a regular file of "
					      "the same size (else Fallback=)" :
					      "run Hook= to write the page (exit 0), or apply Fallback= (exit 75)",
		     single, shared);
	return k < 0 ? -ENOMEM : 0;
}

_public_ const char *ph_mode_to_string(enum ph_mode m)
{
	static const char *const names[] = {
		[PH_MODE_RECORD] = "record",           [PH_MODE_IN_PLACE] = "in-place",
		[PH_MODE_RELOCATE_PIN] = "relocate-pin", [PH_MODE_RELOCATE_FILE] = "relocate-file",
		[PH_MODE_QUARANTINE] = "quarantine",   [PH_MODE_DELETE] = "delete",
		[PH_MODE_PUNCH] = "punch",             [PH_MODE_CLEAR_DEVICE] = "clear-device",
		[PH_MODE_REFUSED] = "refused",
	};

	return m < ELEMENTSOF(names) ? names[m] : "?";
}

_public_ const char *ph_step_to_string(enum ph_step_kind k)
{
	static const char *const names[] = {
		[PH_STEP_READ_GOOD] = "read-good-sectors", [PH_STEP_READ_SOURCE] = "read-source",
		[PH_STEP_RUN_HOOK] = "run-hook",           [PH_STEP_WRITE] = "write",
		[PH_STEP_PIN] = "pin",                     [PH_STEP_PUNCH] = "punch",
		[PH_STEP_RESHARE] = "reshare",             [PH_STEP_CLEAR] = "clear",
		[PH_STEP_RELEASE] = "release",             [PH_STEP_COPY_FILE] = "copy-file",
		[PH_STEP_LINK_OLD] = "link-old",           [PH_STEP_RENAME] = "rename",
		[PH_STEP_UNLINK] = "unlink",               [PH_STEP_CLEAR_DEVICE] = "clear-device",
		[PH_STEP_VERIFY] = "verify",               [PH_STEP_RECORD] = "record",
		[PH_STEP_RELINK] = "relink",               [PH_STEP_STAGE] = "stage",
		[PH_STEP_SWAP] = "swap",                   [PH_STEP_UNSTAGE] = "unstage",
	};

	return k < ELEMENTSOF(names) ? names[k] : "?";
}

_public_ size_t ph_plan_stage_slots(const struct ph_plan_page *pg, const uint8_t *const *pages, size_t *slots)
{
	size_t n = 0;

	for (size_t i = 0; i < pg->n_owners; i++) {
		const struct ph_rule *ri = pg->owners[i].rule;
		bool alone = ri && ri->on_shared == PH_SHARED_SEPARATE;

		slots[i] = SIZE_MAX;
		if (!pages[i])
			continue;
		for (size_t k = 0; !alone && k < i && slots[i] == SIZE_MAX; k++) {
			const struct ph_rule *rk = pg->owners[k].rule;

			if (pages[k] && slots[k] != SIZE_MAX && !(rk && rk->on_shared == PH_SHARED_SEPARATE) &&
			    memcmp(pages[k], pages[i], PH_PAGE_SIZE) == 0)
				slots[i] = slots[k];
		}
		if (slots[i] == SIZE_MAX)
			slots[i] = n++;
	}
	return n;
}
