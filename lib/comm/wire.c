/* wire.c - encode and decode every payload of lib/comm/wire.h */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/comm/wire.h"

static void put_f64 (uint8_t *p, double v)
{
    uint64_t u;
    memcpy (&u, &v, sizeof (u));
    dc_put_u64 (p, u);
}

static double get_f64 (const uint8_t *p)
{
    uint64_t u = dc_get_u64 (p);
    double v;
    memcpy (&v, &u, sizeof (v));
    return v;
}

/* The header is there: at least hdr bytes. */
static int need_hdr (const char *what, size_t len, size_t hdr, dc_error_t *errp)
{
    if (len < hdr)
        return errprintf (errp,
                          "%s: %zu bytes, shorter than its %zu-byte header",
                          what, len, hdr);
    return 0;
}

/* rows (<= max) of width bytes are exactly the len - hdr bytes left. */
static int need_rows (const char *what, const char *field, uint64_t rows,
                      uint64_t max, size_t width, size_t left, dc_error_t *errp)
{
    if (rows > max)
        return errprintf (errp, "%s: %s: %llu is over the maximum of %llu",
                          what, field, (unsigned long long)rows,
                          (unsigned long long)max);
    if (width == 0 || width > DC_WIRE_MAX_WIDTH)
        return errprintf (errp, "%s: %s: a row of %zu bytes", what, field,
                          width);
    /* rows <= 2^26 and width <= 2^24: the product fits in 64 bits */
    uint64_t bytes = rows * (uint64_t)width;
    if (bytes != left)
        return errprintf (errp,
                          "%s: %s: %llu rows of %zu bytes need %llu bytes, "
                          "%zu follow the header",
                          what, field, (unsigned long long)rows, width,
                          (unsigned long long)bytes, left);
    return 0;
}

/* need_rows for CHUNK and RESULT, whose width 0 means a header only: the
 * rank reads and writes the rows itself (direct I/O). */
static int need_rows_or_none (const char *what, uint64_t rows, size_t width,
                              size_t left, dc_error_t *errp)
{
    if (width)
        return need_rows (what, "rows", rows, DC_WIRE_MAX_ROWS, width, left,
                          errp);
    if (rows > DC_WIRE_MAX_ROWS)
        return errprintf (errp, "%s: rows: %llu is over the maximum of %llu",
                          what, (unsigned long long)rows,
                          (unsigned long long)DC_WIRE_MAX_ROWS);
    if (left)
        return errprintf (errp,
                          "%s: %zu bytes of rows where the rank reads and "
                          "writes them itself",
                          what, left);
    return 0;
}

static uint8_t *alloc_msg (size_t hdr, size_t body, const void *src,
                           size_t *len)
{
    if (body > SIZE_MAX - hdr)
        return NULL;
    uint8_t *buf = malloc (hdr + body ? hdr + body : 1);
    if (buf && src && body)
        memcpy (buf + hdr, src, body);
    if (buf)
        *len = hdr + body;
    return buf;
}

/* ---- CHUNK ---- */

void dc_wire_chunk_put (uint8_t *buf, const struct dc_wire_chunk *m)
{
    dc_put_u64 (buf, m->id);
    dc_put_u64 (buf + 8, m->row0);
    dc_put_u64 (buf + 16, m->rows);
}

uint8_t *dc_wire_chunk_new (const struct dc_wire_chunk *m, size_t width,
                            size_t *len)
{
    if (m->rows > DC_WIRE_MAX_ROWS || width > DC_WIRE_MAX_WIDTH)
        return NULL;
    uint8_t *buf =
        alloc_msg (DC_CHUNK_HDR, (size_t)m->rows * width, m->data, len);
    if (buf)
        dc_wire_chunk_put (buf, m);
    return buf;
}

int dc_wire_chunk_get (const uint8_t *buf, size_t len, size_t width,
                       struct dc_wire_chunk *m, dc_error_t *errp)
{
    memset (m, 0, sizeof (*m));
    if (need_hdr ("CHUNK", len, DC_CHUNK_HDR, errp) < 0)
        return -1;
    m->id = dc_get_u64 (buf);
    m->row0 = dc_get_u64 (buf + 8);
    m->rows = dc_get_u64 (buf + 16);
    if (m->rows == 0)
        return errprintf (errp, "CHUNK: rows: 0");
    if (need_rows_or_none ("CHUNK", m->rows, width, len - DC_CHUNK_HDR, errp) <
        0)
        return -1;
    if (m->row0 > UINT64_MAX - m->rows)
        return errprintf (errp, "CHUNK: row0: %llu overflows",
                          (unsigned long long)m->row0);
    m->data = buf + DC_CHUNK_HDR;
    return 0;
}

/* ---- RESULT, pipeline micro-batches ---- */

void dc_wire_rows_put (uint8_t *buf, const struct dc_wire_rows *m)
{
    dc_put_u64 (buf, m->id);
    dc_put_u64 (buf + 8, m->row0);
    dc_put_u64 (buf + 16, m->rows);
    put_f64 (buf + 24, m->seconds);
    put_f64 (buf + 32, m->read);
    put_f64 (buf + 40, m->write);
    put_f64 (buf + 48, m->start);
}

static bool is_duration (double s)
{
    return isfinite (s) && s >= 0 && s <= DC_WIRE_MAX_SECONDS;
}

uint8_t *dc_wire_rows_new (const struct dc_wire_rows *m, size_t width,
                           size_t *len)
{
    if (m->rows > DC_WIRE_MAX_ROWS || width > DC_WIRE_MAX_WIDTH)
        return NULL;
    uint8_t *buf =
        alloc_msg (DC_RESULT_HDR, (size_t)m->rows * width, m->data, len);
    if (buf)
        dc_wire_rows_put (buf, m);
    return buf;
}

int dc_wire_rows_get (const uint8_t *buf, size_t len, size_t width,
                      const char *what, struct dc_wire_rows *m,
                      dc_error_t *errp)
{
    if (!what)
        what = "RESULT";
    memset (m, 0, sizeof (*m));
    if (need_hdr (what, len, DC_RESULT_HDR, errp) < 0)
        return -1;
    m->id = dc_get_u64 (buf);
    m->row0 = dc_get_u64 (buf + 8);
    m->rows = dc_get_u64 (buf + 16);
    m->seconds = get_f64 (buf + 24);
    m->read = get_f64 (buf + 32);
    m->write = get_f64 (buf + 40);
    m->start = get_f64 (buf + 48);
    if (m->rows == 0)
        return errprintf (errp, "%s: rows: 0", what);
    if (need_rows_or_none (what, m->rows, width, len - DC_RESULT_HDR, errp) < 0)
        return -1;
    if (m->row0 > UINT64_MAX - m->rows)
        return errprintf (errp, "%s: row0: %llu overflows", what,
                          (unsigned long long)m->row0);
    if (!is_duration (m->seconds) || !is_duration (m->read) ||
        !is_duration (m->write))
        return errprintf (errp, "%s: seconds: %g, %g, %g are not durations",
                          what, m->seconds, m->read, m->write);
    if (!isfinite (m->start) || m->start < 0 || m->start > DC_WIRE_MAX_CLOCK)
        return errprintf (errp, "%s: start: %g is not a clock", what, m->start);
    m->data = buf + DC_RESULT_HDR;
    return 0;
}

/* ---- training step ---- */

void dc_wire_step_put (uint8_t *buf, const struct dc_wire_step *m)
{
    dc_put_u64 (buf, m->attempt);
    dc_put_u64 (buf + 8, m->rows);
    dc_put_u64 (buf + 16, m->scale);
    dc_put_u64 (buf + 24, m->want_grads);
}

