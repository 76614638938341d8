/* Host-side conversion between the element's formats and packed RGBA8; see ctsrconvert.h.
 *
 * Why not GstVideoConverter: measured with the element's own test of this path
 * (gst-output-host-yuv, test_yuv_matches_rgba: I420/NV12 through the element vs libctsr's
 * RGBA path with a double-precision conversion; bound mean < 1, max <= 4 code values per
 * plane), a GstVideoConverter (GStreamer 1.22, dither none, linear chroma resampler) in
 * place of the YUV branches below fails on the first case: YUV -> RGBA gives mean 2.77,
 * max 11 on Y (BT.601, centred chroma: its I420 -> RGBA path uses an 8-bit coefficient table
 * and resamples chroma its own way; the cubic resampler gives the same); RGBA -> YUV alone
 * stays within 0.47 / 2 on Y but reaches max 11 on Cb with cosited (mpeg2) siting. This
 * code measures 0.24 / 1 on the same cases, with the siting rules the shaders use
 * (ctsr_process_yuv), so the host fallback and the device path give the same frames. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <math.h>
#include <string.h>

#include "ctsrconvert.h"

/* The byte of component c at (x, y) of a frame, strides honoured. */
#define COMP(f, c, x, y)                                                             \
  ((guint8 *) GST_VIDEO_FRAME_COMP_DATA (f, c) +                                     \
      (gsize) (y) * GST_VIDEO_FRAME_COMP_STRIDE (f, c) +                             \
      (gsize) (x) * GST_VIDEO_FRAME_COMP_PSTRIDE (f, c))

/* ---------------------------------------------------------------------------------------- */
/* matrices */

/* Y'CbCr from R'G'B' for the luma coefficients Kr, Kb (Kg = 1 - Kr - Kb), everything
 * normalised: R'G'B' and Y' in [0, 1], Cb and Cr in [-1/2, 1/2]. The rows are the standard
 * definitions, so one table entry (Kr, Kb) per colour matrix is all a standard needs. */
static void
normalised_rgb_to_yuv (gdouble kr, gdouble kb, gdouble n[3][3])
{
  const gdouble kg = 1.0 - kr - kb;

  n[0][0] = kr;
  n[0][1] = kg;
  n[0][2] = kb;
  n[1][0] = -kr / (2.0 * (1.0 - kb));
  n[1][1] = -kg / (2.0 * (1.0 - kb));
  n[1][2] = 0.5;
  n[2][0] = 0.5;
  n[2][1] = -kg / (2.0 * (1.0 - kr));
  n[2][2] = -kb / (2.0 * (1.0 - kr));
}

static gboolean
invert3 (const gdouble a[3][3], gdouble inv[3][3])
{
  gdouble det;
  gint i, j;

  inv[0][0] = a[1][1] * a[2][2] - a[1][2] * a[2][1];
  inv[0][1] = a[0][2] * a[2][1] - a[0][1] * a[2][2];
  inv[0][2] = a[0][1] * a[1][2] - a[0][2] * a[1][1];
  inv[1][0] = a[1][2] * a[2][0] - a[1][0] * a[2][2];
  inv[1][1] = a[0][0] * a[2][2] - a[0][2] * a[2][0];
  inv[1][2] = a[0][2] * a[1][0] - a[0][0] * a[1][2];
  inv[2][0] = a[1][0] * a[2][1] - a[1][1] * a[2][0];
  inv[2][1] = a[0][1] * a[2][0] - a[0][0] * a[2][1];
  inv[2][2] = a[0][0] * a[1][1] - a[0][1] * a[1][0];
  det = a[0][0] * inv[0][0] + a[0][1] * inv[1][0] + a[0][2] * inv[2][0];
  if (fabs (det) < 1e-12)
    return FALSE;
  for (i = 0; i < 3; i++)
    for (j = 0; j < 3; j++)
      inv[i][j] /= det;
  return TRUE;
}

/* Affine map m x + b to 16.16 fixed point; the rounding bias goes into the offset. */
static void
to_fixed (const gdouble m[3][3], const gdouble b[3], GstCtsrMatrix * out)
{
  gint i, j;

  for (i = 0; i < 3; i++) {
    for (j = 0; j < 3; j++)
      out->m[i][j] = (gint32) lrint (m[i][j] * 65536.0);
    out->m[i][3] = (gint32) lrint (b[i] * 65536.0) + 32768;
  }
}

