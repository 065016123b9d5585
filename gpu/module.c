/* module.c - find and load the CUDA back-end module (see module.h) */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "gpu/module.h"
#include "lib/log.h"

static pthread_once_t once = PTHREAD_ONCE_INIT;
static const struct dc_cuda_module *module;
static dc_error_t why;
static int why_errno;

#if HAVE_CUDA
/* The folder of the running program, or "" when unknown. */
static void exe_dir (char *buf, size_t size)
{
    ssize_t n = readlink ("/proc/self/exe", buf, size - 1);
    char *slash;

    if (n <= 0 || (size_t)n >= size - 1) {
        buf[0] = '\0';
        return;
    }
    buf[n] = '\0';
    if ((slash = strrchr (buf, '/')))
        *slash = '\0';
    else
        buf[0] = '\0';
}

static bool under (const char *path, const char *dir)
{
    size_t n = strlen (dir);
    return n && !strncmp (path, dir, n) && (path[n] == '/' || !path[n]);
}

/* Open DIR/dcrun_cuda.so and check it.  1 loaded, 0 no such file (try
 * the next folder), -1 it is there but cannot be used (why says so). */
static int try_dir (const char *dir)
{
    char path[PATH_MAX];
    void *h;
    dc_cuda_module_f get;
    const struct dc_cuda_module *m;

    if (snprintf (path, sizeof (path), "%s/%s", dir, DC_CUDA_MODULE_NAME) >=
        (int)sizeof (path))
        return 0;
    if (access (path, F_OK) < 0)
        return 0;
    dc_debug ("cuda: loading %s", path);
    if (!(h = dlopen (path, RTLD_NOW | RTLD_LOCAL))) {
        errprintf (&why, "cuda: not available: %s", dlerror ());
        return -1;
    }
    /* POSIX dlsym returns void *; the module's entry point is a function */
    *(void **)&get = dlsym (h, DC_CUDA_MODULE_SYMBOL);
    if (!get) {
        errprintf (&why, "cuda: not available: %s", dlerror ());
        dlclose (h);
        return -1;
    }
    m = get ();
    if (!m || !m->version || strcmp (m->version, DCRUN_VERSION) != 0 ||
        m->ops_size != sizeof (struct dc_compute_ops) ||
        m->device_size != sizeof (struct dc_cuda_device) || !m->ops ||
        !m->device_count || !m->device_info) {
        errprintf (&why, "cuda: not available: %s is from dcrun %s, not %s",
                   path, m && m->version ? m->version : "(unknown)",
                   DCRUN_VERSION);
        dlclose (h);
        return -1;
    }
    module = m;
    return 1;
}

static void load (void)
{
    const char *env = getenv (DC_MODULE_DIR_ENV);
    char exe[PATH_MAX], dirs[4][PATH_MAX], list[1024] = "";
    int n = 0, rc = 0;
    size_t len = 0;

    exe_dir (exe, sizeof (exe));
    if (env && env[0]) {
        snprintf (dirs[n++], PATH_MAX, "%s", env);
    } else {
        if (exe[0] && under (exe, DCRUN_BUILD_ROOT))
            snprintf (dirs[n++], PATH_MAX, "%s", DCRUN_BUILD_MODULE_DIR);
        if (exe[0] && DCRUN_MODULE_RELDIR[0])
            snprintf (dirs[n++], PATH_MAX, "%s/%s", exe, DCRUN_MODULE_RELDIR);
        snprintf (dirs[n++], PATH_MAX, "%s", DCRUN_MODULE_INSTDIR);
    }
    for (int i = 0; i < n && rc == 0; i++) {
        rc = try_dir (dirs[i]);
        len += (size_t)snprintf (list + len, sizeof (list) - len, "%s%s",
                                 i ? ", " : "", dirs[i]);
        if (len >= sizeof (list))
            len = sizeof (list) - 1;
    }
    if (rc == 0) {
        errprintf (&why, "cuda: not available: %s not found in %s",
                   DC_CUDA_MODULE_NAME, list);
        why_errno = ENOENT;
    } else if (rc < 0) {
        why_errno = ENOEXEC;
    }
}
#else
static void load (void)
{
    errprintf (&why, "cuda: dcrun was built without the CUDA back-end");
    why_errno = ENOTSUP;
}
#endif

const struct dc_cuda_module *dc_cuda_module_load (dc_error_t *errp)
{
    pthread_once (&once, load);
    if (!module) {
        errno = why_errno;
        errprintf (errp, "%s", why.text);
    }
    return module;
}