uint8_t *dc_wire_step_new (const struct dc_wire_step *m, size_t in_width,
                           size_t target_width, size_t *len)
{
    if (m->rows > DC_WIRE_MAX_ROWS || in_width > DC_WIRE_MAX_WIDTH ||
        target_width > DC_WIRE_MAX_WIDTH)
        return NULL;
    size_t xb = (size_t)m->rows * in_width;
    size_t tb = (size_t)m->rows * target_width;
    uint8_t *buf = alloc_msg (DC_STEP_HDR, xb + tb, NULL, len);
    if (!buf)
        return NULL;
    dc_wire_step_put (buf, m);
    if (m->x && xb)
        memcpy (buf + DC_STEP_HDR, m->x, xb);
    if (m->target && tb)
        memcpy (buf + DC_STEP_HDR + xb, m->target, tb);
    return buf;
}

int dc_wire_step_get (const uint8_t *buf, size_t len, size_t in_width,
                      size_t target_width, uint64_t max_rows,
                      struct dc_wire_step *m, dc_error_t *errp)
{
    memset (m, 0, sizeof (*m));
    if (need_hdr ("step", len, DC_STEP_HDR, errp) < 0)
        return -1;
    m->attempt = dc_get_u64 (buf);
    m->rows = dc_get_u64 (buf + 8);
    m->scale = dc_get_u64 (buf + 16);
    m->want_grads = dc_get_u64 (buf + 24);
    if (max_rows > DC_WIRE_MAX_ROWS)
        max_rows = DC_WIRE_MAX_ROWS;
    if (in_width > DC_WIRE_MAX_WIDTH || target_width > DC_WIRE_MAX_WIDTH)
        return errprintf (errp, "step: a row of %zu + %zu bytes", in_width,
                          target_width);
    if (m->rows > max_rows)
        return errprintf (errp, "step: rows: %llu is over the maximum of %llu",
                          (unsigned long long)m->rows,
                          (unsigned long long)max_rows);
    if (m->rows > 0 &&
        need_rows ("step", "rows", m->rows, max_rows, in_width + target_width,
                   len - DC_STEP_HDR, errp) < 0)
        return -1;
    if (m->rows == 0 && len != DC_STEP_HDR)
        return errprintf (errp, "step: rows: 0 rows in %zu bytes", len);
    if (m->scale == 0 || m->scale > 1000000000 || m->scale < m->rows)
        return errprintf (errp, "step: scale: %llu rows of a batch of %llu",
                          (unsigned long long)m->rows,
                          (unsigned long long)m->scale);
    if (m->want_grads > 1)
        return errprintf (errp, "step: want_grads: %llu is not 0 or 1",
                          (unsigned long long)m->want_grads);
    m->x = buf + DC_STEP_HDR;
    m->target = buf + DC_STEP_HDR + m->rows * in_width;
    return 0;
}

/* ---- training result ---- */

void dc_wire_tresult_put (uint8_t *buf, const struct dc_wire_tresult *m)
{
    dc_put_u64 (buf, m->attempt);
    dc_put_u64 (buf + 8, m->status);
    put_f64 (buf + 16, m->loss);
    put_f64 (buf + 24, m->compute);
    put_f64 (buf + 32, m->allreduce);
    put_f64 (buf + 40, m->read);
}

uint8_t *dc_wire_tresult_new (const struct dc_wire_tresult *m, size_t *len)
{
    size_t n = m->grad ? m->nparams : 0;
    if (n > DC_WIRE_MAX_PARAMS)
        return NULL;
    uint8_t *buf = alloc_msg (DC_TRAIN_RESULT_HDR, n * 4, m->grad, len);
    if (buf)
        dc_wire_tresult_put (buf, m);
    return buf;
}

int dc_wire_tresult_get (const uint8_t *buf, size_t len, size_t nparams,
                         bool grads_optional, struct dc_wire_tresult *m,
                         dc_error_t *errp)
{
    memset (m, 0, sizeof (*m));
    if (need_hdr ("train RESULT", len, DC_TRAIN_RESULT_HDR, errp) < 0)
        return -1;
    m->attempt = dc_get_u64 (buf);
    m->status = dc_get_u64 (buf + 8);
    m->loss = get_f64 (buf + 16);
    m->compute = get_f64 (buf + 24);
    m->allreduce = get_f64 (buf + 32);
    m->read = get_f64 (buf + 40);
    if (m->status > 1)
        return errprintf (errp, "train RESULT: status: %llu is not 0 or 1",
                          (unsigned long long)m->status);
    if (nparams > DC_WIRE_MAX_PARAMS)
        return errprintf (errp,
                          "train RESULT: parameters: %zu is over the "
                          "maximum",
                          nparams);
    size_t left = len - DC_TRAIN_RESULT_HDR;
    if (left == 0 && grads_optional)
        return 0;
    if (left != nparams * 4)
        return errprintf (errp,
                          "train RESULT: gradient: %zu bytes where %zu "
                          "parameters need %zu",
                          left, nparams, nparams * 4);
    m->grad = buf + DC_TRAIN_RESULT_HDR;
    m->nparams = nparams;
    return 0;
}

/* ---- a rank's trained state ---- */

void dc_wire_tstate_put (uint8_t *buf, const struct dc_wire_tstate *m)
{
    dc_put_u64 (buf, m->step);
    dc_put_u64 (buf + 8, m->nvec);
}

int dc_wire_tstate_get (const uint8_t *buf, size_t len, size_t nparams,
                        struct dc_wire_tstate *m, dc_error_t *errp)
{
    memset (m, 0, sizeof (*m));
    if (need_hdr ("train state", len, DC_TSTATE_HDR, errp) < 0)
        return -1;
    m->step = dc_get_u64 (buf);
    m->nvec = dc_get_u64 (buf + 8);
    if (nparams == 0 || nparams > DC_WIRE_MAX_PARAMS)
        return errprintf (errp, "train state: parameters: %zu is not allowed",
                          nparams);
    if (m->nvec < 1 || m->nvec > 3)
        return errprintf (errp, "train state: vectors: %llu is not 1 to 3",
                          (unsigned long long)m->nvec);
    if (m->step > ((uint64_t)1 << 62))
        return errprintf (errp, "train state: step: %llu is out of range",
                          (unsigned long long)m->step);
    size_t left = len - DC_TSTATE_HDR;
    if (left != (size_t)m->nvec * nparams * 4)
        return errprintf (errp,
                          "train state: %zu bytes where %llu x %zu "
                          "parameters need %zu",
                          left, (unsigned long long)m->nvec, nparams,
                          (size_t)m->nvec * nparams * 4);
    m->v = buf + DC_TSTATE_HDR;
    m->nparams = nparams;
    return 0;
}

/* ---- pipeline training step ---- */

void dc_wire_pstep_put (uint8_t *buf, const struct dc_wire_pstep *m)
{
    dc_put_u64 (buf, m->attempt);
    dc_put_u64 (buf + 8, m->rows);
    dc_put_u64 (buf + 16, m->batch);
    dc_put_u64 (buf + 24, m->micro);
}

uint8_t *dc_wire_pstep_new (const struct dc_wire_pstep *m, size_t width,
                            size_t *len)
{
    if (m->rows > DC_WIRE_MAX_ROWS || width > DC_WIRE_MAX_WIDTH)
        return NULL;
    uint8_t *buf =
        alloc_msg (DC_PIPE_STEP_HDR, (size_t)m->rows * width, m->data, len);
    if (buf)
        dc_wire_pstep_put (buf, m);
    return buf;
}

int dc_wire_pstep_get (const uint8_t *buf, size_t len, size_t width,
                       struct dc_wire_pstep *m, dc_error_t *errp)
{
    memset (m, 0, sizeof (*m));
    if (need_hdr ("pipeline step", len, DC_PIPE_STEP_HDR, errp) < 0)
        return -1;
    m->attempt = dc_get_u64 (buf);
    m->rows = dc_get_u64 (buf + 8);
    m->batch = dc_get_u64 (buf + 16);
    m->micro = dc_get_u64 (buf + 24);
    if (m->rows == 0)
        return errprintf (errp, "pipeline step: rows: 0");
    if (need_rows ("pipeline step", "rows", m->rows, DC_WIRE_MAX_ROWS, width,
                   len - DC_PIPE_STEP_HDR, errp) < 0)
        return -1;
    if (m->batch < m->rows || m->batch > 1000000000)
        return errprintf (errp, "pipeline step: batch: %llu rows of %llu",
                          (unsigned long long)m->rows,
                          (unsigned long long)m->batch);
    if (m->micro == 0 || m->micro > m->rows)
        return errprintf (errp,
                          "pipeline step: micro: %llu rows in micro-batches "
                          "of %llu",
                          (unsigned long long)m->rows,
                          (unsigned long long)m->micro);
    m->data = buf + DC_PIPE_STEP_HDR;
    return 0;
}