static gboolean
build_yuv_matrices (GstCtsrConvert * conv, const GstVideoInfo * info)
{
  GstVideoColorRange range = info->colorimetry.range;
  gdouble kr, kb, n[3][3], a[3][3], b[3], inv[3][3], ib[3];
  gint offset[GST_VIDEO_MAX_COMPONENTS], scale[GST_VIDEO_MAX_COMPONENTS];
  gint i, j;

  /* GStreamer's table of Kr/Kb (BT.601, BT.709, BT.2020, SMPTE 240M, FCC); a YUV stream
   * without a usable matrix is treated as BT.601, one without a range as limited. */
  if (!gst_video_color_matrix_get_Kr_Kb (info->colorimetry.matrix, &kr, &kb))
    gst_video_color_matrix_get_Kr_Kb (GST_VIDEO_COLOR_MATRIX_BT601, &kr, &kb);
  if (range == GST_VIDEO_COLOR_RANGE_UNKNOWN)
    range = GST_VIDEO_COLOR_RANGE_16_235;
  conv->kr = kr;
  conv->kb = kb;
  conv->full_range = range == GST_VIDEO_COLOR_RANGE_0_255;
  gst_video_color_range_offsets (range, info->finfo, offset, scale);

  /* codes = offset + scale * n * (rgb / 255) */
  normalised_rgb_to_yuv (kr, kb, n);
  for (i = 0; i < 3; i++) {
    for (j = 0; j < 3; j++)
      a[i][j] = n[i][j] * scale[i] / 255.0;
    b[i] = offset[i];
  }
  if (!invert3 (a, inv))
    return FALSE;
  for (i = 0; i < 3; i++)
    ib[i] = -(inv[i][0] * b[0] + inv[i][1] * b[1] + inv[i][2] * b[2]);

  to_fixed (a, b, &conv->to_yuv);
  to_fixed (inv, ib, &conv->to_rgb);
  for (i = 0; i < 3; i++)
    conv->black[i] = (guint8) CLAMP (offset[i], 0, 255);
  return TRUE;
}

static inline guint8
clamp_fixed (gint64 v)
{
  if (v <= 0)
    return 0;
  if (v >= (255 << 16))
    return 255;
  return (guint8) (v >> 16);
}

/* One row of the affine map on (a, b, c) in 0..255. */
static inline guint8
apply_row (const gint32 * row, gint a, gint b, gint c)
{
  return clamp_fixed ((gint64) row[0] * a + (gint64) row[1] * b + (gint64) row[2] * c +
      row[3]);
}

/* The same on sums of 16 weighted samples (the chroma averages). */
static inline guint8
apply_row_sum16 (const gint32 * row, gint sa, gint sb, gint sc)
{
  return clamp_fixed ((((gint64) row[0] * sa + (gint64) row[1] * sb +
              (gint64) row[2] * sc) >> 4) + row[3]);
}

/* ---------------------------------------------------------------------------------------- */
/* chroma siting */

/* Upsampling: the two chroma samples (of n) around luma position x and the weight (0..3,
 * in quarters) of the second one. A chroma sample j lies at luma 2j when cosited, at
 * 2j + 1/2 when centred. */
static inline void
chroma_lerp (gint x, gboolean cosited, gint n, gint * i0, gint * i1, gint * f)
{
  gint q = cosited ? 2 * x : 2 * x - 1;   /* chroma position in quarters */

  if (q < 0)
    q = 0;
  *i0 = q >> 2;
  *f = q & 3;
  if (*i0 >= n - 1) {
    *i0 = n - 1;
    *f = 0;
  }
  *i1 = MIN (*i0 + 1, n - 1);
}

/* Downsampling: the luma positions (of n) averaged into chroma sample j, weights summing
 * to 4: a 2-tap box when centred, 1-2-1 when cosited. Returns the number of taps. */
static inline gint
chroma_taps (gint j, gboolean cosited, gint n, gint idx[3], gint w[3])
{
  if (cosited) {
    idx[0] = MAX (2 * j - 1, 0);
    idx[1] = MIN (2 * j, n - 1);
    idx[2] = MIN (2 * j + 1, n - 1);
    w[0] = 1;
    w[1] = 2;
    w[2] = 1;
    return 3;
  }
  idx[0] = MIN (2 * j, n - 1);
  idx[1] = MIN (2 * j + 1, n - 1);
  w[0] = 2;
  w[1] = 2;
  return 2;
}

/* ---------------------------------------------------------------------------------------- */

