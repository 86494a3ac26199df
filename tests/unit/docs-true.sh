#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# The documentation says what the code does.  Nothing here lists keys,
# actions, verbs or exit statuses by hand: they are asked of the code.
#
#   - The configuration parser is probed with every identifier-like string
#     literal of lib/policy.c as a section, a key, an action and a Source=
#     specifier; what it accepts must be documented in pmemheald.conf(5) or
#     pmemheal.rule(5) (and conf keys in conf/pmemheald.conf), and what the
#     pages document must be accepted.  "Accepted" means the parser's answer
#     differs from its answer to a name nobody would use.
#   - conf/ (as shipped, and with every key uncommented) and every example
#     file in the man pages parse without an error.
#   - pmemheal(1) has a section for every verb of `pmemheal --help`, every
#     option of each verb's --help, and every exit status of cli/cli.h.
# Needs no privileges.  Env: PMEMHEAL (the built binary), top_srcdir.
set -eu

: "${PMEMHEAL:?PMEMHEAL must name the built pmemheal}" "${top_srcdir:?}"
src=$(cd "$top_srcdir" && pwd)
PARSER=$src/lib/policy.c
CONF5=$src/man/pmemheald.conf.5
RULE5=$src/man/pmemheal.rule.5
MAN1=$src/man/pmemheal.1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
failed=0
bad() {
	echo "FAIL: $*"
	failed=1
}

# parse DIR OUT: the parser's messages for the configuration in DIR, one per
# line, "FILE:LINE: message" (or "FILE: message").
parse() {
	"$PMEMHEAL" policy --config-dir "$1" / >/dev/null 2>"$2" || true
}

# msgs OUT FILE LINE: that line's messages, sorted, joined with " | ".
msgs() {
	sed -n "s|^$2:$3: ||p" "$1" | sort | paste -sd'|' -
}

# section FILE TITLE: the lines of a man page's .SH TITLE section.
section() {
	awk -v t="$2" '/^\.SH / { on = ($0 == ".SH " t); next } on' "$1"
}

# ---- candidates, from the parser's source ----------------------------------
grep -o '"[A-Z][A-Za-z0-9]*"' "$PARSER" | tr -d '"' | sort -u >"$T/upper"
grep -o '"[a-z][a-z0-9-]*"' "$PARSER" | tr -d '"' | sort -u >"$T/lower"
[ -s "$T/upper" ] && [ -s "$T/lower" ] || { bad "no string literals in $PARSER: where did the parser go?"; exit 1; }

# probe KIND FILE: which candidates are sections, then keys of those
# sections, in a file of that kind (conf: pmemheald.conf, rule: a rule).
# Writes $T/KIND.sections and $T/KIND.keys ("Section Key" lines).
probe() {
	kind=$1
	rel=$2
	d=$T/probe-$kind
	mkdir -p "$d/rules.d"
	f=$d/$rel
	# Sections: "[S]" then an unused key; compare with an unused section.
	{
		echo "[Zzsection]"
		echo "Zzkey=zzvalue"
		while read -r s; do
			echo "[$s]"
			echo "Zzkey=zzvalue"
		done <"$T/upper"
	} >"$f"
	parse "$d" "$T/out"
	base=$(msgs "$T/out" "$f" 2)
	n=2
	: >"$T/$kind.sections"
	while read -r s; do
		n=$((n + 2))
		want=$(printf '%s' "$base" | sed "s/Zzsection/$s/g")
		[ "$(msgs "$T/out" "$f" $n)" = "$want" ] || echo "$s" >>"$T/$kind.sections"
	done <"$T/upper"

	# Keys: in each known section, every candidate, compared with an
	# unused key of the same section.
	: >"$f"
	: >"$T/map"
	n=0
	while read -r s; do
		echo "[$s]" >>"$f"
		n=$((n + 1))
		for k in Zzkey $(cat "$T/upper"); do
			echo "$k=zzvalue" >>"$f"
			n=$((n + 1))
			echo "$n $s $k" >>"$T/map"
		done
	done <"$T/$kind.sections"
	parse "$d" "$T/out"
	: >"$T/$kind.keys"
	while read -r n s k; do
		if [ "$k" = Zzkey ]; then
			base=$(msgs "$T/out" "$f" "$n")
			continue
		fi
		want=$(printf '%s' "$base" | sed "s/Zzkey/$k/g")
		[ "$(msgs "$T/out" "$f" "$n")" = "$want" ] || echo "$s $k" >>"$T/$kind.keys"
	done <"$T/map"
	rm -rf "$d"
}

probe conf pmemheald.conf
probe rule rules.d/50-probe.rule
for kind in conf rule; do
	[ -s "$T/$kind.keys" ] || bad "the parser accepts no $kind key at all: the probe is broken"
	echo "$kind keys: $(awk '{ printf "%s[%s]%s=", sep, $1, $2; sep = " " }' "$T/$kind.keys")"
done

# Actions and Source= specifiers: one rule file per candidate (each key may
# be set once per file), compared with an unused value.
d=$T/probe-values
mkdir -p "$d/rules.d"
for v in zzaction $(cat "$T/lower"); do
	printf '[Match]\nPath=/nonexistent\n[Repair]\nAction=%s\n' "$v" >"$d/rules.d/a-$v.rule"
