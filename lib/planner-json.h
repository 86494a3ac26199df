/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A repair plan as JSON, the shape `pmemheal repair --dry-run --json` prints. */
#pragma once

#include <json-c/json.h>

#include "planner.h"

/*
 * {"device":..., "sector":..., "count":..., "mount":..., "can_clear":...,
 *  "reflink":..., "pages":[{"sector":..., "bad_sectors":..., "mode":...,
 *  "owners":[{"path":..., "action":..., "rule":...}], "steps":[...]}]}
 * A new object, never NULL unless out of memory.
 */
struct json_object *ph_plan_to_json(const struct ph_plan *p);
