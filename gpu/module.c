/* module.c - find and load the CUDA modules (see module.h) */
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
#include "lib/util/log.h"

typedef const struct dc_module_head *(*module_entry_f) (void);

struct module {
    const char *file, *symbol;
    size_t size;
    pthread_once_t once;
    const struct dc_module_head *table;
    dc_error_t why;
    int why_errno;
};

static struct module cuda = {
    .file = DC_CUDA_MODULE_NAME,
    .symbol = DC_CUDA_MODULE_SYMBOL,
    /* .size: sizeof (struct dc_compute_ops), from the caller */
    .once = PTHREAD_ONCE_INIT,
};

static struct module cudart = {
    .file = DC_CUDART_MODULE_NAME,
    .symbol = DC_CUDART_MODULE_SYMBOL,
    .size = sizeof (struct dc_cuda_device),
    .once = PTHREAD_ONCE_INIT,
};

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

/* Open DIR/FILE and check it.  1 loaded, 0 no such file (try the next
 * folder), -1 it is there but cannot be used (m->why says so). */
static int try_dir (struct module *m, const char *dir)
{
    char path[PATH_MAX];
    void *h;
    module_entry_f get;
    const struct dc_module_head *t;

    if (snprintf (path, sizeof (path), "%s/%s", dir, m->file) >=
        (int)sizeof (path))
        return 0;
    if (access (path, F_OK) < 0)
        return 0;
    dc_debug ("cuda: loading %s", path);
    if (!(h = dlopen (path, RTLD_NOW | RTLD_LOCAL))) {
        errprintf (&m->why, "cuda: not available: %s", dlerror ());
        return -1;
    }
    /* POSIX: a function pointer is stored through a void * */
    *(void **)&get = dlsym (h, m->symbol);
    if (!get) {
        errprintf (&m->why, "cuda: not available: %s", dlerror ());
        dlclose (h);
        return -1;
    }
    t = get ();
    if (!t || !t->version || strcmp (t->version, DCRUN_VERSION) != 0 ||
        t->size != m->size) {
        errprintf (&m->why, "cuda: not available: %s is from dcrun %s, not %s",
                   path, t && t->version ? t->version : "(unknown)",
                   DCRUN_VERSION);
        dlclose (h);
        return -1;
    }
    m->table = t;
    return 1;
}

/* Append s to buf (size bytes, len used), cut to fit; the new length. */
static size_t append (char *buf, size_t size, size_t len, const char *s)
{
    size_t n = strlen (s);

    if (len + n >= size)
        n = size - 1 - len;
    memcpy (buf + len, s, n);
    buf[len + n] = '\0';
    return len + n;
}

static void load (struct module *m)
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
        rc = try_dir (m, dirs[i]);
        if (i)
            len = append (list, sizeof (list), len, ", ");
        len = append (list, sizeof (list), len, dirs[i]);
    }
    if (rc == 0) {
        errprintf (&m->why, "cuda: not available: %s not found in %s", m->file,
                   list);
        m->why_errno = ENOENT;
    } else if (rc < 0) {
        m->why_errno = ENOEXEC;
    }
}
#else
static void load (struct module *m)
{
    errprintf (&m->why, "cuda: dcrun was built without the CUDA back-end");
    m->why_errno = ENOTSUP;
}
#endif

static void load_cuda (void)
{
    load (&cuda);
}

static void load_cudart (void)
{
    load (&cudart);
}

static const void *get (struct module *m, void (*once_fn) (void),
                        dc_error_t *errp)
{
    pthread_once (&m->once, once_fn);
    if (!m->table) {
        errno = m->why_errno;
        errprintf (errp, "%s", m->why.text);
    }
    return m->table;
}

const struct dc_cuda_module *dc_cuda_module_load (size_t ops_size,
                                                  dc_error_t *errp)
{
    cuda.size = ops_size; /* the same from every caller */
    return get (&cuda, load_cuda, errp);
}

const struct dc_cudart_module *dc_cudart_module_load (dc_error_t *errp)
{
    return get (&cudart, load_cudart, errp);
}