gboolean
gst_ctsr_convert_init (GstCtsrConvert * conv, const GstVideoInfo * info)
{
  GstVideoFormat format = GST_VIDEO_INFO_FORMAT (info);

  memset (conv, 0, sizeof *conv);
  conv->format = format;
  conv->has_alpha = GST_VIDEO_INFO_HAS_ALPHA (info);

  switch (format) {
    case GST_VIDEO_FORMAT_RGBA:
    case GST_VIDEO_FORMAT_RGBx:
      conv->direct = TRUE;
      return TRUE;
    case GST_VIDEO_FORMAT_BGRA:
    case GST_VIDEO_FORMAT_BGRx:
    case GST_VIDEO_FORMAT_RGB:
    case GST_VIDEO_FORMAT_BGR:
      return TRUE;
    case GST_VIDEO_FORMAT_I420:
    case GST_VIDEO_FORMAT_NV12:
      conv->is_yuv = TRUE;
      /* unknown siting: centred (the 2x2 box) */
      conv->h_cosited = (info->chroma_site & GST_VIDEO_CHROMA_SITE_H_COSITED) != 0;
      conv->v_cosited = (info->chroma_site & GST_VIDEO_CHROMA_SITE_V_COSITED) != 0;
      return build_yuv_matrices (conv, info);
    default:
      return FALSE;
  }
}

void
gst_ctsr_convert_to_rgba (const GstCtsrConvert * conv, const GstVideoFrame * frame,
    guint8 * rgba, gsize rgba_stride)
{
  const gint width = GST_VIDEO_FRAME_WIDTH (frame);
  const gint height = GST_VIDEO_FRAME_HEIGHT (frame);
  gint x, y;

  if (!conv->is_yuv) {
    /* packed RGB: the components' byte offsets come from the format description */
    const guint8 *r = GST_VIDEO_FRAME_COMP_DATA (frame, 0);
    const guint8 *g = GST_VIDEO_FRAME_COMP_DATA (frame, 1);
    const guint8 *b = GST_VIDEO_FRAME_COMP_DATA (frame, 2);
    const guint8 *a = conv->has_alpha ? GST_VIDEO_FRAME_COMP_DATA (frame, 3) : NULL;
    const gint ps = GST_VIDEO_FRAME_COMP_PSTRIDE (frame, 0);
    const gint stride = GST_VIDEO_FRAME_COMP_STRIDE (frame, 0);

    for (y = 0; y < height; y++) {
      guint8 *o = rgba + y * rgba_stride;
      const gsize row = (gsize) y * stride;

      for (x = 0; x < width; x++, o += 4) {
        const gsize p = row + (gsize) x * ps;

        o[0] = r[p];
        o[1] = g[p];
        o[2] = b[p];
        o[3] = a ? a[p] : 255;
      }
    }
  } else {
    /* I420 / NV12 (any 3-component 4:2:0 layout): bilinear chroma, then the matrix */
    const gint cw = GST_VIDEO_FRAME_COMP_WIDTH (frame, 1);
    const gint ch = GST_VIDEO_FRAME_COMP_HEIGHT (frame, 1);

    for (y = 0; y < height; y++) {
      gint r0, r1, fy;
      guint8 *o = rgba + y * rgba_stride;

      chroma_lerp (y, conv->v_cosited, ch, &r0, &r1, &fy);
      for (x = 0; x < width; x++, o += 4) {
        gint c0, c1, fx, luma, u, v;

        chroma_lerp (x, conv->h_cosited, cw, &c0, &c1, &fx);
#define BILERP(c)                                                                    \
        (((4 - fy) * ((4 - fx) * *COMP (frame, c, c0, r0) + fx * *COMP (frame, c, c1, r0)) + \
          fy * ((4 - fx) * *COMP (frame, c, c0, r1) + fx * *COMP (frame, c, c1, r1)) + 8) >> 4)
        u = BILERP (1);
        v = BILERP (2);
#undef BILERP
        luma = *COMP (frame, 0, x, y);
        o[0] = apply_row (conv->to_rgb.m[0], luma, u, v);
        o[1] = apply_row (conv->to_rgb.m[1], luma, u, v);
        o[2] = apply_row (conv->to_rgb.m[2], luma, u, v);
        o[3] = 255;
      }
    }
  }
}

