/* optval.c - the values of options several commands take, checked (see
 * optval.h) */
#include <string.h>

#include "lib/model/model.h"
#include "lib/run/optval.h"

int dc_optval_device (const char *arg, const char **device, dc_error_t *errp)
{
    if (!arg)
        return errprintf (errp, "--device: no value");
    if (strcmp (arg, "cpu") && strcmp (arg, "cuda") && strcmp (arg, "auto"))
        return errprintf (errp, "--device '%s': expected cpu, cuda or auto",
                          arg);
    *device = arg;
    return 0;
}

int dc_optval_dtype (const char *arg, enum dc_dtype *dtype, dc_error_t *errp)
{
    enum dc_dtype d;

    if (!arg)
        return errprintf (errp, "--dtype: no value");
    if (dc_dtype_parse (arg, &d) < 0)
        return errprintf (errp, "--dtype '%s': expected f32, tf32, f16 or bf16",
                          arg);
    *dtype = d;
    return 0;
}

int dc_optval_activation (const char *arg, const char **activation,
                          dc_error_t *errp)
{
    enum dc_act act;

    if (!arg)
        return errprintf (errp, "--activation: no value");
    if (dc_model_act_parse (arg, &act) < 0)
        return errprintf (errp,
                          "--activation '%s': expected relu, gelu, tanh or "
                          "none",
                          arg);
    *activation = arg;
    return 0;
}

int dc_optval_map_by (const char *arg, enum dc_map_by *map_by, dc_error_t *errp)
{
    if (!arg)
        return errprintf (errp, "--map-by: no value");
    if (!strcmp (arg, "slot") || !strcmp (arg, "core"))
        *map_by = DC_MAP_BY_SLOT;
    else if (!strcmp (arg, "node"))
        *map_by = DC_MAP_BY_NODE;
    else
        return errprintf (errp, "--map-by '%s': expected slot or node", arg);
    return 0;
}
