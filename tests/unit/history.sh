#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# 'pmemheal history' on a real journal file: the recorder's entries (through
# record-export, in the journal export format) are made into a journal by
# systemd-journal-remote; history must find exactly ours, filter them by
# path, device and time, and print them as a table and as JSON.  No root,
# no journald.
set -eu

: "${top_builddir:?run through make check}"
PMEMHEAL=${PMEMHEAL:-$top_builddir/cli/pmemheal}
EXPORT=$top_builddir/tests/unit/record-export

skip() { echo "SKIP: $*"; exit 77; }
JR=
for p in /usr/lib/systemd/systemd-journal-remote /lib/systemd/systemd-journal-remote; do
	[ -x "$p" ] && { JR=$p; break; }
done
[ -n "$JR" ] || skip "systemd-journal-remote is not installed (apt-get install systemd-journal-remote)"
command -v jq >/dev/null || skip "jq is not installed (apt-get install jq)"

T=$(mktemp -d "${TMPDIR:-/tmp}/history-test.XXXXXX")
trap 'rm -rf "$T"' EXIT
export TZ=UTC

failed=0
ok() { echo "ok - $1"; }
not_ok() { echo "not ok - $1"; failed=1; }
# check_eq DESC GOT WANT
check_eq() {
	if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1"; printf '  got:  %s\n  want: %s\n' "$2" "$3"; fi
}
# history ARGS...: the JSON array; stderr and status go to $T/err, $T/rc
history() {
	rc=0
	"$PMEMHEAL" history --file "$T/x.journal" "$@" >"$T/out" 2>"$T/err" || rc=$?
	echo "$rc" >"$T/rc"
	cat "$T/out"
}

now=$(date +%s)
t() { echo $(( (now - $1) * 1000000 )); }   # t SECONDS-AGO: usec
nl='
'
"$EXPORT" \
	@"$(t 7300)" detected device=pmem0 sector=210 count=2 range_id=1 ns_id=ns-a -- \
	@"$(t 7299)" mapped device=pmem0 sector=210 count=2 owner=file path=/mnt/a inode=131 \
		offset=8192 length=1024 shared_owners=2 mountpoint=/mnt range_id=1 -- \
	@"$(t 7298)" mapped device=pmem0 sector=210 count=2 owner=file path=/mnt/b inode=132 \
		offset=0 length=1024 shared_owners=2 mountpoint=/mnt range_id=1 -- \
	@"$(t 4000)" planned device=pmem0 sector=208 count=8 path=/mnt/a action=salvage \
		rule=50-salvage.rule:3 -- \
	@"$(t 1800)" repaired device=pmem0 sector=208 count=8 path=/mnt/a offset=8192 \
		action=salvage result=ok bytes_lost=1024 range_id=1 -- \
	@"$(t 1799)" cleared device=pmem0 sector=210 count=2 range_id=1 -- \
	@"$(t 600)" metadata-poison device=pmem1 sector=0 count=8 owner=sb mountpoint=/mnt2 -- \
	@"$(t 300)" device-added device=pmem1 ns_id=ns-b -- \
	@"$(t 200)" raw "MESSAGE=not ours" PMEMHEAL_PATH=/mnt/a PMEMHEAL_DEVICE=pmem0 -- \
	@"$(t 120)" raw MESSAGE_ID=f65017f8f24b44b3878ba3311d103869 "MESSAGE=older writer" \
		PMEMHEAL_DEVICE=pmem9 -- \
	@"$(t 60)" data-lost device=pmem1 sector=64 count=8 "path=/mnt2/new${nl}line" \
		bytes_lost=4096 action=zero -- \
	@"$(t 50)" config-reloaded identifier=pmemheald result=failed \
		"detail=/etc/pmemheal/rules.d/10-x.rule:3: unknown action${nl}(zap)" -- \
	@"$(t 40)" mapped device=pmem0 sector=300 count=8 owner=file "path=$T/rel/f" offset=0 \
	>"$T/x.export"
"$JR" -o "$T/x.journal" - <"$T/x.export" 2>"$T/jr.log" || { cat "$T/jr.log"; exit 1; }

# everything: ours only, oldest first
history --json >"$T/all.json"
check_eq "exit status 0" "$(cat "$T/rc")" 0
check_eq "all events, oldest first, not the foreign entry" \
	"$(jq -c '[.[].event]' "$T/all.json")" \
	'["detected","mapped","mapped","planned","repaired","cleared","metadata-poison","device-added","cleared","data-lost","config-reloaded","mapped"]'
check_eq "an entry without PMEMHEAL_EVENT is named by its MESSAGE_ID" \
	"$(jq -c '.[8] | [.event, .device, .message]' "$T/all.json")" '["cleared","pmem9","older writer"]'

# --path: the exact entry, every field
history --json --path /mnt/a >"$T/a.json"
check_eq "--path /mnt/a: its story, with its range's detected and cleared" "$(jq -c '[.[].event]' "$T/a.json")" \
	'["detected","mapped","planned","repaired","cleared"]'