/* ---- pipeline micro-batch between stages ---- */

void dc_wire_pdata_put (uint8_t *buf, const struct dc_wire_pdata *m)
{
    dc_put_u64 (buf, m->kind);
    dc_put_u64 (buf + 8, m->attempt);
    dc_put_u64 (buf + 16, m->index);
    dc_put_u64 (buf + 24, m->rows);
    dc_put_u64 (buf + 32, m->nmicro);
}

uint8_t *dc_wire_pdata_new (const struct dc_wire_pdata *m, size_t width,
                            size_t *len)
{
    if (m->rows > DC_WIRE_MAX_ROWS || width > DC_WIRE_MAX_WIDTH)
        return NULL;
    uint8_t *buf =
        alloc_msg (DC_PIPE_DATA_HDR, (size_t)m->rows * width, m->data, len);
    if (buf)
        dc_wire_pdata_put (buf, m);
    return buf;
}

int dc_wire_pdata_get (const uint8_t *buf, size_t len, size_t fwd_width,
                       size_t bwd_width, struct dc_wire_pdata *m,
                       dc_error_t *errp)
{
    memset (m, 0, sizeof (*m));
    if (need_hdr ("micro-batch", len, DC_PIPE_DATA_HDR, errp) < 0)
        return -1;
    m->kind = dc_get_u64 (buf);
    m->attempt = dc_get_u64 (buf + 8);
    m->index = dc_get_u64 (buf + 16);
    m->rows = dc_get_u64 (buf + 24);
    m->nmicro = dc_get_u64 (buf + 32);
    if (m->kind != DC_WIRE_FWD && m->kind != DC_WIRE_BWD)
        return errprintf (errp, "micro-batch: kind: %llu is not 1 or 2",
                          (unsigned long long)m->kind);
    if (m->rows == 0)
        return errprintf (errp, "micro-batch: rows: 0");
    if (need_rows ("micro-batch", "rows", m->rows, DC_WIRE_MAX_ROWS,
                   m->kind == DC_WIRE_FWD ? fwd_width : bwd_width,
                   len - DC_PIPE_DATA_HDR, errp) < 0)
        return -1;
    if (m->nmicro == 0 || m->nmicro > DC_WIRE_MAX_ROWS || m->index >= m->nmicro)
        return errprintf (errp, "micro-batch: index: %llu of %llu",
                          (unsigned long long)m->index,
                          (unsigned long long)m->nmicro);
    m->data = buf + DC_PIPE_DATA_HDR;
    return 0;
}

/* ---- REDUCED ---- */

void dc_wire_reduced_put (uint8_t *buf, const struct dc_wire_reduced *m)
{
    dc_put_u64 (buf, m->attempt);
}

uint8_t *dc_wire_reduced_new (const struct dc_wire_reduced *m, size_t *len)
{
    if (m->nparams > DC_WIRE_MAX_PARAMS)
        return NULL;
    uint8_t *buf = alloc_msg (DC_REDUCED_HDR, m->nparams * 4, m->grad, len);
    if (buf)
        dc_wire_reduced_put (buf, m);
    return buf;
}

int dc_wire_reduced_get (const uint8_t *buf, size_t len, size_t nparams,
                         struct dc_wire_reduced *m, dc_error_t *errp)
{
    memset (m, 0, sizeof (*m));
    if (need_hdr ("REDUCED", len, DC_REDUCED_HDR, errp) < 0)
        return -1;
    m->attempt = dc_get_u64 (buf);
    if (nparams > DC_WIRE_MAX_PARAMS)
        return errprintf (errp, "REDUCED: parameters: %zu is over the maximum",
                          nparams);
    if (len - DC_REDUCED_HDR != nparams * 4)
        return errprintf (errp,
                          "REDUCED: gradient: %zu bytes where %zu parameters "
                          "need %zu",
                          len - DC_REDUCED_HDR, nparams, nparams * 4);
    m->grad = buf + DC_REDUCED_HDR;
    m->nparams = nparams;
    return 0;
}

/* ---- JSON ---- */

static cJSON *parse_object (const char *what, const uint8_t *buf, size_t len,
                            dc_error_t *errp)
{
    cJSON *o = buf ? cJSON_ParseWithLength ((const char *)buf, len) : NULL;

    if (!cJSON_IsObject (o)) {
        cJSON_Delete (o);
        errprintf (errp, "%s: not a JSON object", what);
        return NULL;
    }
    return o;
}

/* A string field into dst: 0 absent or copied, -1 wrong type or too long. */
static int get_str (const char *what, const cJSON *o, const char *name,
                    char *dst, size_t size, dc_error_t *errp)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive (o, name);

    if (!v)
        return 0;
    if (!cJSON_IsString (v) || !v->valuestring)
        return errprintf (errp, "%s: %s: not a string", what, name);
    if (strlen (v->valuestring) >= size)
        return errprintf (errp, "%s: %s: longer than %zu characters", what,
                          name, size - 1);
    snprintf (dst, size, "%s", v->valuestring);
    return 0;
}

/* A whole number in [lo, hi]: 0 absent (dst kept) or read, -1 otherwise. */
static int get_int (const char *what, const cJSON *o, const char *name,
                    double lo, double hi, int64_t *dst, dc_error_t *errp)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive (o, name);

    if (!v)
        return 0;
    if (!cJSON_IsNumber (v))
        return errprintf (errp, "%s: %s: not a number", what, name);
    double d = v->valuedouble;
    if (!(d >= lo && d <= hi) || d != floor (d))
        return errprintf (errp, "%s: %s: %g is not a whole number in [%g, %g]",
                          what, name, d, lo, hi);
    *dst = (int64_t)d;
    return 0;
}

/* A finite number >= 0. */
static int get_num (const char *what, const cJSON *o, const char *name,
                    double *dst, dc_error_t *errp)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive (o, name);

    if (!v)
        return 0;
    if (!cJSON_IsNumber (v) || !isfinite (v->valuedouble) || v->valuedouble < 0)
        return errprintf (errp, "%s: %s: not a number >= 0", what, name);
    *dst = v->valuedouble;
    return 0;
}

static char *print (cJSON *j)
{
    char *s = j ? cJSON_PrintUnformatted (j) : NULL;
    cJSON_Delete (j);
    return s;
}

/* cJSON prints a double with 15 digits when that reads back within a
 * relative DBL_EPSILON, which can lose the last bit: a rank would train with
 * another learning rate than the hub.  17 digits always read back exactly. */
static void add_f64 (cJSON *o, const char *name, double v)
{
    char buf[32];

    if (!isfinite (v)) { /* the decoder refuses it with a clear error */
        cJSON_AddNullToObject (o, name);
        return;
    }
    snprintf (buf, sizeof (buf), "%.17g", v);
    cJSON_AddRawToObject (o, name, buf);
}

#define MAX_WIDTH_JSON 16777216.0
#define MAX_PARAMS_JSON ((double)DC_WIRE_MAX_PARAMS)

char *dc_wire_ready_encode (const struct dc_wire_ready *m)
{
    cJSON *j = cJSON_CreateObject ();

    if (!j)
        return NULL;
    if (m->device[0])
        cJSON_AddStringToObject (j, "device", m->device);
    if (m->kernel[0])
        cJSON_AddStringToObject (j, "kernel", m->kernel);
    if (m->inputs >= 0)
        cJSON_AddNumberToObject (j, "inputs", (double)m->inputs);
    if (m->outputs >= 0)
        cJSON_AddNumberToObject (j, "outputs", (double)m->outputs);
    if (m->parameters >= 0)
        cJSON_AddNumberToObject (j, "parameters", (double)m->parameters);
    if (m->io[0])
        cJSON_AddStringToObject (j, "io", m->io);
    if (m->io_why[0])
        cJSON_AddStringToObject (j, "io_why", m->io_why);
    if (m->io_engine[0])
        cJSON_AddStringToObject (j, "io_engine", m->io_engine);
    if (m->clock > 0)
        add_f64 (j, "clock", m->clock);
    return print (j);
}

