/* remote.h - the version and probe of every host at once, under the names
 * dcrun check and dcrun probe -f call: lib/run/remote_probe.h does it */
#ifndef DC_CLI_REMOTE_H
#define DC_CLI_REMOTE_H

#include "lib/run/remote_probe.h"

#define REMOTE_RUN_S DC_REMOTE_RUN_S
#define REMOTE_OK DC_REMOTE_OK
#define REMOTE_CONNECT DC_REMOTE_CONNECT
#define REMOTE_NO_DCRUN DC_REMOTE_NO_DCRUN
#define REMOTE_FAILED DC_REMOTE_FAILED
#define REMOTE_TIMEOUT DC_REMOTE_TIMEOUT
#define remote_stage dc_remote_stage
#define remote_result dc_remote_result
#define remote_probe_all dc_remote_probe_all
#define remote_probe_all_env dc_remote_probe_all_env
#define remote_results_free dc_remote_results_free

#endif