void
gst_ctsr_convert_from_rgba (const GstCtsrConvert * conv, const guint8 * rgba,
    gsize rgba_stride, GstVideoFrame * frame)
{
  const gint width = GST_VIDEO_FRAME_WIDTH (frame);
  const gint height = GST_VIDEO_FRAME_HEIGHT (frame);
  gint x, y;

  if (!conv->is_yuv) {
    guint8 *r = GST_VIDEO_FRAME_COMP_DATA (frame, 0);
    guint8 *g = GST_VIDEO_FRAME_COMP_DATA (frame, 1);
    guint8 *b = GST_VIDEO_FRAME_COMP_DATA (frame, 2);
    guint8 *a = conv->has_alpha ? GST_VIDEO_FRAME_COMP_DATA (frame, 3) : NULL;
    const gint ps = GST_VIDEO_FRAME_COMP_PSTRIDE (frame, 0);
    const gint stride = GST_VIDEO_FRAME_COMP_STRIDE (frame, 0);
    guint8 *pad = NULL;

    /* xRGB-style formats: the unused byte is set to 0xff */
    if (!a && ps == 4)
      pad = (guint8 *) GST_VIDEO_FRAME_PLANE_DATA (frame, 0) +
          (6 - GST_VIDEO_FRAME_COMP_POFFSET (frame, 0) -
          GST_VIDEO_FRAME_COMP_POFFSET (frame, 1) - GST_VIDEO_FRAME_COMP_POFFSET (frame, 2));

    for (y = 0; y < height; y++) {
      const guint8 *i = rgba + y * rgba_stride;
      const gsize row = (gsize) y * stride;

      for (x = 0; x < width; x++, i += 4) {
        const gsize p = row + (gsize) x * ps;

        r[p] = i[0];
        g[p] = i[1];
        b[p] = i[2];
        if (a)
          a[p] = i[3];
        else if (pad)
          pad[p] = 0xff;
      }
    }
  } else {
    const gint cw = GST_VIDEO_FRAME_COMP_WIDTH (frame, 1);
    const gint ch = GST_VIDEO_FRAME_COMP_HEIGHT (frame, 1);
    gint j, k;

    /* luma at full resolution */
    for (y = 0; y < height; y++) {
      const guint8 *i = rgba + y * rgba_stride;

      for (x = 0; x < width; x++, i += 4)
        *COMP (frame, 0, x, y) = apply_row (conv->to_yuv.m[0], i[0], i[1], i[2]);
    }

    /* chroma at chroma resolution, from the average of the co-located RGB pixels */
    for (y = 0; y < ch; y++) {
      gint ty[3], wy[3], ny = chroma_taps (y, conv->v_cosited, height, ty, wy);

      for (x = 0; x < cw; x++) {
        gint tx[3], wx[3], nx = chroma_taps (x, conv->h_cosited, width, tx, wx);
        gint sr = 0, sg = 0, sb = 0;

        for (j = 0; j < ny; j++) {
          const guint8 *row = rgba + ty[j] * rgba_stride;

          for (k = 0; k < nx; k++) {
            const guint8 *i = row + 4 * tx[k];
            const gint w = wy[j] * wx[k];

            sr += w * i[0];
            sg += w * i[1];
            sb += w * i[2];
          }
        }
        *COMP (frame, 1, x, y) = apply_row_sum16 (conv->to_yuv.m[1], sr, sg, sb);
        *COMP (frame, 2, x, y) = apply_row_sum16 (conv->to_yuv.m[2], sr, sg, sb);
      }
    }
  }
}

void
gst_ctsr_convert_fill_black (const GstCtsrConvert * conv, GstVideoFrame * frame)
{
  const gint n = GST_VIDEO_FRAME_N_COMPONENTS (frame);
  gint c, x, y;

  for (c = 0; c < n; c++) {
    guint8 *d = GST_VIDEO_FRAME_COMP_DATA (frame, c);
    const gint w = GST_VIDEO_FRAME_COMP_WIDTH (frame, c);
    const gint h = GST_VIDEO_FRAME_COMP_HEIGHT (frame, c);
    const gint stride = GST_VIDEO_FRAME_COMP_STRIDE (frame, c);
    const gint ps = GST_VIDEO_FRAME_COMP_PSTRIDE (frame, c);
    guint8 value;

    if (conv->is_yuv)
      value = conv->black[MIN (c, 2)];
    else
      value = c == 3 ? 255 : 0;
    for (y = 0; y < h; y++)
      for (x = 0; x < w; x++)
        d[(gsize) y * stride + (gsize) x * ps] = value;
  }
}