int dc_wire_ready_decode (const uint8_t *buf, size_t len,
                          struct dc_wire_ready *m, dc_error_t *errp)
{
    cJSON *o;
    int rc = -1;

    memset (m, 0, sizeof (*m));
    m->inputs = m->outputs = m->parameters = -1;
    if (!(o = parse_object ("READY", buf, len, errp)))
        return -1;
    if (get_str ("READY", o, "device", m->device, sizeof (m->device), errp) <
            0 ||
        get_str ("READY", o, "kernel", m->kernel, sizeof (m->kernel), errp) <
            0 ||
        get_int ("READY", o, "inputs", 1, MAX_WIDTH_JSON, &m->inputs, errp) <
            0 ||
        get_int ("READY", o, "outputs", 1, MAX_WIDTH_JSON, &m->outputs, errp) <
            0 ||
        get_int ("READY", o, "parameters", 0, MAX_PARAMS_JSON, &m->parameters,
                 errp) < 0 ||
        get_str ("READY", o, "io", m->io, sizeof (m->io), errp) < 0 ||
        get_str ("READY", o, "io_why", m->io_why, sizeof (m->io_why), errp) <
            0 ||
        get_str ("READY", o, "io_engine", m->io_engine, sizeof (m->io_engine),
                 errp) < 0 ||
        get_num ("READY", o, "clock", &m->clock, errp) < 0)
        goto out;
    if (m->io[0] && strcmp (m->io, "direct") && strcmp (m->io, "relay")) {
        errprintf (errp, "READY: io: '%s' is neither direct nor relay", m->io);
        goto out;
    }
    if (!(m->clock >= 0) || m->clock > DC_WIRE_MAX_CLOCK) {
        errprintf (errp, "READY: clock: %g is not a clock", m->clock);
        goto out;
    }
    m->clock += 0.0; /* -0 is 0: what encode writes (fuzz_wire) */
    rc = 0;
out:
    cJSON_Delete (o);
    return rc;
}

const char *dc_wire_mode_name (enum dc_wire_mode mode)
{
    switch (mode) {
    case DC_WIRE_INFER:
        return "infer";
    case DC_WIRE_TRAIN:
        return "train";
    case DC_WIRE_ECHO:
        return "echo";
    case DC_WIRE_PIPELINE:
        return "pipeline";
    case DC_WIRE_MAP:
        return "map";
    }
    return NULL;
}

static enum dc_wire_mode mode_of (const char *s)
{
    for (int i = DC_WIRE_INFER; i <= DC_WIRE_MAP; i++)
        if (!strcmp (s, dc_wire_mode_name ((enum dc_wire_mode)i)))
            return (enum dc_wire_mode)i;
    return 0;
}

static bool job_io_put (cJSON *j, const struct dc_wire_io *io)
{
    cJSON *t = cJSON_AddObjectToObject (j, "io");

    return t &&
           cJSON_AddStringToObject (t, "mode",
                                    io->required ? "direct" : "auto") &&
           cJSON_AddStringToObject (t, "input", io->input) &&
           cJSON_AddStringToObject (t, "output", io->output) &&
           cJSON_AddStringToObject (t, "probe", io->probe) &&
           cJSON_AddStringToObject (t, "token", io->token) &&
           cJSON_AddNumberToObject (t, "input_size", (double)io->input_size) &&
           cJSON_AddNumberToObject (t, "input_mtime_s",
                                    (double)io->input_mtime_s) &&
           cJSON_AddNumberToObject (t, "input_mtime_ns",
                                    (double)io->input_mtime_ns) &&
           (!io->model[0] ||
            (cJSON_AddStringToObject (t, "model", io->model) &&
             cJSON_AddNumberToObject (t, "model_size",
                                      (double)io->model_size) &&
             cJSON_AddNumberToObject (t, "model_mtime_s",
                                      (double)io->model_mtime_s) &&
             cJSON_AddNumberToObject (t, "model_mtime_ns",
                                      (double)io->model_mtime_ns)));
}

static bool job_tio_put (cJSON *j, const struct dc_wire_tio *io)
{
    cJSON *t = cJSON_AddObjectToObject (j, "tio");

    return t &&
           cJSON_AddStringToObject (t, "mode",
                                    io->required ? "direct" : "auto") &&
           cJSON_AddStringToObject (t, "input", io->input) &&
           cJSON_AddStringToObject (t, "target", io->target) &&
           cJSON_AddNumberToObject (t, "input_size", (double)io->input_size) &&
           cJSON_AddNumberToObject (t, "input_mtime_s",
                                    (double)io->input_mtime_s) &&
           cJSON_AddNumberToObject (t, "input_mtime_ns",
                                    (double)io->input_mtime_ns) &&
           cJSON_AddNumberToObject (t, "target_size",
                                    (double)io->target_size) &&
           cJSON_AddNumberToObject (t, "target_mtime_s",
                                    (double)io->target_mtime_s) &&
           cJSON_AddNumberToObject (t, "target_mtime_ns",
                                    (double)io->target_mtime_ns);
}

char *dc_wire_job_encode (const struct dc_wire_job *m)
{
    const char *mode = dc_wire_mode_name (m->mode);
    cJSON *j, *t;

    if (!mode || !(j = cJSON_CreateObject ()))
        return NULL;
    cJSON_AddStringToObject (j, "mode", mode);
    if (m->mode == DC_WIRE_PIPELINE) {
        const char *task = dc_wire_mode_name (m->task);
        cJSON_AddStringToObject (j, "task", task ? task : "");
    }
    cJSON_AddStringToObject (j, "device", m->device[0] ? m->device : "auto");
    cJSON_AddStringToObject (j, "dtype", m->dtype[0] ? m->dtype : "f32");
    if (m->activation[0])
        cJSON_AddStringToObject (j, "activation", m->activation);
    cJSON_AddNumberToObject (j, "threads", m->threads);
    cJSON_AddNumberToObject (j, "delay_ms", m->delay_ms);
    if (m->mode == DC_WIRE_INFER)
        cJSON_AddNumberToObject (j, "chunk_rows", (double)m->chunk_rows);
    if (m->mode == DC_WIRE_PIPELINE) {
        cJSON_AddNumberToObject (j, "stage", m->stage);
        cJSON_AddNumberToObject (j, "stages", m->stages);
        cJSON_AddNumberToObject (j, "group", m->group);
        cJSON_AddNumberToObject (j, "prev", m->prev);
        cJSON_AddNumberToObject (j, "next", m->next);
    }
    if (((m->mode == DC_WIRE_INFER || m->mode == DC_WIRE_MAP) && m->io.on &&
         !job_io_put (j, &m->io)) ||
        (m->mode == DC_WIRE_TRAIN && m->tio.on && !job_tio_put (j, &m->tio))) {
        cJSON_Delete (j);
        return NULL;
    }
    if (m->has_train) {
        const struct dc_wire_train *w = &m->train;
        t = cJSON_AddObjectToObject (j, "train");
        cJSON_AddStringToObject (t, "loss", w->loss[0] ? w->loss : "mse");
        cJSON_AddStringToObject (t, "optimizer",
                                 w->optimizer[0] ? w->optimizer : "sgd");
        add_f64 (t, "lr", w->lr);
        add_f64 (t, "momentum", w->momentum);
        add_f64 (t, "beta1", w->beta1);
        add_f64 (t, "beta2", w->beta2);
        add_f64 (t, "eps", w->eps);
        cJSON_AddNumberToObject (t, "batch_size", (double)w->batch_size);
        cJSON_AddNumberToObject (t, "seed", (double)w->seed);
        cJSON_AddBoolToObject (t, "resume", w->resume);
    }
    return print (j);
}

