#!/bin/sh
# The man pages render without warnings and document what --help says.
. "$DCRUN_SRCDIR/tests/cli/lib.sh"
command -v groff >/dev/null 2>&1 || skip_all "groff not installed (apt-get install groff-base)"
for page in dcrun.1 dcrun-hostfile.5; do
    f=$DCRUN_SRCDIR/man/$page
    groff -man -ww -z "$f" > "$T_TMP/groff" 2>&1
    if [ $? -eq 0 ] && [ ! -s "$T_TMP/groff" ]; then ok "$page renders without warnings"
    else not_ok "$page: groff warnings"; sed 's/^/#   /' "$T_TMP/groff" | head; fi
    for s in NAME SYNOPSIS DESCRIPTION; do
        grep -q "^\.SH \"*$s" "$f" && ok "$page has $s" || not_ok "$page lacks $s"
    done
done
for s in OPTIONS LAUNCHERS HOSTFILE FILES ENVIRONMENT "EXIT STATUS" EXAMPLES "SEE ALSO"; do
    grep -q "^\.SH \"*$s" "$DCRUN_SRCDIR/man/dcrun.1" && ok "dcrun.1 has $s" || not_ok "dcrun.1 lacks $s"
done
# every command and every long option of --help is in dcrun.1
$DCRUN --help | sed -n '/^Commands:/,/^$/p' | awk 'NF>1 && $1 != "Commands:" {print $1}' > "$T_TMP/cmds"
for c in $(cat "$T_TMP/cmds"); do
    $DCRUN "$c" --help | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u > "$T_TMP/opts"
    for o in $(cat "$T_TMP/opts"); do
        m=$(printf '%s' "$o" | sed 's/-/\\\\-/g')
        if grep -q -- "$m" "$DCRUN_SRCDIR/man/dcrun.1"; then :; else
            not_ok "dcrun.1 does not document $c $o"; continue; fi
    done
    grep -q "^\.SS \"*$c" "$DCRUN_SRCDIR/man/dcrun.1" && ok "dcrun.1 documents $c" || not_ok "dcrun.1 lacks a subsection for $c"
done
done_testing
