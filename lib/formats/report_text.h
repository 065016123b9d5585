/* report_text.h - a read-back report as the table `dcrun report` prints
 *
 * The text of `dcrun report R.json` without --json: a heading line (the
 * command, layout, ranks, rows and wall seconds), the table of ranks (exec:
 * status, start, end, busy and idle seconds; infer and train: host, device,
 * rows, busy, idle, TFLOP/s, share, and the I/O way with the read, compute
 * and write split when the report has them), the phases, how the rows
 * travelled, the chunk count, the lost ranks and the bottleneck line (see
 * report_read.h).  Texts from the report are already printable in the view;
 * the device and the exec status are cut to their column with "...", never
 * inside a UTF-8 character.
 */
#ifndef DC_REPORT_TEXT_H
#define DC_REPORT_TEXT_H

#include "lib/formats/report_read.h"

/* The whole table, newline-terminated lines (caller frees); path names the
 * report in the heading.  NULL with errno (ENOMEM, EINVAL for a NULL view or
 * path). */
char *dc_report_view_text (const struct dc_report_view *v, const char *path);

#endif