/* The model's path under --io direct: absent, or whole and absolute. */
static int job_io_model (const cJSON *t, struct dc_wire_io *io,
                         dc_error_t *errp)
{
    int64_t size = -1, ms = -1, mns = -1;

    if (get_str ("JOB", t, "model", io->model, sizeof (io->model), errp) < 0 ||
        get_int ("JOB", t, "model_size", 0, 9007199254740992.0, &size, errp) <
            0 ||
        get_int ("JOB", t, "model_mtime_s", 0, 9007199254740992.0, &ms, errp) <
            0 ||
        get_int ("JOB", t, "model_mtime_ns", 0, 999999999, &mns, errp) < 0)
        return -1;
    if (!io->model[0])
        return 0;
    if (io->model[0] != '/' || !io->required || size < 0 || ms < 0 || mns < 0)
        return errprintf (errp, "JOB: io: model: an absolute path, with its "
                                "size and time, under --io direct only");
    io->model_size = (uint64_t)size;
    io->model_mtime_s = ms;
    io->model_mtime_ns = mns;
    return 0;
}

/* "io" of an infer JOB: absent (relay), or every field, paths absolute. */
static int job_io (const cJSON *o, struct dc_wire_io *io, dc_error_t *errp)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive (o, "io");
    char mode[8] = "";
    int64_t size = -1, ms = -1, mns = -1;

    if (!t)
        return 0;
    if (!cJSON_IsObject (t))
        return errprintf (errp, "JOB: io: not an object");
    if (get_str ("JOB", t, "mode", mode, sizeof (mode), errp) < 0 ||
        get_str ("JOB", t, "input", io->input, sizeof (io->input), errp) < 0 ||
        get_str ("JOB", t, "output", io->output, sizeof (io->output), errp) <
            0 ||
        get_str ("JOB", t, "probe", io->probe, sizeof (io->probe), errp) < 0 ||
        get_str ("JOB", t, "token", io->token, sizeof (io->token), errp) < 0 ||
        get_int ("JOB", t, "input_size", 0, 9007199254740992.0, &size, errp) <
            0 ||
        get_int ("JOB", t, "input_mtime_s", 0, 9007199254740992.0, &ms, errp) <
            0 ||
        get_int ("JOB", t, "input_mtime_ns", 0, 999999999, &mns, errp) < 0)
        return -1;
    if (strcmp (mode, "direct") && strcmp (mode, "auto"))
        return errprintf (errp, "JOB: io: mode '%s' is neither direct nor auto",
                          mode);
    if (io->input[0] != '/' || io->output[0] != '/' || io->probe[0] != '/' ||
        !io->token[0] || size < 0 || ms < 0 || mns < 0)
        return errprintf (errp, "JOB: io: absolute paths, a token, the "
                                "input's size and time are required");
    io->on = true;
    io->required = !strcmp (mode, "direct");
    io->input_size = (uint64_t)size;
    io->input_mtime_s = ms;
    io->input_mtime_ns = mns;
    return job_io_model (t, io, errp);
}

/* "tio" of a train JOB: absent (relayed rows), or every field, paths
 * absolute. */
static int job_tio (const cJSON *o, struct dc_wire_tio *io, dc_error_t *errp)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive (o, "tio");
    char mode[8] = "";
    int64_t v[6] = {-1, -1, -1, -1, -1, -1};
    static const char *const key[6] = {"input_size",     "input_mtime_s",
                                       "input_mtime_ns", "target_size",
                                       "target_mtime_s", "target_mtime_ns"};

    if (!t)
        return 0;
    if (!cJSON_IsObject (t))
        return errprintf (errp, "JOB: tio: not an object");
    if (get_str ("JOB", t, "mode", mode, sizeof (mode), errp) < 0 ||
        get_str ("JOB", t, "input", io->input, sizeof (io->input), errp) < 0 ||
        get_str ("JOB", t, "target", io->target, sizeof (io->target), errp) < 0)
        return -1;
    for (int i = 0; i < 6; i++)
        if (get_int ("JOB", t, key[i], 0,
                     i % 3 == 2 ? 999999999 : 9007199254740992.0, &v[i],
                     errp) < 0)
            return -1;
    if (strcmp (mode, "direct") && strcmp (mode, "auto"))
        return errprintf (
            errp, "JOB: tio: mode '%s' is neither direct nor auto", mode);
    if (io->input[0] != '/' || io->target[0] != '/' || v[0] < 0 || v[1] < 0 ||
        v[2] < 0 || v[3] < 0 || v[4] < 0 || v[5] < 0)
        return errprintf (errp, "JOB: tio: absolute paths and the files' "
                                "sizes and times are required");
    io->on = true;
    io->required = !strcmp (mode, "direct");
    io->input_size = (uint64_t)v[0];
    io->input_mtime_s = v[1];
    io->input_mtime_ns = v[2];
    io->target_size = (uint64_t)v[3];
    io->target_mtime_s = v[4];
    io->target_mtime_ns = v[5];
    return 0;
}

static int job_train (const cJSON *o, struct dc_wire_train *w, dc_error_t *errp)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive (o, "train");
    int64_t bs = 0, seed = 0;

    if (!cJSON_IsObject (t))
        return errprintf (errp, "JOB: train: not an object");
    if (get_str ("JOB", t, "loss", w->loss, sizeof (w->loss), errp) < 0 ||
        get_str ("JOB", t, "optimizer", w->optimizer, sizeof (w->optimizer),
                 errp) < 0 ||
        get_num ("JOB", t, "lr", &w->lr, errp) < 0 ||
        get_num ("JOB", t, "momentum", &w->momentum, errp) < 0 ||
        get_num ("JOB", t, "beta1", &w->beta1, errp) < 0 ||
        get_num ("JOB", t, "beta2", &w->beta2, errp) < 0 ||
        get_num ("JOB", t, "eps", &w->eps, errp) < 0 ||
        get_int ("JOB", t, "batch_size", 1, 1e9, &bs, errp) < 0 ||
        get_int ("JOB", t, "seed", 0, 9007199254740992.0, &seed, errp) < 0)
        return -1;
    const cJSON *r = cJSON_GetObjectItemCaseSensitive (t, "resume");
    if (r && !cJSON_IsBool (r))
        return errprintf (errp, "JOB: resume: not true or false");
    w->resume = cJSON_IsTrue (r);
    if (bs == 0)
        return errprintf (errp, "JOB: batch_size: missing");
    w->batch_size = (uint64_t)bs;
    w->seed = (uint64_t)seed;
    if (!w->loss[0])
        snprintf (w->loss, sizeof (w->loss), "mse");
    if (!w->optimizer[0])
        snprintf (w->optimizer, sizeof (w->optimizer), "sgd");
    if (strcmp (w->loss, "mse") != 0 && strcmp (w->loss, "xent") != 0)
        return errprintf (errp, "JOB: loss: unknown '%s'", w->loss);
    if (strcmp (w->optimizer, "sgd") != 0 && strcmp (w->optimizer, "adam") != 0)
        return errprintf (errp, "JOB: optimizer: unknown '%s'", w->optimizer);
    return 0;
}

