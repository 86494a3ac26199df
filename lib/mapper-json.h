/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The mapper's answer as JSON, the shape `pmemheal map --json` prints. */
#pragma once

#include <json-c/json.h>

#include "mapper.h"

/*
 * {"device":..., "sectors":..., "mount":..., "fstype":..., "method":...,
 *  "filesystems":[...], "ranges":[{"sector":..,"count":..,"owners":[...]}]}
 * mount/fstype/method describe the one filesystem involved, or are null
 * when there are several (see "filesystems") or none.
 */
int ph_map_to_json(const struct ph_mapper *m, const struct ph_map_result *res, size_t n,
		   struct json_object **ret);
/* One owner, as in "owners". */
int ph_owner_to_json(const struct ph_owner *o, struct json_object **ret);
