/* status.h - how a run of lib/run ended, one word for the CLI to map
 *
 * The values follow the exit statuses of DESIGN.md section 1 so the
 * mapping in cli/status.c stays one table; lib/ never exits.
 */
#ifndef DC_RUN_STATUS_H
#define DC_RUN_STATUS_H

enum dc_status {
    DC_STATUS_OK = 0,
    DC_STATUS_FAIL = 1,   /* a rank or the job failed, out of memory */
    DC_STATUS_USAGE = 2,  /* options that cannot work together */
    DC_STATUS_INPUT = 3,  /* bad input files */
    DC_STATUS_LAUNCH = 4, /* ranks could not be started or reached */
    DC_STATUS_GPU = 5,    /* the compute back-end failed */
    DC_STATUS_SIGNAL = 6, /* interrupted: the signal is given beside it */
    DC_STATUS_DRIVER = 7, /* not an end: inputs checked, the caller runs
                             the ranks through mpirun or srun */
};

#endif
