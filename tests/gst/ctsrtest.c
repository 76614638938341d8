/* Helpers shared by the ctsrupscale tests; see ctsrtest.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ctsrtest.h"

guint8 *
ct_make_rgba (gint w, gint h, guint seed, gboolean with_alpha)
{
  guint8 *rgba = g_malloc ((gsize) w * h * 4);
  guint32 state = 0x9e3779b9u ^ (seed * 2654435761u);
  gint x, y, c;

  for (y = 0; y < h; y++) {
    for (x = 0; x < w; x++) {
      guint8 *p = rgba + ((gsize) y * w + x) * 4;

      for (c = 0; c < 4; c++) {
        gdouble v = 128.0 + 90.0 * sin (0.37 * x * (c + 1) + 0.23 * y * (3 - c) + seed + c);

        state = state * 1664525u + 1013904223u;
        v += (gint) (state >> 27) - 16; /* noise in [-16, 15] */
        p[c] = (guint8) CLAMP (lrint (v), 0, 255);
      }
      if (!with_alpha)
        p[3] = 255;
    }
  }
  return rgba;
}

/* byte offsets of R, G, B, A (-1: none, X: -2 for the padding byte) in a packed pixel */
typedef struct
{
  GstVideoFormat format;
  gint pstride, r, g, b, a;
} Packed;

static const Packed packed_layouts[] = {
  {GST_VIDEO_FORMAT_RGBA, 4, 0, 1, 2, 3},
  {GST_VIDEO_FORMAT_BGRA, 4, 2, 1, 0, 3},
  {GST_VIDEO_FORMAT_RGBx, 4, 0, 1, 2, -1},
  {GST_VIDEO_FORMAT_BGRx, 4, 2, 1, 0, -1},
  {GST_VIDEO_FORMAT_RGB, 3, 0, 1, 2, -1},
  {GST_VIDEO_FORMAT_BGR, 3, 2, 1, 0, -1},
};

static const Packed *
packed_layout (GstVideoFormat format)
{
  guint i;

  for (i = 0; i < G_N_ELEMENTS (packed_layouts); i++)
    if (packed_layouts[i].format == format)
      return &packed_layouts[i];
  return NULL;
}

static gboolean
is_yuv (GstVideoFormat format)
{
  return format == GST_VIDEO_FORMAT_I420 || format == GST_VIDEO_FORMAT_NV12;
}

GstBuffer *
ct_rgba_frame_at (const guint8 * rgba, gint w, gint h, GstClockTime pts)
{
  GstVideoInfo info;
  GstBuffer *buf;

  gst_video_info_set_format (&info, GST_VIDEO_FORMAT_RGBA, w, h);
  buf = ct_buffer_from_rgba (&info, rgba, 0);
  GST_BUFFER_PTS (buf) = pts;
  GST_BUFFER_DURATION (buf) = 100 * GST_MSECOND;
  return buf;
}