int dc_wire_job_decode (const uint8_t *buf, size_t len, struct dc_wire_job *m,
                        dc_error_t *errp)
{
    char mode[16] = "", task[16] = "";
    int64_t threads = 0, delay = 0, chunk = 0;
    int64_t stage = -1, stages = -1, group = 0, prev = -2, next = -2;
    cJSON *o;
    int rc = -1;

    memset (m, 0, sizeof (*m));
    if (!(o = parse_object ("JOB", buf, len, errp)))
        return -1;
    if (get_str ("JOB", o, "mode", mode, sizeof (mode), errp) < 0 ||
        get_str ("JOB", o, "task", task, sizeof (task), errp) < 0 ||
        get_str ("JOB", o, "device", m->device, sizeof (m->device), errp) < 0 ||
        get_str ("JOB", o, "dtype", m->dtype, sizeof (m->dtype), errp) < 0 ||
        get_str ("JOB", o, "activation", m->activation, sizeof (m->activation),
                 errp) < 0 ||
        get_int ("JOB", o, "threads", 0, 4096, &threads, errp) < 0 ||
        get_int ("JOB", o, "delay_ms", 0, 3600e3, &delay, errp) < 0 ||
        get_int ("JOB", o, "chunk_rows", 0, (double)DC_WIRE_MAX_ROWS, &chunk,
                 errp) < 0)
        goto out;
    if (!(m->mode = mode_of (mode))) {
        errprintf (errp, "JOB: mode: unknown '%s'", mode);
        goto out;
    }
    m->threads = (int)threads;
    m->delay_ms = (int)delay;
    if (m->mode == DC_WIRE_INFER) /* the only mode that sends it */
        m->chunk_rows = (uint64_t)chunk;
    m->stage = m->stages = m->prev = m->next = -1;
    if (m->mode == DC_WIRE_PIPELINE) {
        m->task = mode_of (task);
        if (m->task != DC_WIRE_INFER && m->task != DC_WIRE_TRAIN) {
            errprintf (errp, "JOB: task: unknown pipeline task '%s'", task);
            goto out;
        }
        if (get_int ("JOB", o, "stage", 0, 1 << 20, &stage, errp) < 0 ||
            get_int ("JOB", o, "stages", 1, 1 << 20, &stages, errp) < 0 ||
            get_int ("JOB", o, "group", 0, 1 << 20, &group, errp) < 0 ||
            get_int ("JOB", o, "prev", -1, 1 << 20, &prev, errp) < 0 ||
            get_int ("JOB", o, "next", -1, 1 << 20, &next, errp) < 0)
            goto out;
        if (stage < 0 || stages < 0 || stage >= stages || prev < -1 ||
            next < -1 || (stage == 0) != (prev < 0) ||
            (stage == stages - 1) != (next < 0)) {
            errprintf (errp,
                       "JOB: stage: %lld of %lld without valid "
                       "neighbours",
                       (long long)stage, (long long)stages);
            goto out;
        }
        m->stage = (int)stage;
        m->stages = (int)stages;
        m->group = (int)group;
        m->prev = (int)prev;
        m->next = (int)next;
    }
    m->has_train = m->mode == DC_WIRE_TRAIN ||
                   (m->mode == DC_WIRE_PIPELINE && m->task == DC_WIRE_TRAIN);
    if (m->has_train && job_train (o, &m->train, errp) < 0)
        goto out;
    if ((m->mode == DC_WIRE_INFER || m->mode == DC_WIRE_MAP) &&
        job_io (o, &m->io, errp) < 0)
        goto out;
    if (m->mode == DC_WIRE_TRAIN && job_tio (o, &m->tio, errp) < 0)
        goto out;
    if (!m->device[0])
        snprintf (m->device, sizeof (m->device), "auto");
    if (!m->dtype[0])
        snprintf (m->dtype, sizeof (m->dtype), "f32");
    rc = 0;
out:
    cJSON_Delete (o);
    return rc;
}

/* ---- dcrun map ---- */

char *dc_wire_map_encode (const struct dc_wire_map *m)
{
    cJSON *j = cJSON_CreateObject (), *a, *sh;

    if (!j || m->argc < 1 || !m->argv || m->ndim < 0 ||
        m->ndim > DC_WIRE_MAP_MAXDIM) {
        cJSON_Delete (j);
        return NULL;
    }
    a = cJSON_AddArrayToObject (j, "argv");
    for (int i = 0; i < m->argc; i++)
        cJSON_AddItemToArray (a, cJSON_CreateString (m->argv[i]));
    cJSON_AddBoolToObject (j, "per_chunk", m->per_chunk);
    cJSON_AddNumberToObject (j, "rows", (double)m->rows);
    cJSON_AddStringToObject (j, "descr", m->descr);
    sh = cJSON_AddArrayToObject (j, "shape");
    for (int i = 0; i < m->ndim; i++)
        cJSON_AddItemToArray (sh, cJSON_CreateNumber ((double)m->shape[i]));
    cJSON_AddNumberToObject (j, "row_bytes", (double)m->row_bytes);
    add_f64 (j, "chunk_timeout", m->chunk_timeout);
    if (m->files)
        cJSON_AddBoolToObject (j, "files", true);
    return print (j);
}

void dc_wire_map_free (struct dc_wire_map *m)
{
    if (m && m->argv) {
        for (int i = 0; i < m->argc; i++)
            free (m->argv[i]);
        free (m->argv);
        m->argv = NULL;
        m->argc = 0;
    }
}

/* A dtype as .npy headers write it: printable, no quote or backslash. */
static bool descr_ok (const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (*s < 0x21 || *s > 0x7e || *s == '\'' || *s == '"' || *s == '\\')
            return false;
    return true;
}

int dc_wire_map_decode (const uint8_t *buf, size_t len, struct dc_wire_map *m,
                        dc_error_t *errp)
{
    cJSON *o;
    const cJSON *a, *sh, *pc;
    int64_t rows = 0, rb = 0;
    int rc = -1;

    memset (m, 0, sizeof (*m));
    if (!(o = parse_object ("MAP", buf, len, errp)))
        return -1;
    a = cJSON_GetObjectItemCaseSensitive (o, "argv");
    if (!cJSON_IsArray (a)) {
        errprintf (errp, "MAP: argv: not an array");
        goto out;
    }
    int n = cJSON_GetArraySize (a);
    if (n < 1 || n > DC_WIRE_MAP_MAXARGS) {
        errprintf (errp, "MAP: argv: %d arguments, expected 1 to %d", n,
                   DC_WIRE_MAP_MAXARGS);
        goto out;
    }
    if (!(m->argv = calloc ((size_t)n + 1, sizeof (char *)))) {
        errprintf (errp, "MAP: out of memory");
        goto out;
    }
    const cJSON *e;
    cJSON_ArrayForEach (e, a)
    {
        if (!cJSON_IsString (e) || !e->valuestring ||
            strlen (e->valuestring) >= DC_WIRE_MAP_MAXARG) {
            errprintf (errp,
                       "MAP: argv: argument %d: not a string under %d "
                       "bytes",
                       m->argc, DC_WIRE_MAP_MAXARG);
            goto out;
        }
        if (!(m->argv[m->argc] = strdup (e->valuestring))) {
            errprintf (errp, "MAP: out of memory");
            goto out;
        }
        m->argc++;
    }
    pc = cJSON_GetObjectItemCaseSensitive (o, "per_chunk");
    if (pc && !cJSON_IsBool (pc)) {
        errprintf (errp, "MAP: per_chunk: not true or false");
        goto out;
    }
    m->per_chunk = cJSON_IsTrue (pc);
    pc = cJSON_GetObjectItemCaseSensitive (o, "files");
    if (pc && !cJSON_IsBool (pc)) {
        errprintf (errp, "MAP: files: not true or false");
        goto out;
    }
    m->files = cJSON_IsTrue (pc);
    if (get_int ("MAP", o, "rows", 1, 9007199254740992.0, &rows, errp) < 0 ||
        get_int ("MAP", o, "row_bytes", 1, (double)DC_WIRE_MAX_WIDTH, &rb,
                 errp) < 0 ||
        get_str ("MAP", o, "descr", m->descr, sizeof (m->descr), errp) < 0 ||
        get_num ("MAP", o, "chunk_timeout", &m->chunk_timeout, errp) < 0)
        goto out;
    if (rows == 0 || rb == 0) {
        errprintf (errp, "MAP: %s: missing", rows == 0 ? "rows" : "row_bytes");
        goto out;
    }
    if (!descr_ok (m->descr)) {
        errprintf (errp, "MAP: descr: missing or not a dtype");
        goto out;
    }
    m->rows = (uint64_t)rows;
    m->row_bytes = (uint64_t)rb;
    sh = cJSON_GetObjectItemCaseSensitive (o, "shape");
    if (sh && !cJSON_IsArray (sh)) {
        errprintf (errp, "MAP: shape: not an array");
        goto out;
    }
    if (cJSON_GetArraySize (sh) > DC_WIRE_MAP_MAXDIM) {
        errprintf (errp, "MAP: shape: more than %d dimensions",
                   DC_WIRE_MAP_MAXDIM);
        goto out;
    }
    cJSON_ArrayForEach (e, sh)
    {
        double d = cJSON_IsNumber (e) ? e->valuedouble : -1;
        if (!(d >= 0 && d <= (double)DC_WIRE_MAX_WIDTH) || d != floor (d)) {
            errprintf (errp,
                       "MAP: shape: dimension %d: not a whole number "
                       "in [0, %llu]",
                       m->ndim, (unsigned long long)DC_WIRE_MAX_WIDTH);
            goto out;
        }
        m->shape[m->ndim++] = (int64_t)d;
    }
    rc = 0;
out:
    if (rc < 0)
        dc_wire_map_free (m);
    cJSON_Delete (o);
    return rc;
}

