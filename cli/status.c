/* status.c - a lib/run status -> the exit code and its message, once */
#include "status.h"

int cli_status_code (int status, int sig)
{
    static const int code[] = {
        [DC_STATUS_OK] = EXIT_OK,         [DC_STATUS_FAIL] = EXIT_FAIL,
        [DC_STATUS_USAGE] = EXIT_USAGE,   [DC_STATUS_INPUT] = EXIT_INPUT,
        [DC_STATUS_LAUNCH] = EXIT_LAUNCH, [DC_STATUS_GPU] = EXIT_GPU,
    };

    if (status == DC_STATUS_SIGNAL)
        return 128 + (sig > 0 ? sig : 0);
    if (status < 0 || status >= (int)(sizeof (code) / sizeof (code[0])))
        return EXIT_FAIL;
    return code[status];
}

int cli_status (const char *subject, int status, int sig, const dc_error_t *err)
{
    int code = cli_status_code (status, sig);
    if (!err || !err->text[0])
        return code;
    if (!subject)
        return cli_error (code, "%s", err->text);
    return cli_error (code, "%s: %s", subject, err->text);
}