GstBuffer *
ct_buffer_from_rgba (const GstVideoInfo * info, const guint8 * rgba, gint stride_pad)
{
  const GstVideoFormat format = GST_VIDEO_INFO_FORMAT (info);
  const gint w = GST_VIDEO_INFO_WIDTH (info), h = GST_VIDEO_INFO_HEIGHT (info);
  GstVideoInfo layout = *info;
  GstVideoFrame frame;
  GstBuffer *buf;
  guint p;
  gint x, y;

  if (stride_pad > 0) {
    gsize offset = 0;

    for (p = 0; p < GST_VIDEO_INFO_N_PLANES (&layout); p++) {
      gint rows = GST_VIDEO_INFO_COMP_HEIGHT (info, p == 0 ? 0 : 1);

      layout.stride[p] = GST_VIDEO_INFO_PLANE_STRIDE (info, p) + stride_pad;
      layout.offset[p] = offset + 16;   /* some space before every plane too */
      offset = layout.offset[p] + (gsize) layout.stride[p] * rows;
    }
    layout.size = offset;
  }
  buf = gst_buffer_new_allocate (NULL, layout.size, NULL);
  gst_buffer_memset (buf, 0, 0xaa, layout.size);
  if (stride_pad > 0)
    gst_buffer_add_video_meta_full (buf, GST_VIDEO_FRAME_FLAG_NONE, format, w, h,
        GST_VIDEO_INFO_N_PLANES (&layout), layout.offset, layout.stride);
  fail_unless (gst_video_frame_map (&frame, &layout, buf, GST_MAP_WRITE));

  if (is_yuv (format)) {
    CtYuvSpec spec;
    const gint cw = (w + 1) / 2, ch = (h + 1) / 2;
    guint8 *yp = g_malloc ((gsize) w * h), *up = g_malloc ((gsize) cw * ch),
        *vp = g_malloc ((gsize) cw * ch);
    const guint8 *planes[3] = { yp, up, vp };
    gint c;

    ct_yuv_spec_from_info (info, &spec);
    ct_yuv_from_rgba (&spec, rgba, w, h, yp, up, vp);
    for (c = 0; c < 3; c++) {
      guint8 *d = GST_VIDEO_FRAME_COMP_DATA (&frame, c);
      const gint cw_c = GST_VIDEO_FRAME_COMP_WIDTH (&frame, c);
      const gint ch_c = GST_VIDEO_FRAME_COMP_HEIGHT (&frame, c);

      for (y = 0; y < ch_c; y++)
        for (x = 0; x < cw_c; x++)
          d[y * GST_VIDEO_FRAME_COMP_STRIDE (&frame, c) +
              x * GST_VIDEO_FRAME_COMP_PSTRIDE (&frame, c)] = planes[c][y * cw_c + x];
    }
    g_free (yp);
    g_free (up);
    g_free (vp);
  } else {
    const Packed *l = packed_layout (format);
    guint8 *d = GST_VIDEO_FRAME_PLANE_DATA (&frame, 0);
    const gint stride = GST_VIDEO_FRAME_PLANE_STRIDE (&frame, 0);

    fail_unless (l != NULL);
    for (y = 0; y < h; y++) {
      for (x = 0; x < w; x++) {
        const guint8 *s = rgba + ((gsize) y * w + x) * 4;
        guint8 *o = d + y * stride + x * l->pstride;

        if (l->pstride == 4)
          o[0] = o[1] = o[2] = o[3] = 255;
        o[l->r] = s[0];
        o[l->g] = s[1];
        o[l->b] = s[2];
        if (l->a >= 0)
          o[l->a] = s[3];
      }
    }
  }
  gst_video_frame_unmap (&frame);
  return buf;
}

guint8 *
ct_rgba_from_buffer (const GstVideoInfo * info, GstBuffer * buf)
{
  const Packed *l = packed_layout (GST_VIDEO_INFO_FORMAT (info));
  const gint w = GST_VIDEO_INFO_WIDTH (info), h = GST_VIDEO_INFO_HEIGHT (info);
  guint8 *rgba = g_malloc ((gsize) w * h * 4);
  GstVideoFrame frame;
  const guint8 *d;
  gint x, y, stride;

  fail_unless (l != NULL);
  fail_unless (gst_video_frame_map (&frame, info, buf, GST_MAP_READ));
  d = GST_VIDEO_FRAME_PLANE_DATA (&frame, 0);
  stride = GST_VIDEO_FRAME_PLANE_STRIDE (&frame, 0);
  for (y = 0; y < h; y++) {
    for (x = 0; x < w; x++) {
      const guint8 *s = d + y * stride + x * l->pstride;
      guint8 *o = rgba + ((gsize) y * w + x) * 4;

      o[0] = s[l->r];
      o[1] = s[l->g];
      o[2] = s[l->b];
      o[3] = l->a >= 0 ? s[l->a] : 255;
    }
  }
  gst_video_frame_unmap (&frame);
  return rgba;
}

void
ct_planes_from_buffer (const GstVideoInfo * info, GstBuffer * buf, guint8 ** planes_y,
    guint8 ** planes_u, guint8 ** planes_v)
{
  guint8 **out[3] = { planes_y, planes_u, planes_v };
  GstVideoFrame frame;
  gint c, x, y;

  fail_unless (gst_video_frame_map (&frame, info, buf, GST_MAP_READ));
  for (c = 0; c < 3; c++) {
    const gint w = GST_VIDEO_FRAME_COMP_WIDTH (&frame, c);
    const gint h = GST_VIDEO_FRAME_COMP_HEIGHT (&frame, c);
    const guint8 *d = GST_VIDEO_FRAME_COMP_DATA (&frame, c);
    guint8 *o = g_malloc ((gsize) w * h);

    for (y = 0; y < h; y++)
      for (x = 0; x < w; x++)
        o[y * w + x] = d[y * GST_VIDEO_FRAME_COMP_STRIDE (&frame, c) +
            x * GST_VIDEO_FRAME_COMP_PSTRIDE (&frame, c)];
    *out[c] = o;
  }
  gst_video_frame_unmap (&frame);
}