size_t dc_wire_mapres_hdr_len (const struct dc_wire_mapres *m)
{
    return DC_MAPRES_HDR + (size_t)m->ndim * 8 + (m->text_len + 7) / 8 * 8;
}

void dc_wire_mapres_put (uint8_t *buf, const struct dc_wire_mapres *m)
{
    size_t off = DC_MAPRES_HDR, pad = (m->text_len + 7) / 8 * 8;

    dc_put_u64 (buf, m->id);
    dc_put_u64 (buf + 8, m->row0);
    dc_put_u64 (buf + 16, m->rows);
    put_f64 (buf + 24, m->seconds);
    dc_put_u64 (buf + 32, m->status);
    dc_put_u64 (buf + 40, m->row_bytes);
    dc_put_u64 (buf + 48, (uint64_t)m->ndim);
    dc_put_u64 (buf + 56, m->text_len);
    for (int i = 0; i < m->ndim; i++, off += 8)
        dc_put_u64 (buf + off, (uint64_t)m->shape[i]);
    memset (buf + off, 0, pad);
    if (m->text_len)
        memcpy (buf + off, m->text, m->text_len);
}

uint8_t *dc_wire_mapres_new (const struct dc_wire_mapres *m, size_t *len)
{
    if (m->rows > DC_WIRE_MAX_ROWS || m->row_bytes > DC_WIRE_MAX_WIDTH ||
        m->ndim < 0 || m->ndim > DC_WIRE_MAP_MAXDIM ||
        m->text_len > DC_WIRE_MAP_MAXTEXT)
        return NULL;
    size_t hdr = dc_wire_mapres_hdr_len (m);
    size_t body = m->status ? 0 : (size_t)(m->rows * m->row_bytes);
    uint8_t *buf = alloc_msg (hdr, body, m->data, len);
    if (buf)
        dc_wire_mapres_put (buf, m);
    return buf;
}

int dc_wire_mapres_get (const uint8_t *buf, size_t len,
                        struct dc_wire_mapres *m, dc_error_t *errp)
{
    memset (m, 0, sizeof (*m));
    if (need_hdr ("RESULT", len, DC_MAPRES_HDR, errp) < 0)
        return -1;
    m->id = dc_get_u64 (buf);
    m->row0 = dc_get_u64 (buf + 8);
    m->rows = dc_get_u64 (buf + 16);
    m->seconds = get_f64 (buf + 24);
    m->status = dc_get_u64 (buf + 32);
    m->row_bytes = dc_get_u64 (buf + 40);
    uint64_t ndim = dc_get_u64 (buf + 48), tl = dc_get_u64 (buf + 56);
    if (!isfinite (m->seconds) || m->seconds < 0 ||
        m->seconds > DC_WIRE_MAX_SECONDS)
        return errprintf (errp, "RESULT: seconds: not a duration");
    if (m->status > DC_MAPRES_HELD)
        return errprintf (errp, "RESULT: status: %llu is not 0 to 3",
                          (unsigned long long)m->status);
    if (ndim > DC_WIRE_MAP_MAXDIM)
        return errprintf (errp, "RESULT: ndim: %llu is over the maximum of %d",
                          (unsigned long long)ndim, DC_WIRE_MAP_MAXDIM);
    if (tl > DC_WIRE_MAP_MAXTEXT)
        return errprintf (errp, "RESULT: text: %llu bytes, over %d",
                          (unsigned long long)tl, DC_WIRE_MAP_MAXTEXT);
    m->ndim = (int)ndim;
    m->text_len = (size_t)tl;
    size_t hdr = dc_wire_mapres_hdr_len (m);
    if (len < hdr)
        return errprintf (errp,
                          "RESULT: %zu bytes, shorter than its %zu-byte "
                          "header, shape and text",
                          len, hdr);
    for (int i = 0; i < m->ndim; i++) {
        uint64_t d = dc_get_u64 (buf + DC_MAPRES_HDR + 8 * (size_t)i);
        if (d > DC_WIRE_MAX_WIDTH)
            return errprintf (errp, "RESULT: shape: dimension %d: %llu", i,
                              (unsigned long long)d);
        m->shape[i] = (int64_t)d;
    }
    m->text = (const char *)buf + DC_MAPRES_HDR + 8 * (size_t)m->ndim;
    if (memchr (m->text, '\0', m->text_len))
        return errprintf (errp, "RESULT: text: holds a NUL byte");
    for (size_t i = m->text_len; i < (m->text_len + 7) / 8 * 8; i++)
        if (m->text[i] != '\0')
            return errprintf (errp, "RESULT: text: padding is not zero");
    if (m->row0 > UINT64_MAX - m->rows)
        return errprintf (errp, "RESULT: row0: %llu overflows",
                          (unsigned long long)m->row0);
    if (m->status == 1) {
        if (len != hdr || m->row_bytes || m->ndim)
            return errprintf (errp,
                              "RESULT: a failed chunk with rows or a shape");
        return 0;
    }
    if (m->status == DC_MAPRES_WRITTEN || m->status == DC_MAPRES_HELD) {
        if (len != hdr || m->rows > DC_WIRE_MAX_ROWS || !m->text_len)
            return errprintf (errp, "RESULT: rows written by the rank "
                                    "(or held) with rows in the message, or "
                                    "no dtype");
        m->data = NULL;
        return 0;
    }
    if (m->row_bytes == 0) { /* rows of no bytes: (rows, 0) */
        if (m->rows > DC_WIRE_MAX_ROWS || len != hdr)
            return errprintf (errp,
                              "RESULT: rows: rows of 0 bytes with %zu "
                              "bytes after the header",
                              len - hdr);
        m->data = buf + hdr;
        return 0;
    }
    if (need_rows ("RESULT", "rows", m->rows, DC_WIRE_MAX_ROWS,
                   (size_t)m->row_bytes, len - hdr, errp) < 0)
        return -1;
    m->data = buf + hdr;
    return 0;
}

/* ---- dcrun map --io direct: where the output's rows go ---- */

char *dc_wire_mapout_encode (const struct dc_wire_mapout *m)
{
    cJSON *j = cJSON_CreateObject (), *sh;

    if (!j || m->ndim < 0 || m->ndim > DC_WIRE_MAP_MAXDIM) {
        cJSON_Delete (j);
        return NULL;
    }
    cJSON_AddStringToObject (j, "descr", m->descr);
    sh = cJSON_AddArrayToObject (j, "shape");
    for (int i = 0; i < m->ndim; i++)
        cJSON_AddItemToArray (sh, cJSON_CreateNumber ((double)m->shape[i]));
    cJSON_AddNumberToObject (j, "row_bytes", (double)m->row_bytes);
    cJSON_AddNumberToObject (j, "offset", (double)m->offset);
    return print (j);
}

int dc_wire_mapout_decode (const uint8_t *buf, size_t len,
                           struct dc_wire_mapout *m, dc_error_t *errp)
{
    cJSON *o;
    const cJSON *sh, *e;
    int64_t rb = -1, off = -1;
    int rc = -1;

