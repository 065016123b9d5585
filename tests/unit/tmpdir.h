/* tmpdir.h - a private folder per test (Check fixtures setup/teardown)
 *
 * Define DC_TMP_PREFIX ("/tmp/test_npy") before including; add the fixture
 * with tcase_add_checked_fixture (tc, setup, teardown).  tpath() names a
 * file in it; count_files() counts them; write_file() fills one.
 */
#ifndef DC_TEST_TMPDIR_H
#define DC_TEST_TMPDIR_H

#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DC_UNUSED __attribute__ ((unused))

static char tmpdir[256];

static DC_UNUSED void setup (void)
{
    snprintf (tmpdir, sizeof (tmpdir), "%s.XXXXXX", DC_TMP_PREFIX);
    ck_assert_ptr_nonnull (mkdtemp (tmpdir));
}

static DC_UNUSED void teardown (void)
{
    DIR *d = opendir (tmpdir);
    struct dirent *e;
    char p[512];

    while (d && (e = readdir (d)))
        if (strcmp (e->d_name, ".") && strcmp (e->d_name, "..")) {
            snprintf (p, sizeof (p), "%s/%s", tmpdir, e->d_name);
            unlink (p);
        }
    if (d)
        closedir (d);
    rmdir (tmpdir);
}

static DC_UNUSED const char *tpath (const char *name)
{
    static char buf[4][512];
    static int k;
    char *b = buf[k++ % 4];

    snprintf (b, sizeof (buf[0]), "%s/%s", tmpdir, name);
    return b;
}

static DC_UNUSED int count_files (void)
{
    DIR *d = opendir (tmpdir);
    struct dirent *e;
    int n = 0;

    while (d && (e = readdir (d)))
        if (strcmp (e->d_name, ".") && strcmp (e->d_name, ".."))
            n++;
    if (d)
        closedir (d);
    return n;
}

static DC_UNUSED void write_file (const char *path, const void *p, size_t n)
{
    FILE *f = fopen (path, "wb");

    ck_assert_ptr_nonnull (f);
    if (n)
        ck_assert_uint_eq (fwrite (p, 1, n, f), n);
    fclose (f);
}

#endif
