/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Prometheus text format: "# HELP", "# TYPE", then one sample per line;
 * label values here are fixed words, so nothing needs escaping.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "metrics.h"

static const char *const outcome_names[_PH_OUTCOME_MAX] = {
	[PH_OUTCOME_CLEARED] = "cleared",   [PH_OUTCOME_REPAIRED] = "repaired",
	[PH_OUTCOME_PINNED] = "pinned",     [PH_OUTCOME_RECORDED] = "recorded",
	[PH_OUTCOME_FAILED] = "failed",
};

_public_ const char *ph_outcome_to_string(enum ph_outcome o)
{
	return o < _PH_OUTCOME_MAX ? outcome_names[o] : "?";
}

_public_ enum ph_outcome ph_outcome_of(const struct ph_repair_result *res, int error)
{
	if (error < 0 || res->failed)
		return PH_OUTCOME_FAILED;
	if (res->written == 0)
		return PH_OUTCOME_RECORDED;
	if (res->pinned)
		return PH_OUTCOME_PINNED;
	if (res->cleared == res->written)
		return PH_OUTCOME_CLEARED;
	return PH_OUTCOME_REPAIRED;
}

static void head(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

_public_ int ph_metrics_format(const struct ph_metrics *m, FILE *f)
{
	head(f, "pmemheal_namespaces", "gauge", "pmem namespaces present.");
	fprintf(f, "pmemheal_namespaces %" PRIu64 "\n", m->namespaces);
	head(f, "pmemheal_ranges", "gauge", "Poisoned ranges in the ledger, by state.");
	for (int s = 0; s < _PH_STATE_MAX; s++)
		fprintf(f, "pmemheal_ranges{state=\"%s\"} %" PRIu64 "\n", ph_state_to_string((enum ph_state)s),
			m->ranges[s]);
	head(f, "pmemheal_ranges_listed", "gauge", "Ranges the kernel lists as poisoned now.");
	fprintf(f, "pmemheal_ranges_listed %" PRIu64 "\n", m->listed);
	head(f, "pmemheal_repairs_pending", "gauge", "Ranges queued for repair.");
	fprintf(f, "pmemheal_repairs_pending %" PRIu64 "\n", m->pending);
	head(f, "pmemheal_repairs_total", "counter", "Range repairs since the daemon started, by result.");
	for (int o = 0; o < _PH_OUTCOME_MAX; o++)
		fprintf(f, "pmemheal_repairs_total{result=\"%s\"} %" PRIu64 "\n", outcome_names[o], m->repairs[o]);
	head(f, "pmemheal_pages_repaired_total", "counter", "Pages rewritten since the daemon started.");
	fprintf(f, "pmemheal_pages_repaired_total %" PRIu64 "\n", m->pages_repaired);
	head(f, "pmemheal_pages_failed_total", "counter", "Pages whose repair failed since the daemon started.");
	fprintf(f, "pmemheal_pages_failed_total %" PRIu64 "\n", m->pages_failed);
	head(f, "pmemheal_bytes_lost_total", "counter", "Bytes of files given up by repairs since the daemon started.");
	fprintf(f, "pmemheal_bytes_lost_total %" PRIu64 "\n", m->bytes_lost);
	head(f, "pmemheal_scans_total", "counter", "Reads of the badblocks lists since the daemon started.");
	fprintf(f, "pmemheal_scans_total %" PRIu64 "\n", m->scans);
	head(f, "pmemheal_events_lost_total", "counter", "Journal entries that could not be written.");
	fprintf(f, "pmemheal_events_lost_total %" PRIu64 "\n", m->events_lost);
	head(f, "pmemheal_event_loop_dispatch_max_seconds", "gauge",
	     "The event loop's longest turn since the daemon started (mapping and repairs run on their own thread).");
	fprintf(f, "pmemheal_event_loop_dispatch_max_seconds %" PRIu64 ".%06" PRIu64 "\n",
		m->loop_dispatch_max_usec / 1000000, m->loop_dispatch_max_usec % 1000000);
	return ferror(f) ? -EIO : 0;
}

_public_ int ph_metrics_write(const struct ph_metrics *m, const char *path)
{
	_cleanup_free_ char *tmp = NULL;
	const char *slash = strrchr(path, '/');
	FILE *f;
	int fd, r;

	/* In the same directory (rename must not cross filesystems), hidden
	 * and not ending in .prom, which the collector would read. */
	if (asprintf(&tmp, "%.*s.%s.XXXXXX", slash ? (int)(slash - path + 1) : 0, path,
		     slash ? slash + 1 : path) < 0)
		return -ENOMEM;
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return negative_errno();
	(void)fchmod(fd, 0644);
	f = fdopen(fd, "w");
	if (!f) {
		r = negative_errno();
		close(fd);
		goto fail;
	}
	r = ph_metrics_format(m, f);
	if (fclose(f) != 0 && r == 0)
		r = negative_errno();
	if (r == 0 && rename(tmp, path) < 0)
		r = negative_errno();
	if (r == 0)
		return 0;
fail:
	(void)unlink(tmp);
	return r;
}
