#!/bin/sh
# Command line: --help, --version, unknown commands and options.
. "$DCRUN_SRCDIR/tests/cli/lib.sh"

expect_rc 0 "--help" $DCRUN --help
expect_out '^Usage: dcrun ' "--help shows the usage"
expect_out '^  hosts ' "--help lists hosts"
expect_rc 0 "hosts --help" $DCRUN hosts --help
expect_out '^Usage: dcrun hosts ' "command help"
expect_out '--map-by' "command help lists its options"
expect_rc 0 "help hosts" $DCRUN help hosts
expect_rc 0 "--version" $DCRUN --version
expect_out '^dcrun [0-9]+\.[0-9]+\.[0-9]+$' "version line"
expect_out '^launchers: local' "launchers compiled in"
expect_out '^compute: cpu' "compute back-ends compiled in"
expect_rc 2 "no command" $DCRUN
expect_err '^hint: ' "no command: hint"
expect_rc 2 "unknown command" $DCRUN frobnicate
expect_err "^dcrun: unknown command 'frobnicate'" "unknown command named"
expect_err "^hint: run 'dcrun --help'" "unknown command: hint"
expect_rc 2 "unknown option" $DCRUN hosts --frobnicate
expect_err "^dcrun: hosts: unknown option '--frobnicate'" "unknown option named"
expect_rc 2 "unknown short option" $DCRUN hosts -Z
expect_err "unknown option '-Z'" "unknown short option named"
expect_rc 2 "missing argument" $DCRUN hosts -f
expect_err "needs an argument" "missing argument"
# every command in --help has its own --help
$DCRUN --help | sed -n '/^Commands:/,/^$/p' | awk 'NF>1 && $1 != "Commands:" {print $1}' > "$T_TMP/cmds"
for c in $(cat "$T_TMP/cmds"); do
    expect_rc 0 "$c --help" $DCRUN "$c" --help
done
done_testing