check_eq "--path /mnt/a: the repaired entry, exactly" \
	"$(jq -c '.[3]' "$T/a.json")" \
	"$(jq -nc --argjson t "$(t 1800)" --arg when "$(date -d "@$((now - 1800))" +%Y-%m-%dT%H:%M:%S+0000)" '{
		time: $when, time_usec: $t, event: "repaired", priority: 5,
		message: "pmem0 sectors 208+8: /mnt/a offset 8192: salvaged, 1024 bytes lost",
		device: "pmem0", sector: 208, count: 8, path: "/mnt/a", offset: 8192, action: "salvage",
		result: "ok", bytes_lost: 1024, range_id: 1, identifier: "pmemheal",
		boot_id: "0b5e7c3d6a2f4e1b9c8d7e6f5a4b3c2d" }')"
check_eq "--path /mnt/a: the mapped entry's fields" \
	"$(jq -c '.[1] | [.owner, .inode, .offset, .length, .shared_owners, .mount, .priority]' "$T/a.json")" \
	'["file",131,8192,1024,2,"/mnt",6]'
check_eq "--path //mnt/./a/ is /mnt/a" "$(history --json --path //mnt/./a/ | jq -c '[.[].event]')" \
	'["detected","mapped","planned","repaired","cleared"]'
check_eq "--path relative to the working directory" \
	"$(cd "$T" && "$PMEMHEAL" history --file "$T/x.journal" --json --path rel/f | jq -c '[.[].path]')" \
	"[\"$T/rel/f\"]"
check_eq "--path with a newline, binary-safe" \
	"$(history --json --path "/mnt2/new${nl}line" | jq -c '[.[] | [.event, .path, .bytes_lost, .priority]]')" \
	'[["data-lost","/mnt2/new\nline",4096,3]]'
check_eq "--path that nothing has: []" "$(history --json --path /nope)" "[]"

# --path over a file with many entries (the rows outgrow their first
# allocation while the range's own entries are added)
args=(@"$(t 7000)" detected device=pmem2 sector=0 count=8 range_id=9 --)
for i in $(seq 1 100); do
	args+=(@"$(t $((6900 - i)))" repaired device=pmem2 sector=0 count=8 path=/mnt3/many offset=0 \
		action=zero result=ok range_id=9 --)
done
args+=(@"$(t 6000)" cleared device=pmem2 sector=0 count=8 range_id=9)
"$EXPORT" "${args[@]}" >"$T/many.export"
"$JR" -o "$T/many.journal" - <"$T/many.export" 2>"$T/jr.log" || { cat "$T/jr.log"; exit 1; }
check_eq "--path with 100 entries: its range's detected first, cleared last" \
	"$("$PMEMHEAL" history --file "$T/many.journal" --json --path /mnt3/many |
		jq -c '[length, .[0].event, .[1].event, .[-1].event]')" '[102,"detected","repaired","cleared"]'

# --device
check_eq "--device pmem1" "$(history --json --device pmem1 | jq -c '[.[].event]')" \
	'["metadata-poison","device-added","data-lost"]'
check_eq "--device /dev/pmem1 is pmem1" "$(history --json --device /dev/pmem1 | jq -c '[.[].event]')" \
	'["metadata-poison","device-added","data-lost"]'
check_eq "--device pmem0 --path /mnt/b: mapped, and its range's events" \
	"$(history --json --device pmem0 --path /mnt/b | jq -c '[.[] | [.event, .inode]]')" \
	'[["detected",null],["mapped",132],["cleared",null]]'
check_eq "--device pmem1 --path /mnt/b: nothing (its range is on pmem0)" \
	"$(history --json --device pmem1 --path /mnt/b)" '[]'

# time
check_eq "--since -1h" "$(history --json --since -1h | jq -c '[.[].event]')" \
	'["repaired","cleared","metadata-poison","device-added","cleared","data-lost","config-reloaded","mapped"]'
check_eq "--since '2h ago' --until '1h ago'" \
	"$(history --json --since '2h ago' --until '1h ago' | jq -c '[.[].event]')" '["planned"]'
check_eq "--since @EPOCH --until @EPOCH, both inclusive" \
	"$(history --json --since "@$((now - 1800))" --until "@$((now - 600))" | jq -c '[.[].event]')" \
	'["repaired","cleared","metadata-poison"]'
check_eq "--since 'YYYY-MM-DD HH:MM:SS'" \
	"$(history --json --since "$(date -d "@$((now - 1799))" '+%Y-%m-%d %H:%M:%S')" --path /mnt/a | jq -c 'length')" 0
check_eq "--until 'YYYY-MM-DD HH:MM:SS' --device pmem0" \
	"$(history --json --until "$(date -d "@$((now - 4000))" '+%Y-%m-%d %H:%M:%S')" --device pmem0 | jq -c '[.[].event]')" \
	'["detected","mapped","mapped","planned"]'