    memset (m, 0, sizeof (*m));
    if (!(o = parse_object ("OUT", buf, len, errp)))
        return -1;
    if (get_str ("OUT", o, "descr", m->descr, sizeof (m->descr), errp) < 0 ||
        get_int ("OUT", o, "row_bytes", 0, (double)DC_WIRE_MAX_WIDTH, &rb,
                 errp) < 0 ||
        get_int ("OUT", o, "offset", 1, 65536 + 12, &off, errp) < 0)
        goto out;
    if (!descr_ok (m->descr) || rb < 0 || off < 0) {
        errprintf (errp, "OUT: descr, row_bytes and offset are required");
        goto out;
    }
    sh = cJSON_GetObjectItemCaseSensitive (o, "shape");
    if (!cJSON_IsArray (sh) || cJSON_GetArraySize (sh) > DC_WIRE_MAP_MAXDIM) {
        errprintf (errp, "OUT: shape: not an array of at most %d dimensions",
                   DC_WIRE_MAP_MAXDIM);
        goto out;
    }
    cJSON_ArrayForEach (e, sh)
    {
        double d = cJSON_IsNumber (e) ? e->valuedouble : -1;
        if (!(d >= 0 && d <= (double)DC_WIRE_MAX_WIDTH) || d != floor (d)) {
            errprintf (errp, "OUT: shape: dimension %d: not a whole number",
                       m->ndim);
            goto out;
        }
        m->shape[m->ndim++] = (int64_t)d;
    }
    m->row_bytes = (uint64_t)rb;
    m->offset = (uint64_t)off;
    rc = 0;
out:
    cJSON_Delete (o);
    return rc;
}

/* ---- dcrun map --files ---- */

#define PAD8(n) (((n) + 7) / 8 * 8)

static bool zeros (const uint8_t *p, size_t n)
{
    while (n--)
        if (*p++)
            return false;
    return true;
}

bool dc_wire_file_name_ok (const char *name, size_t len)
{
    if (!name || len == 0 || len > 255 || memchr (name, '/', len) ||
        memchr (name, '\0', len))
        return false;
    return !(len == 1 && name[0] == '.') &&
           !(len == 2 && name[0] == '.' && name[1] == '.');
}

uint8_t *dc_wire_files_new (const struct dc_wire_files *m, size_t *len)
{
    uint64_t total = DC_FILES_HDR + PAD8 ((uint64_t)m->text_len);

    if (m->nfiles > DC_WIRE_MAX_FILES || m->text_len > DC_WIRE_MAP_MAXTEXT ||
        (m->nfiles && !m->files))
        return NULL;
    for (size_t i = 0; i < m->nfiles; i++) {
        const struct dc_wire_file *f = &m->files[i];
        if (!dc_wire_file_name_ok (f->name, f->name_len) ||
            f->len > DC_WIRE_MAX_FILES_BYTES)
            return NULL;
        total += 16 + PAD8 ((uint64_t)f->name_len) + PAD8 (f->len);
        if (total > DC_WIRE_MAX_FILES_BYTES)
            return NULL;
    }
    uint8_t *buf = calloc (1, (size_t)total), *p;
    if (!buf)
        return NULL;
    dc_put_u64 (buf, m->id);
    dc_put_u64 (buf + 8, m->first);
    dc_put_u64 (buf + 16, m->count);
    put_f64 (buf + 24, m->seconds);
    dc_put_u64 (buf + 32, m->status);
    dc_put_u64 (buf + 40, m->text_len);
    dc_put_u64 (buf + 48, m->nfiles);
    p = buf + DC_FILES_HDR;
    if (m->text_len)
        memcpy (p, m->text, m->text_len);
    p += PAD8 (m->text_len);
    for (size_t i = 0; i < m->nfiles; i++) {
        const struct dc_wire_file *f = &m->files[i];
        dc_put_u64 (p, f->name_len);
        dc_put_u64 (p + 8, f->len);
        p += 16;
        memcpy (p, f->name, f->name_len);
        p += PAD8 (f->name_len);
        if (f->len)
            memcpy (p, f->data, (size_t)f->len);
        p += PAD8 (f->len);
    }
    *len = (size_t)total;
    return buf;
}

int dc_wire_files_get (const uint8_t *buf, size_t len, const char *what,
                       struct dc_wire_files *m, dc_error_t *errp)
{
    memset (m, 0, sizeof (*m));
    if (need_hdr (what, len, DC_FILES_HDR, errp) < 0)
        return -1;
    m->id = dc_get_u64 (buf);
    m->first = dc_get_u64 (buf + 8);
    m->count = dc_get_u64 (buf + 16);
    m->seconds = get_f64 (buf + 24);
    m->status = dc_get_u64 (buf + 32);
    uint64_t tl = dc_get_u64 (buf + 40), n = dc_get_u64 (buf + 48);
    if (!isfinite (m->seconds) || m->seconds < 0 ||
        m->seconds > DC_WIRE_MAX_SECONDS)
        return errprintf (errp, "%s: seconds: not a duration", what);
    if (m->status > 1)
        return errprintf (errp, "%s: status: %llu is not 0 or 1", what,
                          (unsigned long long)m->status);
    if (m->count == 0 || m->count > DC_WIRE_MAX_FILES ||
        m->first > UINT64_MAX - m->count)
        return errprintf (errp, "%s: count: %llu input files", what,
                          (unsigned long long)m->count);
    if (tl > DC_WIRE_MAP_MAXTEXT)
        return errprintf (errp, "%s: text: %llu bytes, over %d", what,
                          (unsigned long long)tl, DC_WIRE_MAP_MAXTEXT);
    if (n > DC_WIRE_MAX_FILES)
        return errprintf (errp, "%s: files: %llu is over the maximum of %llu",
                          what, (unsigned long long)n,
                          (unsigned long long)DC_WIRE_MAX_FILES);
    size_t off = DC_FILES_HDR;
    if (PAD8 (tl) > len - off)
        return errprintf (errp, "%s: text: %llu bytes, %zu left", what,
                          (unsigned long long)tl, len - off);
    m->text = (const char *)buf + off;
    m->text_len = (size_t)tl;
    if (memchr (m->text, '\0', m->text_len) ||
        !zeros (buf + off + tl, (size_t)(PAD8 (tl) - tl)))
        return errprintf (errp, "%s: text: a NUL byte, or padding not zero",
                          what);
    off += (size_t)PAD8 (tl);
    /* each file takes 16 bytes at least: n is bounded by what is left */
    if (n > (len - off) / 16)
        return errprintf (errp, "%s: files: %llu files in %zu bytes", what,
                          (unsigned long long)n, len - off);
    if (n && !(m->files = calloc ((size_t)n, sizeof (*m->files))))
        return errprintf (errp, "%s: out of memory", what);
    for (size_t i = 0; i < n; i++) {
        if (len - off < 16)
            goto short_;
        uint64_t nl = dc_get_u64 (buf + off), dl = dc_get_u64 (buf + off + 8);
        off += 16;
        if (nl > 255 || PAD8 (nl) > len - off)
            goto short_;
        const char *name = (const char *)buf + off;
        if (!dc_wire_file_name_ok (name, (size_t)nl)) {
            free (m->files);
            m->files = NULL;
            return errprintf (errp, "%s: file %zu: not a plain file name", what,
                              i);
        }
        if (!zeros (buf + off + nl, (size_t)(PAD8 (nl) - nl)))
            goto short_;
        off += (size_t)PAD8 (nl);
        if (dl > len - off || PAD8 (dl) > len - off ||
            !zeros (buf + off + dl, (size_t)(PAD8 (dl) - dl)))
            goto short_;
        m->files[i] = (struct dc_wire_file){
            .name = name, .name_len = (size_t)nl, .data = buf + off, .len = dl};
        off += (size_t)PAD8 (dl);
    }
    if (off != len) {
        free (m->files);
        m->files = NULL;
        return errprintf (errp, "%s: %zu bytes after the last file", what,
                          len - off);
    }
    m->nfiles = (size_t)n;
    return 0;
short_:
    free (m->files);
    m->files = NULL;
    return errprintf (errp, "%s: files: truncated, or padding not zero", what);
}