/* ---------------------------------------------------------------------------------------- */

ctsr_context *
ct_ref_open (void)
{
  const gchar *path = g_getenv ("CTSR_MODEL_PATH");
  ctsr_context *ctx = NULL;
  char err[512];

  fail_unless (path != NULL, "CTSR_MODEL_PATH not set");
  fail_unless (ctsr_context_create (&(ctsr_options) {.device_index = -1 }, &ctx, err,
          sizeof err) == 0, "ctsr_context_create: %s", err);
  fail_unless (ctsr_load_model_file (ctx, path, err, sizeof err) == 0, "load %s: %s", path,
      err);
  return ctx;
}

guint8 *
ct_ref_upscale (ctsr_context * ctx, const guint8 * rgba, gint w, gint h, gfloat t)
{
  const gint s = ctsr_scale (ctx);
  guint8 *out = g_malloc ((gsize) w * h * s * s * 4);
  char err[512];

  ctsr_set_timestep (ctx, t);
  fail_unless (ctsr_process_rgba8 (ctx, rgba, w, h, (size_t) w * 4, out, (size_t) w * s * 4,
          err, sizeof err) == 0, "ctsr_process_rgba8: %s", err);
  return out;
}

/* ---------------------------------------------------------------------------------------- */

void
ct_yuv_spec_from_info (const GstVideoInfo * info, CtYuvSpec * spec)
{
  switch (info->colorimetry.matrix) {
    case GST_VIDEO_COLOR_MATRIX_BT709:
      spec->kr = 0.2126;
      spec->kb = 0.0722;
      break;
    case GST_VIDEO_COLOR_MATRIX_BT2020:
      spec->kr = 0.2627;
      spec->kb = 0.0593;
      break;
    default:
      spec->kr = 0.299;
      spec->kb = 0.114;
      break;
  }
  spec->full_range = info->colorimetry.range == GST_VIDEO_COLOR_RANGE_0_255;
  spec->h_cosited = (info->chroma_site & GST_VIDEO_CHROMA_SITE_H_COSITED) != 0;
  spec->v_cosited = (info->chroma_site & GST_VIDEO_CHROMA_SITE_V_COSITED) != 0;
}

static guint8
to_u8 (gdouble v)
{
  return (guint8) CLAMP (lrint (v), 0, 255);
}

/* averaging weights of luma position i for chroma sample j (sum over i of the weights: 1) */
static gint
taps (gint j, gboolean cosited, gint n, gint idx[3], gdouble w[3])
{
  if (cosited) {
    idx[0] = MAX (2 * j - 1, 0);
    idx[1] = MIN (2 * j, n - 1);
    idx[2] = MIN (2 * j + 1, n - 1);
    w[0] = 0.25;
    w[1] = 0.5;
    w[2] = 0.25;
    return 3;
  }
  idx[0] = MIN (2 * j, n - 1);
  idx[1] = MIN (2 * j + 1, n - 1);
  w[0] = w[1] = 0.5;
  return 2;
}

void
ct_yuv_from_rgba (const CtYuvSpec * s, const guint8 * rgba, gint w, gint h, guint8 * yp,
    guint8 * up, guint8 * vp)
{
  const gdouble kg = 1.0 - s->kr - s->kb;
  const gdouble yoff = s->full_range ? 0 : 16, yscale = s->full_range ? 255 : 219;
  const gdouble cscale = s->full_range ? 255 : 224;
  const gint cw = (w + 1) / 2, ch = (h + 1) / 2;
  gint x, y, i, j;

  for (y = 0; y < h; y++)
    for (x = 0; x < w; x++) {
      const guint8 *p = rgba + ((gsize) y * w + x) * 4;

      yp[y * w + x] = to_u8 (yoff + yscale * (s->kr * p[0] + kg * p[1] + s->kb * p[2]) / 255);
    }
  for (y = 0; y < ch; y++)
    for (x = 0; x < cw; x++) {
      gint ty[3], tx[3], ny, nx;
      gdouble wy[3], wx[3], r = 0, g = 0, b = 0, luma;

      ny = taps (y, s->v_cosited, h, ty, wy);
      nx = taps (x, s->h_cosited, w, tx, wx);
      for (j = 0; j < ny; j++)
        for (i = 0; i < nx; i++) {
          const guint8 *p = rgba + ((gsize) ty[j] * w + tx[i]) * 4;

          r += wy[j] * wx[i] * p[0] / 255;
          g += wy[j] * wx[i] * p[1] / 255;
          b += wy[j] * wx[i] * p[2] / 255;
        }
      luma = s->kr * r + kg * g + s->kb * b;
      up[y * cw + x] = to_u8 (128 + cscale * (b - luma) / (2 * (1 - s->kb)));
      vp[y * cw + x] = to_u8 (128 + cscale * (r - luma) / (2 * (1 - s->kr)));
    }
}