done
for c in zz $(echo a b c d e f g h i j k l m n o p q r s t u v w x y z \
	A B C D E F G H I J K L M N O P Q R S T U V W X Y Z); do
	printf '[Match]\nPath=/nonexistent\n[Repair]\nAction=restore\nSource=/x/%%%s\n' "$c" >"$d/rules.d/s-$c.rule"
done
printf '[Match]\nPath=/nonexistent\n[Repair]\nAction=restore\nSource=/x/%%%%\n' >"$d/rules.d/s-pct.rule"
parse "$d" "$T/out"
base=$(msgs "$T/out" "$d/rules.d/a-zzaction.rule" 4)
: >"$T/actions"
while read -r v; do
	want=$(printf '%s' "$base" | sed "s/zzaction/$v/g")
	[ "$(msgs "$T/out" "$d/rules.d/a-$v.rule" 4)" = "$want" ] || echo "$v" >>"$T/actions"
done <"$T/lower"
base=$(msgs "$T/out" "$d/rules.d/s-zz.rule" 5)
: >"$T/specs"
for c in $(echo a b c d e f g h i j k l m n o p q r s t u v w x y z \
	A B C D E F G H I J K L M N O P Q R S T U V W X Y Z) pct; do
	got=$(msgs "$T/out" "$d/rules.d/s-$c.rule" 5)
	if [ $c = pct ]; then
		[ "$got" = "$(printf '%s' "$base" | sed 's/%zz/%%/g')" ] || echo "%%" >>"$T/specs"
	else
		[ "$got" = "$(printf '%s' "$base" | sed "s/%z'/%$c'/g; s/%zz/%$c/g")" ] || echo "%$c" >>"$T/specs"
	fi
done
[ -s "$T/actions" ] || bad "the parser accepts no action at all: the probe is broken"
echo "actions: $(paste -sd' ' "$T/actions")"
echo "Source= specifiers: $(paste -sd' ' "$T/specs")"

# ---- what the parser accepts is documented ---------------------------------
check_keys() { # KIND PAGE
	while read -r s k; do
		awk -v k="$k=" 'prev == ".TP" && $1 ~ /^\.B[IR]?$/ && index($2, k) == 1 { f = 1 } { prev = $0 }
			END { exit !f }' "$2" || bad "$1 key $k= is not documented in ${2##*/} (a .TP tag '.B $k=')"
		grep -Fqi "[$s]" "$2" || bad "$1 section [$s] is not named in ${2##*/}"
	done <"$T/$1.keys"
}
check_keys conf "$CONF5"
check_keys rule "$RULE5"
while read -r s k; do
	awk -v s="[$s]" -v k="#$k=" '/^\[/ { in_s = ($0 == s) } in_s && index($0, k) == 1 { found = 1 }
		END { exit !found }' "$src/conf/pmemheald.conf" ||
		bad "conf/pmemheald.conf does not show $k= (commented out, under [$s])"
done <"$T/conf.keys"
section "$RULE5" ACTIONS >"$T/actions.man"
while read -r v; do
	grep -qx "\\.B $v" "$T/actions.man" || bad "action $v is not documented in the ACTIONS of pmemheal.rule.5"
done <"$T/actions"
while read -r c; do
	grep -Fqx ".B $c" "$RULE5" || bad "Source= specifier $c is not documented in pmemheal.rule.5"
done <"$T/specs"

# ---- what the pages document is accepted -----------------------------------
check_documented() { # KIND PAGE
	grep -Eo '^\.B[IR]? [A-Z][A-Za-z0-9]*=' "$2" | sed 's/^[^ ]* //; s/=$//' | sort -u |
		while read -r k; do
			awk -v k="$k" '$2 == k { f = 1 } END { exit !f }' "$T/$1.keys" ||
				echo "FAIL: ${2##*/} documents $k=, which the parser does not accept in a $1 file"
		done >>"$T/fails"
}
: >"$T/fails"
check_documented conf "$CONF5"
check_documented rule "$RULE5"
grep -Eo '^#?[A-Z][A-Za-z0-9]*=' "$src/conf/pmemheald.conf" | tr -d '#=' | while read -r k; do
	awk -v k="$k" '$2 == k { f = 1 } END { exit !f }' "$T/conf.keys" ||
		echo "FAIL: conf/pmemheald.conf shows $k=, which the parser does not accept"
done >>"$T/fails"
grep -E '^\.B [a-z]+$' "$T/actions.man" | sed 's/^\.B //' | while read -r v; do
	grep -qx "$v" "$T/actions" || echo "FAIL: pmemheal.rule.5 documents action $v, which the parser does not accept"
done >>"$T/fails"
if [ -s "$T/fails" ]; then
	cat "$T/fails"
	failed=1
fi

