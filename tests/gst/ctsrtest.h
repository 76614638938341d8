/* Helpers shared by the ctsrupscale tests: test images, frames of every format, reference
 * upscaling with libctsr directly, and a floating-point Y'CbCr reference. */
#ifndef CTSR_GST_TEST_H
#define CTSR_GST_TEST_H

#include <gst/gst.h>
#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <gst/video/video.h>

#include "ctsr.h"

G_BEGIN_DECLS

/* Deterministic RGBA8 test image (w x h, tightly packed): smooth colour waves plus noise;
 * alpha varies when with_alpha, else 255. g_free it. */
guint8 *ct_make_rgba (gint w, gint h, guint seed, gboolean with_alpha);

/* A buffer of caps' format and size holding the RGBA image (converted: RGB formats by a
 * plain swizzle, YUV by ct_yuv_from_rgba). stride_pad > 0 adds that many bytes to every
 * row stride and a GstVideoMeta describing the layout. */
GstBuffer *ct_buffer_from_rgba (const GstVideoInfo * info, const guint8 * rgba,
    gint stride_pad);

/* A tightly packed RGBA w x h buffer of the image, with a PTS and a 100 ms duration (for
 * tests that drive the timestep by stream time). */
GstBuffer *ct_rgba_frame_at (const guint8 * rgba, gint w, gint h, GstClockTime pts);

/* Buffer contents (video meta honoured) back to RGBA (RGB formats only; alpha 255 where
 * the format has none). g_free it. */
guint8 *ct_rgba_from_buffer (const GstVideoInfo * info, GstBuffer * buf);

/* libctsr directly: a context with CTSR_MODEL_PATH loaded, and one upscaled frame. */
ctsr_context *ct_ref_open (void);
guint8 *ct_ref_upscale (ctsr_context * ctx, const guint8 * rgba, gint w, gint h, gfloat t);

/* Y'CbCr reference in double precision. */
typedef struct
{
  gdouble kr, kb;
  gboolean full_range;
  gboolean h_cosited, v_cosited;
} CtYuvSpec;

/* The spec of a YUV stream: Kr/Kb written out per standard (BT.601, BT.709, BT.2020). */
void ct_yuv_spec_from_info (const GstVideoInfo * info, CtYuvSpec * spec);
/* RGBA (w x h, packed) -> planes Y (w x h), U and V (ceil(w/2) x ceil(h/2)), tightly packed;
 * chroma from the average of the co-sited RGB pixels (2x2 box when centred). */
void ct_yuv_from_rgba (const CtYuvSpec * spec, const guint8 * rgba, gint w, gint h,
    guint8 * y, guint8 * u, guint8 * v);
/* planes -> RGBA (bilinear chroma). */
void ct_rgba_from_yuv (const CtYuvSpec * spec, const guint8 * y, const guint8 * u,
    const guint8 * v, gint w, gint h, guint8 * rgba);
/* The planes of an I420/NV12 buffer (video meta honoured), tightly packed; g_free each. */
void ct_planes_from_buffer (const GstVideoInfo * info, GstBuffer * buf, guint8 ** y,
    guint8 ** u, guint8 ** v);

/* Harness on ctsrupscale with the given src caps, playing. */
GstHarness *ct_harness_new (const gchar * caps);
/* Push a buffer and pull the result (fails the test when none comes). */
GstBuffer *ct_push_pull (GstHarness * h, GstBuffer * in);
/* The caps on the harness' sink pad (what the element outputs). */
void ct_output_info (GstHarness * h, GstVideoInfo * info);

/* Differences of two byte arrays; every 'step'-th byte from offset 'first' (e.g. 4, 0 for
 * the R of RGBA). */
typedef struct
{
  gdouble mean;
  gint max;
} CtDiff;
CtDiff ct_diff (const guint8 * a, const guint8 * b, gsize n, gint step, gint first);

G_END_DECLS
#endif