/* bilinear chroma at luma position x: chroma sample j sits at 2j (cosited) or 2j + 1/2 */
static gdouble
chroma_at (const guint8 * plane, gint cw, gint ch, gdouble cx, gdouble cy)
{
  gint x0, y0, x1, y1;
  gdouble fx, fy;

  cx = CLAMP (cx, 0, cw - 1);
  cy = CLAMP (cy, 0, ch - 1);
  x0 = (gint) floor (cx);
  y0 = (gint) floor (cy);
  x1 = MIN (x0 + 1, cw - 1);
  y1 = MIN (y0 + 1, ch - 1);
  fx = cx - x0;
  fy = cy - y0;
  return (1 - fy) * ((1 - fx) * plane[y0 * cw + x0] + fx * plane[y0 * cw + x1]) +
      fy * ((1 - fx) * plane[y1 * cw + x0] + fx * plane[y1 * cw + x1]);
}

void
ct_rgba_from_yuv (const CtYuvSpec * s, const guint8 * yp, const guint8 * up,
    const guint8 * vp, gint w, gint h, guint8 * rgba)
{
  const gdouble kg = 1.0 - s->kr - s->kb;
  const gdouble yoff = s->full_range ? 0 : 16, yscale = s->full_range ? 255 : 219;
  const gdouble cscale = s->full_range ? 255 : 224;
  const gint cw = (w + 1) / 2, ch = (h + 1) / 2;
  gint x, y;

  for (y = 0; y < h; y++)
    for (x = 0; x < w; x++) {
      const gdouble cx = (x - (s->h_cosited ? 0.0 : 0.5)) / 2;
      const gdouble cy = (y - (s->v_cosited ? 0.0 : 0.5)) / 2;
      const gdouble luma = (yp[y * w + x] - yoff) / yscale;
      const gdouble cb = (chroma_at (up, cw, ch, cx, cy) - 128) / cscale;
      const gdouble cr = (chroma_at (vp, cw, ch, cx, cy) - 128) / cscale;
      const gdouble r = luma + 2 * (1 - s->kr) * cr;
      const gdouble b = luma + 2 * (1 - s->kb) * cb;
      const gdouble g = (luma - s->kr * r - s->kb * b) / kg;
      guint8 *p = rgba + ((gsize) y * w + x) * 4;

      p[0] = to_u8 (255 * r);
      p[1] = to_u8 (255 * g);
      p[2] = to_u8 (255 * b);
      p[3] = 255;
    }
}

/* ---------------------------------------------------------------------------------------- */

GstHarness *
ct_harness_new (const gchar * caps)
{
  GstHarness *h = gst_harness_new ("ctsrupscale");

  fail_unless (h != NULL);
  gst_harness_play (h);
  gst_harness_set_src_caps_str (h, caps);
  return h;
}

GstBuffer *
ct_push_pull (GstHarness * h, GstBuffer * in)
{
  GstFlowReturn ret = gst_harness_push (h, in);
  GstBuffer *out;

  fail_unless_equals_int (ret, GST_FLOW_OK);
  out = gst_harness_pull (h);
  fail_unless (out != NULL, "no output buffer");
  return out;
}

void
ct_output_info (GstHarness * h, GstVideoInfo * info)
{
  GstCaps *caps = gst_pad_get_current_caps (h->sinkpad);

  fail_unless (caps != NULL, "no output caps");
  fail_unless (gst_video_info_from_caps (info, caps));
  gst_caps_unref (caps);
}

CtDiff
ct_diff (const guint8 * a, const guint8 * b, gsize n, gint step, gint first)
{
  CtDiff d = { 0, 0 };
  gsize i, count = 0;
  gdouble sum = 0;

  for (i = first; i < n; i += step, count++) {
    gint e = abs ((gint) a[i] - (gint) b[i]);

    sum += e;
    d.max = MAX (d.max, e);
  }
  d.mean = count ? sum / count : 0;
  return d;
}