check_eq "--since tomorrow: nothing" "$(history --json --since tomorrow)" "[]"
check_eq "--since tomorrow, as a table" "$(history --since tomorrow)" "no events match"
check_eq "a failed reload is an error from pmemheald, detail binary-safe" \
	"$(jq -c '.[] | select(.event == "config-reloaded") | [.event, .priority, .identifier, .result, .detail]' "$T/all.json")" \
	'["config-reloaded",3,"pmemheald","failed","/etc/pmemheal/rules.d/10-x.rule:3: unknown action\n(zap)"]'

# the table
history --device pmem0 >"$T/table"
cat "$T/table"
check_eq "table: a header" "$(head -n 1 "$T/table" | tr -s ' ')" "TIME EVENT RANGE ACTION RESULT LOST PATH"
check_eq "table: a header and one line per entry" "$(wc -l <"$T/table")" 8
check_eq "table: the repaired line" \
	"$(grep ' repaired ' "$T/table" | tr -s ' ')" \
	"$(date -d "@$((now - 1800))" '+%Y-%m-%d %H:%M:%S') repaired pmem0:208+8 salvage ok 1024 /mnt/a"
check_eq "table: a range event has no path" \
	"$(grep ' detected ' "$T/table" | tr -s ' ' | cut -d' ' -f3-)" "detected pmem0:210+2 - - - -"
check_eq "table: metadata shows its kind" \
	"$(history --device pmem1 | grep metadata-poison | tr -s ' ' | cut -d' ' -f3-)" \
	"metadata-poison pmem1:0+8 - - - [sb]"
check_eq "table: control characters escaped" \
	"$(history --device pmem1 | grep data-lost | tr -s ' ' | cut -d' ' -f3-)" \
	'data-lost pmem1:64+8 zero - 4096 /mnt2/new\nline'

# --directory reads the same journal
mkdir "$T/dir"
cp "$T/x.journal" "$T/dir/"
check_eq "--directory" "$("$PMEMHEAL" history --directory "$T/dir" --json --path /mnt/a | jq -c 'length')" 5

# A name with a terminal escape, a C1 CSI and a byte that is not UTF-8
# (in its own journal, so the counts above stay): escaped in the table,
# valid UTF-8 in --json (U+FFFD for the bad byte).
"$EXPORT" @"$(t 30)" data-lost device=pmem3 sector=8 count=8 "path=/mnt3/"$'\e[2J\xc2\x9b\xff'.dat \
	bytes_lost=4096 action=zero >"$T/evil.export"
"$JR" -o "$T/evil.journal" - <"$T/evil.export" 2>"$T/jr.log" || { cat "$T/jr.log"; exit 1; }
check_eq "table: escapes and bytes that are not UTF-8 shown, not sent" \
	"$("$PMEMHEAL" history --file "$T/evil.journal" | grep data-lost | tr -s ' ' | cut -d' ' -f3-)" \
	'data-lost pmem3:8+8 zero - 4096 /mnt3/\x1b[2J\u009b\xff.dat'
"$PMEMHEAL" history --file "$T/evil.journal" --json >"$T/evil.json"
# (jq itself would repair invalid UTF-8: iconv checks the raw bytes)
if iconv -f UTF-8 -t UTF-8 "$T/evil.json" >/dev/null 2>&1; then
	ok "--json: the document is valid UTF-8"
else
	not_ok "--json: the document is valid UTF-8"
fi
check_eq "--json: the bad byte as U+FFFD" \
	"$(jq -r '.[0].path' "$T/evil.json" | od -An -tx1 | tr -d ' \n')" \
	"$(printf '/mnt3/\033[2J\302\233\357\277\275.dat\n' | od -An -tx1 | tr -d ' \n')"

# errors: usage is 2, a journal that cannot be read 1
err() { # err DESC WANT-STATUS STDERR-REGEX ARGS...
	desc=$1 want=$2 re=$3
	shift 3
	rc=0
	"$PMEMHEAL" history "$@" >/dev/null 2>"$T/err" || rc=$?
	check_eq "$desc: exit $want" "$rc" "$want"
	if grep -Eq -e "$re" "$T/err"; then ok "$desc: says why"; else not_ok "$desc: says why"; cat "$T/err"; fi
}
err "--since garbage" 2 "invalid --since 'last tuesday': expected" --file "$T/x.journal" --since 'last tuesday'
err "--until a date that does not exist" 2 "invalid --until '2026-02-30'" --file "$T/x.journal" --until 2026-02-30
err "--since after --until" 2 "--since is after --until" --file "$T/x.journal" --since -1h --until -2h
err "--device empty" 2 "invalid --device ''" --file "$T/x.journal" --device ''
err "--device /dev/" 2 "invalid --device '/dev/'" --file "$T/x.journal" --device /dev/
err "--path empty" 2 "invalid --path ''" --file "$T/x.journal" --path ''
err "--directory and --file" 2 "exclude each other" --file "$T/x.journal" --directory "$T/dir"
err "an argument" 2 "takes no arguments" --file "$T/x.journal" pmem0
err "an unknown option" 2 "unrecognized option" --file "$T/x.journal" --bogus
err "a missing journal file" 1 "cannot open journal file $T/missing.journal: No such file" --file "$T/missing.journal"

exit $failed
