/* check_main.h - common main() for the Check unit tests
 *
 * Prints Check's summary line ("100%: Checks: N, Failures: 0, Errors: 0")
 * and exits 0 on success, 1 on failure; a suite that cannot run prints
 * "1..0 # SKIP reason" and exits 77, which meson counts as a skip.
 */
#ifndef DC_CHECK_MAIN_H
#define DC_CHECK_MAIN_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>

static inline int dc_check_run (Suite *s)
{
    SRunner *sr = srunner_create (s);
    int failed;

    srunner_run_all (sr, CK_NORMAL);
    failed = srunner_ntests_failed (sr);
    srunner_free (sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

static inline int dc_check_skip (const char *reason)
{
    printf ("1..0 # SKIP %s\n", reason);
    return 77;
}

/* Path of a file under the source tree (tests get DCRUN_SRCDIR). */
static inline const char *dc_srcpath (const char *rel)
{
    static char buf[4][4096];
    static int k;
    const char *top = getenv ("DCRUN_SRCDIR");
    char *b = buf[k++ % 4];
    snprintf (b, sizeof (buf[0]), "%s/%s", top ? top : ".", rel);
    return b;
}

#endif