# ---- shipped files and examples parse cleanly -------------------------------
clean() { # DIR WHAT
	if ! "$PMEMHEAL" policy --config-dir "$1" / >/dev/null 2>"$T/err" || [ -s "$T/err" ]; then
		bad "$2: the parser reports errors:"
		sed 's/^/    /' "$T/err"
	fi
}
clean "$src/conf" "conf/ as shipped"
mkdir -p "$T/unc"
cp -R "$src/conf/." "$T/unc/"
sed 's/^#\([A-Z][A-Za-z0-9]*=\)/\1/' "$src/conf/pmemheald.conf" >"$T/unc/pmemheald.conf"
clean "$T/unc" "conf/pmemheald.conf with every key uncommented"
[ -n "$(ls "$src/conf/rules.d/"*.rule 2>/dev/null)" ] || bad "conf/rules.d has no example rules"

# Examples in the man pages: a .nf block whose first line is a comment
# naming a file under /etc/pmemheal/ is that file; roff escapes undone.
mkdir -p "$T/ex"
: >"$T/examples"
for page in "$CONF5" "$RULE5" "$MAN1"; do
	awk -v dir="$T/ex" -v list="$T/examples" '
		/^\.nf/ { nf = 1; first = 1; next }
		/^\.fi/ { if (out) close(out); nf = 0; out = ""; next }
		nf { gsub(/\\-/, "-"); gsub(/\\e/, "\\") }
		nf && first {
			first = 0
			if ($0 !~ /^# \/etc\/pmemheal\//)
				next
			out = dir "/" substr($2, length("/etc/pmemheal/") + 1)
			d = out
			sub(/\/[^\/]*$/, "", d)
			system("mkdir -p \"" d "\"")
			print out >>list
			next
		}
		nf && out { print >out }' "$page"
done
[ -s "$T/examples" ] || bad "no example files found in the man pages"
echo "man page examples: $(sed "s|^$T/ex/||" "$T/examples" | paste -sd' ' -)"
clean "$T/ex" "the man pages' examples"

# ---- pmemheal(1): verbs, options, exit statuses ----------------------------
"$PMEMHEAL" --help | awk '/^Verbs:/ { on = 1; next } on && /^  [a-z]/ { print $1 }' >"$T/verbs"
[ -s "$T/verbs" ] || bad "pmemheal --help lists no verbs"
while read -r v; do
	grep -qx "\\.SS $v" "$MAN1" || bad "verb $v has no section (.SS $v) in pmemheal.1"
	"$PMEMHEAL" "$v" --help | grep -o -- '--[a-z][a-z-]*' | sort -u | while read -r o; do
		[ "$o" = --help ] && continue
		grep -Fq -- "$(printf '%s' "$o" | sed 's/-/\\-/g')" "$MAN1" ||
			echo "FAIL: $v's option $o is not in pmemheal.1"
	done
done <"$T/verbs" >"$T/fails"
if [ -s "$T/fails" ]; then
	cat "$T/fails"
	failed=1
fi
# The planner's step and mode names, as --dry-run prints them.
for what in STEP MODE; do
	grep -o "\[PH_${what}_[A-Z_]*\] *= *\"[a-z-]*\"" "$src/lib/planner-describe.c" | sed 's/.*"\(.*\)"/\1/' >"$T/names"
	[ -s "$T/names" ] || bad "no PH_${what}_ names in lib/planner-describe.c"
	while read -r n; do
		if [ $what = STEP ]; then pages=$MAN1; else pages="$MAN1 $RULE5"; fi
		# In bold: ".B name", ".BR name ,", ".RB ( name ,"; "\-" read as "-".
		# shellcheck disable=SC2086
		sed 's/\\-/-/g' $pages | grep -Eq "^\.(B|BR|RB [^ ]+) $n( |\$)" ||
			bad "the planner's $(echo $what | tr A-Z a-z) '$n' is not in ${pages##*/}"
	done <"$T/names"
done
# JSON keys of the verbs whose JSON pmemheal(1) spells out (add a verb here
# when its JSON is documented).
for v in map policy repair; do
	grep -o 'json_object_object_add([^,]*, *"[a-z_]*"' "$src/cli/$v.c" | sed 's/.*"\(.*\)"/\1/' | sort -u |
		while read -r k; do
			grep -Fq "\"$k\"" "$MAN1" || echo "FAIL: $v's JSON key \"$k\" is not in pmemheal.1"
		done
done >"$T/fails"
if [ -s "$T/fails" ]; then
	cat "$T/fails"
	failed=1
fi
sed -n 's/^[[:space:]]*EXIT_[A-Z_]* = \([0-9]*\),.*/\1/p' "$src/cli/cli.h" >"$T/codes"
[ -s "$T/codes" ] || bad "no exit statuses found in cli/cli.h"
section "$MAN1" "EXIT STATUS" | sed -n 's/^\.B \([0-9][0-9]*\)$/\1/p' >"$T/codes.man"
while read -r c; do
	grep -qx "$c" "$T/codes.man" || bad "exit status $c (cli/cli.h) is not in pmemheal.1's EXIT STATUS"
done <"$T/codes"
while read -r c; do
	grep -qx "$c" "$T/codes" || bad "pmemheal.1 documents exit status $c, which cli/cli.h does not have"
done <"$T/codes.man"

[ $failed = 0 ] && echo "the documentation matches the code"
exit $failed
