/* test_comm.c - the optional background sum of lib/comm/comm.h
 * (iallreduce/wait): a comm without it says so, and its callers fall back
 * to allreduce after the fact (comm_loop here; comm_mpi's is exercised
 * under mpirun by tests/cli/train-mpi.sh) */
#include <errno.h>
#include <string.h>

#include "check_main.h"
#include "lib/comm/comm.h"
#include "lib/comm/comm_loop.h"

/* endpoints of a loop of 2 ranks: the hub, rank 0, rank 1 */
static const int endpoints[] = {DC_COMM_HUB, 0, 1};

START_TEST (t_no_background_sum)
{
    dc_error_t err;
    struct dc_comm *hub = dc_comm_loop_create (2, &err);
    ck_assert_msg (hub != NULL, "%s", err.text);
    struct dc_comm *c = hub;
    int who = endpoints[_i];
    if (who != DC_COMM_HUB)
        ck_assert_ptr_nonnull (c = dc_comm_loop_rank (hub, who, &err));
    float buf[4] = {1, 2, 3, 4};

    ck_assert (!dc_comm_can_overlap (c));
    errno = 0;
    ck_assert_ptr_null (dc_comm_iallreduce (c, buf, 4, &err));
    ck_assert_int_eq (errno, ENOTSUP);
    ck_assert_str_eq (err.text, "comm: loop cannot sum in the background");
    /* untouched: nothing was started */
    ck_assert (buf[0] == 1 && buf[3] == 4);
    /* nothing started, nothing to wait for */
    ck_assert_int_eq (dc_comm_wait (c, NULL, &err), 0);
    if (c != hub)
        dc_comm_destroy (c);
    dc_comm_destroy (hub);
}
END_TEST

START_TEST (t_no_comm)
{
    dc_error_t err;
    float buf[1] = {0};

    ck_assert (!dc_comm_can_overlap (NULL));
    errno = 0;
    ck_assert_ptr_null (dc_comm_iallreduce (NULL, buf, 1, &err));
    ck_assert_int_eq (errno, ENOTSUP);
    ck_assert_str_eq (err.text, "comm: (none) cannot sum in the background");
    ck_assert_ptr_null (dc_comm_iallreduce (NULL, buf, 1, NULL));
}
END_TEST

int main (void)
{
    Suite *s = suite_create ("comm");
    TCase *tc = tcase_create ("comm");
    tcase_add_loop_test (tc, t_no_background_sum, 0,
                         sizeof (endpoints) / sizeof (endpoints[0]));
    tcase_add_test (tc, t_no_comm);
    suite_add_tcase (s, tc);
    return dc_check_run (s);
}
